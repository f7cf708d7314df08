"""MMAudio network and Euler sampler against MMAudio's own outputs (tests/fixtures/mmaudio/network.safetensors,
written by tests/reference/mmaudio_network.py), and the errors a user can run into."""

import dataclasses
import hashlib
from fractions import Fraction
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from engine.errors import CheckpointError
from engine.mmaudio.network import (
    NETWORK_PRESETS,
    RECOMPUTED_KEYS,
    SEQUENCE_16K,
    SEQUENCE_44K,
    MMAudioNetwork,
    SequenceConfig,
    network_weights,
)
from engine.mmaudio.sampling import FlowStep, flow_times, sample_euler, sample_latent, start_noise

FIXTURE = Path(__file__).parent / "fixtures" / "mmaudio" / "network.safetensors"
TOLERANCE = 1e-4  # of the reference output's standard deviation
VARIANTS = ("tiny", "tiny_v2")
DURATIONS = {"8s": Fraction(8), "short": Fraction(5, 2)}
CFG_STRENGTH, NUM_STEPS, NOISE_SEED = 4.5, 4, 7  # as the harness ran them
PUBLISHED = ("small_16k", "small_44k", "medium_44k", "large_44k", "large_44k_v2")


@pytest.fixture(scope="module")
def fixture() -> dict[str, torch.Tensor]:
    return load_file(FIXTURE)


def relative_error(ours: torch.Tensor, theirs: torch.Tensor) -> float:
    """Max absolute difference over the reference's standard deviation."""
    return ((ours - theirs).abs().max() / theirs.std()).item()


def assert_matches(ours: torch.Tensor, theirs: torch.Tensor, what: str) -> None:
    assert ours.shape == theirs.shape, f"{what}: shape {tuple(ours.shape)}, theirs {tuple(theirs.shape)}"
    error = relative_error(ours, theirs)
    assert error < TOLERANCE, f"{what}: max |diff| / std = {error:.2e}"


def published_weights(fixture, variant: str) -> dict[str, torch.Tensor]:
    """Their state dict (the published layout), stored as exact float16 values."""
    prefix = f"{variant}/weights/"
    return {key[len(prefix):]: value.float() for key, value in fixture.items() if key.startswith(prefix)}


def loaded(fixture, variant: str, duration: str = "8s") -> MMAudioNetwork:
    network = MMAudioNetwork(NETWORK_PRESETS[variant]).eval()
    network.load_state_dict(network_weights(published_weights(fixture, variant), network), strict=True)
    network.set_sequence(dataclasses.replace(network.config.sequence, duration=DURATIONS[duration]))
    return network


def inputs(fixture, duration: str) -> dict[str, torch.Tensor]:
    prefix = f"inputs/{duration}/"
    return {key[len(prefix):]: value for key, value in fixture.items() if key.startswith(prefix)}


def assert_conditions(conditions, fixture, prefix: str) -> None:
    for field in ("clip", "sync", "text", "global_c"):
        assert_matches(getattr(conditions, field), fixture[f"{prefix}/{field}"], f"{prefix}/{field}")


@pytest.mark.parametrize("variant", VARIANTS)
def test_state_dict_is_the_published_layout(fixture, variant):
    ours = {key: tuple(value.shape) for key, value in MMAudioNetwork(NETWORK_PRESETS[variant]).state_dict().items()}
    theirs = {key: tuple(value.shape) for key, value in published_weights(fixture, variant).items()}
    assert ours == theirs


@pytest.mark.parametrize("variant", PUBLISHED)
def test_published_variants_have_their_keys_and_shapes(variant):
    expected = safe_open(FIXTURE, "pt").metadata()[f"layout/{variant}"]
    with torch.device("meta"):
        state = MMAudioNetwork(NETWORK_PRESETS[variant]).state_dict()
    lines = sorted(f"{key} {tuple(value.shape)}" for key, value in state.items())
    assert f"{len(lines)} {hashlib.sha256(chr(10).join(lines).encode()).hexdigest()}" == expected


@pytest.mark.parametrize("duration", DURATIONS)
@pytest.mark.parametrize("variant", VARIANTS)
@torch.no_grad()
def test_conditions_match_theirs(fixture, variant, duration):
    network, given, prefix = loaded(fixture, variant, duration), inputs(fixture, duration), f"{variant}/{duration}"
    assert_conditions(network.prepare_conditions(given["clip"], given["sync"], given["text"]), fixture,
                      f"{prefix}/conditions")
    assert_conditions(network.empty_conditions(2), fixture, f"{prefix}/empty")
    assert_conditions(network.empty_conditions(2, given["negative_text"]), fixture, f"{prefix}/empty_negative")


@pytest.mark.parametrize("duration", DURATIONS)
@pytest.mark.parametrize("variant", VARIANTS)
@torch.no_grad()
def test_velocities_match_theirs(fixture, variant, duration):
    network, given, prefix = loaded(fixture, variant, duration), inputs(fixture, duration), f"{variant}/{duration}"
    conditions = network.prepare_conditions(given["clip"], given["sync"], given["text"])
    empty = network.empty_conditions(2, given["negative_text"])
    assert_matches(network(given["latent"], given["t"], conditions), fixture[f"{prefix}/velocity"], "velocity")
    guided = network.guided_velocity(given["latent"], given["t_cfg"], conditions, empty, CFG_STRENGTH)
    assert_matches(guided, fixture[f"{prefix}/cfg_velocity"], "cfg velocity")


@pytest.mark.parametrize("duration", DURATIONS)
@pytest.mark.parametrize("variant", VARIANTS)
@torch.no_grad()
def test_generated_latent_matches_theirs(fixture, variant, duration):
    """Their generate(): the same start noise from the same seed, 4 guided Euler steps, un-normalised (with
    negative prompts at 8 s, with the stored empty prompt at 2.5 s)."""
    network, given, prefix = loaded(fixture, variant, duration), inputs(fixture, duration), f"{variant}/{duration}"
    noise = start_noise(network, 2, torch.Generator().manual_seed(NOISE_SEED))
    assert torch.equal(noise, fixture[f"{prefix}/noise"])
    conditions = network.prepare_conditions(given["clip"], given["sync"], given["text"])
    empty = network.empty_conditions(2, given["negative_text"] if duration == "8s" else None)
    latent = sample_latent(network, noise, conditions, empty, cfg_strength=CFG_STRENGTH, num_steps=NUM_STEPS)
    assert_matches(latent, fixture[f"{prefix}/generated"], "generated latent")


@pytest.mark.parametrize("variant", VARIANTS)
def test_normalize_and_unnormalize_match_theirs(fixture, variant):
    network, latent = loaded(fixture, variant, "short"), inputs(fixture, "short")["latent"]
    assert_matches(network.normalize(latent), fixture[f"{variant}/short/normalized"], "normalized")
    assert_matches(network.unnormalize(latent), fixture[f"{variant}/short/unnormalized"], "unnormalized")
    torch.testing.assert_close(network.unnormalize(network.normalize(latent)), latent)


@pytest.mark.parametrize(("mode", "base"), [("16k", SEQUENCE_16K), ("44k", SEQUENCE_44K)])
def test_sequence_lengths_match_theirs(fixture, mode, base):
    for duration, row in zip(fixture["sequence/durations"].tolist(), fixture[f"sequence/{mode}"].tolist()):
        sequence = dataclasses.replace(base, duration=duration)
        ours = [sequence.latent_seq_len, sequence.clip_seq_len, sequence.sync_seq_len, sequence.audio_samples]
        assert ours == row, f"{duration} s at {mode}"


def test_published_presets_are_built_for_8_seconds():
    assert [SEQUENCE_16K.latent_seq_len, SEQUENCE_16K.clip_seq_len, SEQUENCE_16K.sync_seq_len] == [250, 64, 192]
    assert [SEQUENCE_44K.latent_seq_len, SEQUENCE_44K.clip_seq_len, SEQUENCE_44K.sync_seq_len] == [345, 64, 192]
    assert NETWORK_PRESETS["large_44k_v2"].v2 and not NETWORK_PRESETS["large_44k"].v2


def test_recomputed_buffers_in_older_files_are_dropped(fixture):
    network = MMAudioNetwork(NETWORK_PRESETS["tiny"])
    state = published_weights(fixture, "tiny")
    older = {**state, **{key: torch.zeros(1) for key in RECOMPUTED_KEYS}}
    assert network_weights(older, network).keys() == state.keys()


def test_missing_key_is_named(fixture):
    state = published_weights(fixture, "tiny")
    del state["joint_blocks.0.clip_block.attn.qkv.weight"]
    with pytest.raises(CheckpointError, match=r"missing: joint_blocks\.0\.clip_block\.attn\.qkv\.weight"):
        network_weights(state, MMAudioNetwork(NETWORK_PRESETS["tiny"]))


def test_wrong_shape_and_unexpected_key_are_named_together(fixture):
    state = published_weights(fixture, "tiny")
    state["latent_mean"] = torch.zeros(1, 1, 20)
    state["vae.decoder.weight"] = torch.zeros(3)
    with pytest.raises(CheckpointError) as error:
        network_weights(state, MMAudioNetwork(NETWORK_PRESETS["tiny"]))
    message = str(error.value)
    assert "unexpected: vae.decoder.weight" in message
    assert "wrong shape: latent_mean (1, 1, 20) != (1, 1, 8)" in message
    assert "matches no MMAudio preset" in message


def test_weights_of_another_preset_name_it(fixture):
    with pytest.raises(CheckpointError, match="matches preset 'tiny_v2'"):
        network_weights(published_weights(fixture, "tiny_v2"), MMAudioNetwork(NETWORK_PRESETS["tiny"]))


def test_training_checkpoint_is_explained(fixture):
    checkpoint = {"it": 1, "weights": published_weights(fixture, "tiny"), "optimizer": {}}
    with pytest.raises(CheckpointError, match=r"pass checkpoint\['weights'\]"):
        network_weights(checkpoint, MMAudioNetwork(NETWORK_PRESETS["tiny"]))


def test_features_of_another_duration_are_refused():
    network = MMAudioNetwork(NETWORK_PRESETS["tiny"])
    network.set_sequence(dataclasses.replace(SEQUENCE_16K, duration=Fraction(5, 2)))
    with pytest.raises(ValueError, match=r"clip features have shape \(1, 64, 16\), expected \(batch, 20, 16\)"):
        network.prepare_conditions(torch.zeros(1, 64, 16), network.empty_sync(1), network.empty_text(1))


def test_sequence_of_another_sample_rate_is_refused():
    with pytest.raises(ValueError, match="44100 Hz"):
        MMAudioNetwork(NETWORK_PRESETS["tiny"]).set_sequence(SEQUENCE_44K)


def test_duration_shorter_than_a_synchformer_segment_is_refused():
    with pytest.raises(ValueError, match="at least 0.64 s"):
        SequenceConfig(duration=Fraction(1, 2), sample_rate=16000, hop_length=256)


def test_untrained_tiny_network_runs_a_guided_step():
    torch.manual_seed(0)
    network = MMAudioNetwork(NETWORK_PRESETS["tiny"]).eval()
    network.set_sequence(dataclasses.replace(SEQUENCE_16K, duration=1))
    with torch.no_grad():
        empty = network.empty_conditions(2)
        noise = start_noise(network, 2, torch.Generator().manual_seed(0))
        latent = sample_latent(network, noise, empty, empty, cfg_strength=4.5, num_steps=1)
    assert latent.shape == (2, 32, 8) and torch.isfinite(latent).all()


def test_euler_follows_a_straight_flow_to_its_end():
    """A 10-step loop with a dummy constant velocity: x_0 + v lands on the data, and every step is reported."""
    start, target = torch.zeros(2, 5, 3), torch.arange(30.0).reshape(2, 5, 3)
    steps: list[FlowStep] = []

    def velocity(x, t):
        return target - start

    result = sample_euler(velocity, start, flow_times(10), callback=steps.append)
    torch.testing.assert_close(result, target)
    assert [step.step for step in steps] == list(range(1, 11)) and {step.total for step in steps} == {10}
    assert steps[0].t == 0.0 and steps[-1].t == pytest.approx(0.9)
    torch.testing.assert_close(steps[3].denoised, target)
    torch.testing.assert_close(steps[-1].x, result)


def test_euler_time_grid_is_theirs():
    torch.testing.assert_close(flow_times(25), torch.linspace(0, 1, 26), rtol=0, atol=0)
    with pytest.raises(ValueError, match="at least 1 step"):
        flow_times(0)
