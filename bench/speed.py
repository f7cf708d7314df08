"""Speed benchmark on the published model's real shapes (random weights), side by side in one run.

(a) naive reference path (what the published code does: DDPM 300, fp32, full CFG with the unconditional
    cross-attention computed, no caching) vs our exact reference mode vs the default path (`foley generate`: the fast
    preset, --precision auto, the int8 encoder when exported) vs the draft preset, per 10.24 s clip;
(b) 1 vs 4 variants; (c) vision encoder: torch fp32 vs ORT fp32 vs ORT int8; (d) per-stage share of fast mode;
(e) peak RSS. UNet steps are timed over a few calls and scaled by the step count (printed as such).

Usage: python bench/speed.py [--calls 2] [--skip-onnx]    (about 4-6 minutes on 2 CPU cores)
"""

import argparse
import copy
import resource
import tempfile
import time
from pathlib import Path

import torch

from engine.config import SAMPLING_PRESETS
from engine.models import resolve_precision
from engine.vta_ldm.config import VTA_LDM
from engine.vta_ldm.sampling import get_alphas_cumprod, get_timesteps_leading, sample_ddpm
from engine.vta_ldm.stages import build_modules
from engine.vta_ldm.unet import GuidedDenoiser, build_unet
from engine.vta_ldm.vae import decode
from engine.vta_ldm.vision_encoder import OnnxVisionEncoder, encode_frames, export_onnx
from engine.vta_ldm.vocoder import vocode

FRAMES = 21  # 10.24 s at 2 fps


def timed(function, calls: int) -> float:
    """Mean seconds per call after one warm-up call."""
    function()
    started = time.perf_counter()
    for _ in range(calls):
        function()
    return (time.perf_counter() - started) / calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=2, help="timed calls per measurement (after a warm-up)")
    parser.add_argument("--skip-onnx", action="store_true", help="skip the ONNX export (it needs 1.2 GB of disk)")
    args = parser.parse_args()
    torch.manual_seed(0)
    config = VTA_LDM
    started = time.perf_counter()
    stages = build_modules(config)
    naive_unet = build_unet(config.unet, skip_zero_context=False)
    naive_unet.load_state_dict(stages.unet.state_dict())
    print(f"built {config.name} with random weights in {time.perf_counter() - started:.1f} s; "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads")

    alphas = get_alphas_cumprod(config.scheduler)
    pixels = torch.rand(FRAMES, 3, 224, 224)
    context = encode_frames(stages.vision, pixels)[None]
    x1 = torch.randn(1, *config.latent_shape)
    x4 = torch.randn(4, *config.latent_shape)
    naive = GuidedDenoiser(naive_unet, context, 3.0, alphas)
    ours = GuidedDenoiser(stages.unet, context, 3.0, alphas)
    ours_bf16 = GuidedDenoiser(copy.deepcopy(stages.unet).to(torch.bfloat16), context, 3.0, alphas)
    ours_chunked = GuidedDenoiser(stages.unet, context, 3.0, alphas, chunk=1)

    # exactness first: a few DDPM steps of each path from the same noise
    steps3 = get_timesteps_leading(config.scheduler, 300)[:3]

    def short_run(model):
        return sample_ddpm(model, x1.clone(), steps3, alphas, generators=[torch.Generator().manual_seed(1)])

    reference_latent, naive_latent, bf16_latent = short_run(ours), short_run(naive), short_run(ours_bf16)
    exact_diff = float((reference_latent - naive_latent).abs().max())
    bf16_diff = float((bf16_latent - naive_latent).abs().max())

    step_naive = timed(lambda: naive(x1, 601), args.calls)
    step_ours = timed(lambda: ours(x1, 601), args.calls)
    step_bf16 = timed(lambda: ours_bf16(x1, 601), args.calls)
    step_four = timed(lambda: ours(x4, 601), args.calls)
    step_four_chunked = timed(lambda: ours_chunked(x4, 601), args.calls)

    encoder_torch = timed(lambda: encode_frames(stages.vision, pixels), 1)
    encoder_ort = {}
    if not args.skip_onnx:
        with tempfile.TemporaryDirectory() as folder:
            for precision in ("fp32", "int8"):
                path = export_onnx(stages.vision, Path(folder) / f"clip-{precision}.onnx", precision)
                encoder = OnnxVisionEncoder(path)
                encoder_ort[precision] = timed(lambda: encode_frames(encoder, pixels), 1)
                del encoder
    latents = torch.randn(1, *config.latent_shape)
    vae_time = timed(lambda: decode(stages.vae, latents, 1.0), 1)
    mel = decode(stages.vae, latents, 1.0)
    vocoder_time = timed(lambda: vocode(stages.vocoder, mel), 1)

    reference_steps, fast_steps = SAMPLING_PRESETS["reference"].steps, SAMPLING_PRESETS["fast"].steps
    draft_steps = SAMPLING_PRESETS["draft"].steps
    fast_encoder = encoder_ort.get("int8", encoder_torch)
    auto = resolve_precision("auto", "cpu")  # what generate runs the UNet in here
    step_auto = step_bf16 if auto == "bf16" else step_ours
    naive_total = reference_steps * step_naive + encoder_torch + vae_time + vocoder_time
    reference_total = reference_steps * step_ours + encoder_torch + vae_time + vocoder_time
    reference_bf16 = reference_steps * step_bf16 + encoder_torch + vae_time + vocoder_time
    fast_total = fast_steps * step_auto + fast_encoder + vae_time + vocoder_time
    draft_total = draft_steps * step_auto + fast_encoder + vae_time + vocoder_time

    print(f"\nUNet step, 1 variant with CFG (batch 2), mean of {args.calls} calls; totals scale a step by the step count")
    print(f"  naive (full CFG, fp32)          {step_naive:7.2f} s/step")
    print(f"  ours exact (skip + K/V cache)   {step_ours:7.2f} s/step   {step_naive / step_ours:5.2f}x naive")
    print(f"  ours bf16 weights               {step_bf16:7.2f} s/step   {step_naive / step_bf16:5.2f}x naive")
    print("\n(a) end to end per 10.24 s clip (encoder + sampling + VAE + vocoder)")
    print(f"  naive reference path  DDPM {reference_steps}, fp32         {naive_total:8.1f} s   1.00x")
    print(f"  our reference mode    DDPM {reference_steps}, fp32 exact   {reference_total:8.1f} s   "
          f"{naive_total / reference_total:5.2f}x   max |latent diff| vs naive after 3 steps {exact_diff:.1e}")
    print(f"  our reference mode    DDPM {reference_steps}, bf16         {reference_bf16:8.1f} s   "
          f"{naive_total / reference_bf16:5.2f}x   max |latent diff| {bf16_diff:.1e}")
    encoder_name = "int8 ORT" if encoder_ort else "torch"
    print(f"  default path (fast)   DPM++2M {fast_steps}, {auto}, {encoder_name} encoder "
          f"{fast_total:6.1f} s   {naive_total / fast_total:5.2f}x")
    print(f"  draft preset          DPM++2M {draft_steps}, {auto}, {encoder_name} encoder "
          f"{draft_total:6.1f} s   {naive_total / draft_total:5.2f}x")
    print(f"\n(b) 4 variants, one UNet call per step (batch 8): {step_four:.2f} s/step; one CFG pair per call (the "
          f"CPU default): {step_four_chunked:.2f} s/step; 4 single runs: {4 * step_ours:.2f} s "
          f"(batched {4 * step_ours / step_four:.2f}x, chunked {4 * step_ours / step_four_chunked:.2f}x of 4 singles)")
    print(f"\n(c) vision encoder, {FRAMES} frames: torch fp32 {encoder_torch:.2f} s"
          + "".join(f"; ORT {p} {t:.2f} s ({encoder_torch / t:.2f}x)" for p, t in encoder_ort.items()))
    stages = {"encoder": fast_encoder, "sampling": fast_steps * step_auto, "vae": vae_time, "vocoder": vocoder_time}
    print("\n(d) fast mode by stage: " + ", ".join(f"{k} {v / fast_total:.0%}" for k, v in stages.items())
          + f"; non-UNet {1 - stages['sampling'] / fast_total:.0%}")
    print(f"\n(e) peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / 1024:.2f} GB")


if __name__ == "__main__":
    main()
