"""Each engine stage on the tiny model: shapes, dtypes, determinism, and the exact unconditional shortcut."""

import copy

import torch

from engine.vta_ldm.config import TINY, VTA_LDM
from engine.vta_ldm.sampling import get_alphas_cumprod
from engine.vta_ldm.unet import GuidedDenoiser, build_unet
from engine.vta_ldm.vae import decode
from engine.vta_ldm.vision_encoder import encode_frames, sinusoidal_table
from engine.vta_ldm.vocoder import vocode


def test_config_sizes_match_the_published_model():
    assert VTA_LDM.latent_shape == (8, 256, 16)
    assert VTA_LDM.mel_frames == 1024
    assert VTA_LDM.window_samples == 163_840 and float(VTA_LDM.window_seconds) == 10.24
    assert TINY.window_samples == VTA_LDM.window_samples  # the tiny model makes the same audio length


def test_vision_encoder_gives_one_context_token_per_frame(tiny):
    pixels = torch.rand(5, 3, 224, 224)
    context = encode_frames(tiny.stages.vision, pixels)
    assert context.shape == (5, TINY.vision.embedding_dim) and context.dtype == torch.float32
    assert torch.equal(context, encode_frames(tiny.stages.vision, pixels))


def test_sinusoidal_table_follows_sin_even_cos_odd():
    table = sinusoidal_table(30, 768)
    assert table.shape == (30, 768)
    assert torch.allclose(table[0, 0::2], torch.zeros(384)) and torch.allclose(table[0, 1::2], torch.ones(384))
    assert torch.isclose(table[3, 2], torch.sin(torch.tensor(3.0) / 10000 ** (2 / 768)))


def test_skipping_the_unconditional_cross_attention_is_exact():
    torch.manual_seed(0)
    skipping = build_unet(TINY.unet)
    full = build_unet(TINY.unet, skip_zero_context=False)
    full.load_state_dict(skipping.state_dict())
    alphas = get_alphas_cumprod(TINY.scheduler)
    context = torch.randn(1, 7, TINY.unet.cross_attention_dim)
    x = torch.randn(1, *TINY.latent_shape)
    a = GuidedDenoiser(skipping, context, 3.0, alphas)(x, 601)
    b = GuidedDenoiser(full, context, 3.0, alphas)(x, 601)
    torch.testing.assert_close(a, b, rtol=0, atol=1e-5)  # float32 reordering only (max seen 3e-6)
    # and guidance really mixes in an unconditional branch that differs from the conditional one
    c = GuidedDenoiser(full, context, 1.0, alphas)(x, 601)
    assert (a - c).abs().max() > 1e-4
    # K/V of the context are reused across steps of one job, and recomputed for a new job's context
    denoiser = GuidedDenoiser(skipping, context, 3.0, alphas)
    batch = torch.cat([x, torch.randn_like(x)])
    denoiser(batch, 601)  # fills the cache
    again = denoiser(batch, 301)
    torch.testing.assert_close(again, GuidedDenoiser(full, context, 3.0, alphas)(batch, 301), rtol=0, atol=1e-5)
    other = torch.randn_like(context)
    torch.testing.assert_close(GuidedDenoiser(skipping, other, 3.0, alphas)(x, 601),
                               GuidedDenoiser(full, other, 3.0, alphas)(x, 601), rtol=0, atol=1e-5)
    # the same context unguided: no row of two variants is skipped then
    torch.testing.assert_close(GuidedDenoiser(skipping, other, 1.0, alphas)(batch, 601),
                               GuidedDenoiser(full, other, 1.0, alphas)(batch, 601), rtol=0, atol=1e-5)


def test_vae_and_vocoder_shapes(tiny):
    latents = torch.randn(2, *TINY.latent_shape)
    mel = decode(tiny.stages.vae, latents, 0.9)
    assert mel.shape == (2, 1, TINY.mel_frames, 64)
    wave = vocode(tiny.stages.vocoder, mel)
    assert wave.shape == (2, TINY.mel_frames * 160 + 32)  # transposed-conv padding adds 32 samples (notes 1.8)
    assert wave.abs().max() <= 1.0


def test_published_preset_has_the_published_parameter_counts():
    """Counted on the meta device (no memory): the numbers of reference notes 1.3, 1.5, 1.7, 1.8 and 2.3."""
    from engine.vta_ldm.stages import build_modules

    with torch.device("meta"):
        modules = build_modules(VTA_LDM).parts()
    counts = {name: sum(p.numel() for p in module.parameters()) for name, module in modules.items()}
    assert counts["unet"] == 578_052_168 and len(modules["unet"].state_dict()) == 686
    assert counts["vision"] == 303_966_208 + 1_574_912  # CLIP ViT-L/14 with projection + linear 768->2048
    assert round(counts["vae"] / 1e6, 2) == 32.98 and round(counts["vocoder"] / 1e6, 2) == 55.26
    attn2 = modules["unet"].state_dict()["down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.weight"]
    assert attn2.shape == (320, 2048)


def test_the_bound_unet_is_captured_whole_and_equals_eager():
    """What CUDA graphs need: one graph with no break (fullgraph), reused across timesteps and for a new window's
    context of the same shape. Backend aot_eager traces exactly what inductor and CUDA graphs are given (dynamo's
    graph, functionalised by AOTAutograd) without generating code: inductor takes ~100 s to build on one core,
    too long for every run, and is not exact (fused kernels reorder float sums)."""
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    torch.manual_seed(0)
    unet = build_unet(TINY.unet)
    alphas = get_alphas_cumprod(TINY.scheduler)
    x = torch.randn(2, *TINY.latent_shape)
    compiled = torch.compile(unet, backend="aot_eager", fullgraph=True)
    for window in range(2):
        context = torch.randn(1, 7, TINY.unet.cross_attention_dim)
        eager, captured = GuidedDenoiser(unet, context, 3.0, alphas), GuidedDenoiser(compiled, context, 3.0, alphas)
        for t in (601, 301):
            torch.testing.assert_close(captured(x, t), eager(x, t), rtol=0, atol=0)
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] == 1


def test_half_precision_unets_and_batched_variants_follow_fp32():
    """The GPU path's arithmetic on the CPU: fp16 (CUDA's auto) and bf16 weights through the bound denoiser, all
    variants in one UNet call (chunk=None, as on GPUs) against one variant per call (the CPU's chunk=1)."""
    torch.manual_seed(0)
    unet = build_unet(TINY.unet)
    alphas = get_alphas_cumprod(TINY.scheduler)
    context = torch.randn(1, 7, TINY.unet.cross_attention_dim)
    x = torch.randn(3, *TINY.latent_shape)
    fp32 = GuidedDenoiser(unet, context, 3.0, alphas, chunk=1)(x, 601)
    torch.testing.assert_close(GuidedDenoiser(unet, context, 3.0, alphas, chunk=None)(x, 601), fp32, rtol=0, atol=1e-5)
    scale = fp32.abs().max()
    for dtype, tolerance in ((torch.float16, 0.01), (torch.bfloat16, 0.05)):
        half = copy.deepcopy(unet).to(dtype)
        batched = GuidedDenoiser(half, context, 3.0, alphas, chunk=None)(x, 601)
        assert batched.dtype == torch.float32 and 0 < (batched - fp32).abs().max() <= tolerance * scale
        torch.testing.assert_close(GuidedDenoiser(half, context, 3.0, alphas, chunk=1)(x, 601), batched,
                                   rtol=0, atol=tolerance * scale)
