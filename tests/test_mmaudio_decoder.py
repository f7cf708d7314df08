"""MMAudio's VAE decoder and BigVGAN vocoders against MMAudio's own modules (tiny sizes, fixture from
tests/reference/mmaudio_decoder.py), and the errors a wrong or damaged file gives."""

import dataclasses
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from engine.errors import CheckpointError
from engine.mmaudio.vae import VAE_PRESETS, VARIANT_MODES, MelVAEDecoder, decode, load_vae_decoder, select_decoder_keys
from engine.mmaudio.vocoder import (
    VOCODER_PRESETS,
    BigVGAN,
    config_from_hparams,
    generator_state,
    kaiser_sinc_filter,
    load_vocoder,
    vocode,
)

FIXTURE = Path(__file__).parent / "fixtures" / "mmaudio" / "decoder.safetensors"
TOLERANCE = 1e-4  # of the reference output's std

# what `hf_hub_download("nvidia/bigvgan_v2_44khz_128band_512x", "config.json")` holds (generator part)
HUB_CONFIG_44K = {
    "resblock": "1", "num_mels": 128, "upsample_rates": [8, 4, 2, 2, 2, 2],
    "upsample_kernel_sizes": [16, 8, 4, 4, 4, 4], "upsample_initial_channel": 1536,
    "resblock_kernel_sizes": [3, 7, 11], "resblock_dilation_sizes": [[1, 3, 5], [1, 3, 5], [1, 3, 5]],
    "use_tanh_at_final": False, "use_bias_at_final": False, "activation": "snakebeta", "snake_logscale": True,
    "sampling_rate": 44100,
}
# MMAudio's mmaudio/ext/bigvgan/bigvgan_vocoder.yml (generator part)
YML_16K = {
    "resblock": "1", "num_mels": 80, "upsample_rates": [4, 4, 2, 2, 2, 2], "upsample_kernel_sizes": [8, 8, 4, 4, 4, 4],
    "upsample_initial_channel": 1536, "resblock_kernel_sizes": [3, 7, 11],
    "resblock_dilation_sizes": [[1, 3, 5], [1, 3, 5], [1, 3, 5]], "activation": "snakebeta", "snake_logscale": True,
}
SNAKE = dataclasses.replace(VOCODER_PRESETS["tiny_44k"], activation="snake", snake_logscale=False)
VOCODER_CASES = {"v1": VOCODER_PRESETS["tiny"], "v2": VOCODER_PRESETS["tiny_44k"], "snake": SNAKE}


@pytest.fixture(scope="module")
def fixture() -> dict[str, torch.Tensor]:
    return load_file(FIXTURE)


def part(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {key.removeprefix(prefix): value for key, value in tensors.items() if key.startswith(prefix)}


def relative_error(ours: torch.Tensor, theirs: torch.Tensor) -> float:
    assert ours.shape == theirs.shape
    return ((ours - theirs).abs().max() / theirs.std()).item()


def test_fixture_records_its_provenance():
    with safe_open(FIXTURE, "pt") as f:
        metadata = f.metadata()
    assert metadata["mmaudio_commit"].startswith("974010a")
    assert "tests/reference/mmaudio_decoder.py" in metadata["command"]


def test_vae_decode_matches_mmaudio(fixture):
    vae = load_vae_decoder(VAE_PRESETS["tiny"], part(fixture, "vae.state."))
    mel = decode(vae, fixture["vae.latents"])
    assert relative_error(mel, fixture["vae.mel"]) < TOLERANCE


def test_vae_selector_drops_only_the_encoder(fixture, caplog):
    published = part(fixture, "vae.state.")
    with caplog.at_level("INFO", logger="engine.mmaudio.vae"):
        kept = select_decoder_keys(published)
    assert set(kept) == set(MelVAEDecoder(VAE_PRESETS["tiny"]).state_dict())
    assert {key for key in published if key not in kept} == {key for key in published if key.startswith("encoder.")}
    assert "encoder" in caplog.text


@pytest.mark.parametrize("case", VOCODER_CASES)
def test_vocoder_matches_mmaudio(fixture, case):
    vocoder = load_vocoder(VOCODER_CASES[case], {"generator": part(fixture, f"{case}.state.")})
    wave = vocode(vocoder, fixture[f"{case}.mel"])
    assert relative_error(wave, fixture[f"{case}.wave"]) < TOLERANCE


def test_published_generator_loads_strictly_without_renaming(fixture):
    vocoder = BigVGAN(VOCODER_PRESETS["tiny"])
    vocoder.load_state_dict(part(fixture, "v1.state."), strict=True)


def test_resampling_filters_match_mmaudio(fixture):
    """Our kaiser-sinc filter against the buffers their modules computed (and the published files hold)."""
    ours = kaiser_sinc_filter(cutoff=0.25, half_width=0.3, taps=12)
    for key in ("resblocks.0.activations.0.upsample.filter", "activation_post.downsample.lowpass.filter"):
        torch.testing.assert_close(ours, fixture[f"v1.state.{key}"], rtol=0, atol=1e-7)


def test_other_weight_norm_spellings_give_the_same_waveform(fixture):
    """A generator saved with torch's parametrization names or with folded plain weights still loads."""
    published = part(fixture, "v1.state.")
    parametrized = {
        key.replace("weight_g", "parametrizations.weight.original0").replace(
            "weight_v", "parametrizations.weight.original1"): value
        for key, value in published.items()
    }
    plain = {key: value for key, value in published.items() if not key.endswith(("weight_g", "weight_v"))}
    for key, g in published.items():
        if key.endswith("weight_g"):
            v = published[key.replace("weight_g", "weight_v")]
            plain[key.replace("weight_g", "weight")] = v * (g / v.norm(dim=(1, 2), keepdim=True))
    mel = fixture["v1.mel"]
    for state in (parametrized, plain):
        wave = vocode(load_vocoder(VOCODER_PRESETS["tiny"], {"generator": state}), mel)
        assert relative_error(wave, fixture["v1.wave"]) < TOLERANCE


def test_missing_and_misshaped_keys_are_named(fixture):
    published = part(fixture, "vae.state.")
    del published["decoder.conv_out.weight"]
    published["decoder.conv_in.weight"] = torch.zeros(32, 5, 3)
    with pytest.raises(CheckpointError) as error:
        load_vae_decoder(VAE_PRESETS["tiny"], published, "v1-16.pth")
    message = str(error.value)
    assert "v1-16.pth" in message
    assert "missing: decoder.conv_out.weight" in message
    assert "wrong shape: decoder.conv_in.weight (32, 5, 3) != (32, 4, 3)" in message


def test_a_vae_of_the_other_preset_is_refused(fixture):
    with pytest.raises(CheckpointError, match="wrong shape"):
        load_vae_decoder(dataclasses.replace(VAE_PRESETS["tiny"], latent_dim=5), part(fixture, "vae.state."))


def test_vocoder_errors_name_the_keys(fixture):
    generator = part(fixture, "v2.state.")
    generator["conv_post.bias"] = torch.zeros(1)  # a v1 generator has one; the 44k one has none
    del generator["resblocks.1.activations.0.act.beta"]
    with pytest.raises(CheckpointError) as error:
        load_vocoder(VOCODER_PRESETS["tiny_44k"], {"generator": generator}, "bigvgan_generator.pt")
    assert "unexpected: conv_post.bias" in str(error.value)
    assert "missing: resblocks.1.activations.0.act.beta" in str(error.value)


def test_a_file_without_a_generator_is_refused(fixture):
    with pytest.raises(CheckpointError, match="no 'generator'"):
        generator_state(part(fixture, "v1.state."), "best_netG.pt")


def test_presets_are_the_published_settings():
    assert config_from_hparams(HUB_CONFIG_44K, 44_100) == VOCODER_PRESETS["44k"]
    assert config_from_hparams(YML_16K, 16_000) == VOCODER_PRESETS["16k"]
    assert VOCODER_PRESETS["16k"].hop_length == 256 and VOCODER_PRESETS["44k"].hop_length == 512
    assert (VAE_PRESETS["16k"].mel_dim, VAE_PRESETS["16k"].latent_dim) == (VOCODER_PRESETS["16k"].num_mels, 20)
    assert (VAE_PRESETS["44k"].mel_dim, VAE_PRESETS["44k"].latent_dim) == (VOCODER_PRESETS["44k"].num_mels, 40)
    assert set(VARIANT_MODES.values()) <= set(VAE_PRESETS) & set(VOCODER_PRESETS)


def test_published_sizes():
    """Parameter counts of the full presets, built without memory: BigVGAN v2 44 kHz is NVIDIA's 122M."""
    with torch.device("meta"):
        counts = {name: sum(p.numel() for p in BigVGAN(VOCODER_PRESETS[name]).parameters()) for name in ("16k", "44k")}
        vae = MelVAEDecoder(VAE_PRESETS["44k"])
    assert round(counts["44k"] / 1e6) == 122
    assert round(counts["16k"] / 1e6) == 112
    assert vae.state_dict()["data_mean"].shape == (1, 128, 1)
