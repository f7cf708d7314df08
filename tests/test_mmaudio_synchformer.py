"""The Synchformer visual branch against MMAudio's own (fixture from tests/reference/mmaudio_synchformer.py)."""

from dataclasses import replace
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from engine.errors import CheckpointError
from engine.mmaudio.synchformer import (
    PRESETS,
    SYNCHFORMER,
    TINY,
    Synchformer,
    check_sync_state,
    load_synchformer,
    select_sync_state,
    sync_features,
)

FIXTURE = Path(__file__).parent / "fixtures/mmaudio/synchformer.safetensors"
ENLARGE = 8  # the harness enlarges its 28 x 28 pictures to 224 x 224 by nearest neighbour


@pytest.fixture(scope="module")
def fixture() -> dict[str, torch.Tensor]:
    return load_file(FIXTURE)


@pytest.fixture(scope="module")
def published(fixture) -> dict[str, torch.Tensor]:
    """Their tiny state dict, in the published key layout."""
    return {key.removeprefix("state."): value for key, value in fixture.items() if key.startswith("state.")}


@pytest.fixture(scope="module")
def model(published) -> Synchformer:
    state, _ = select_sync_state(published)
    module = Synchformer(TINY)
    check_sync_state(module, state, "fixture")
    module.load_state_dict(state, strict=True)
    return module.eval()


def fixture_frames(fixture) -> torch.Tensor:
    pixels = fixture["input.pixels"]
    return pixels.repeat_interleave(ENLARGE, dim=-1).repeat_interleave(ENLARGE, dim=-2).float() / 255


def test_features_match_mmaudio(fixture, model):
    frames = fixture_frames(fixture)  # [2, 35, 3, 224, 224]: 3 segments and 3 unused trailing frames
    expected = fixture["output.features"]
    got = sync_features(model, frames, batch_size=5)  # they ran 4 segments per pass
    assert got.shape == (2, TINY.num_tokens(35), TINY.embed_dim) == expected.shape
    error = (got - expected).abs().max() / expected.std()
    assert error < 1e-4, f"max abs diff / std = {error:.2e}"
    # the frames matter far beyond the tolerance: segments differ from one another by ~0.4 std
    segments = expected.view(2, 3, TINY.tokens_per_segment, -1)
    assert (segments[:, 1:] - segments[:, :1]).abs().max() > 0.1 * expected.std()


def test_selector_keeps_the_visual_branch_and_names_the_rest(model, published):
    full = dict(published)
    full.update({"afeat_extractor.spatial.weight": torch.zeros(1), "transformer.OFF_tok": torch.zeros(1),
                 "aproj.weight": torch.zeros(1), "vproj.bias": torch.zeros(1)})
    kept, dropped = select_sync_state(full)
    assert set(kept) == set(model.state_dict())
    assert dropped == ["afeat_extractor.spatial.weight", "aproj.weight", "transformer.OFF_tok",
                       "vfeat_extractor.patch_embed.proj.bias", "vfeat_extractor.patch_embed.proj.weight",
                       "vproj.bias"]


def test_missing_unexpected_and_misshaped_keys_are_named_in_one_error(model, published):
    state, _ = select_sync_state(published)
    del state["vfeat_extractor.temp_embed"]
    state["vfeat_extractor.head.weight"] = torch.zeros(3, 32)
    state["vfeat_extractor.pos_embed"] = torch.zeros(1, 50, 32)
    with pytest.raises(CheckpointError) as error:
        check_sync_state(model, state, "synchformer_state_dict.pth")
    message = str(error.value)
    assert "missing: vfeat_extractor.temp_embed" in message
    assert "unexpected: vfeat_extractor.head.weight" in message
    assert "vfeat_extractor.pos_embed (1, 50, 32) != (1, 197, 32)" in message


def test_load_synchformer_reads_a_published_style_file(tmp_path, fixture, published, model):
    path = tmp_path / "synchformer_state_dict.pth"
    torch.save({**published, "transformer.ln_f.weight": torch.ones(32)}, path)
    loaded = load_synchformer(path, TINY)
    assert not loaded.training
    segment = fixture_frames(fixture)[:1, :16]
    assert torch.equal(sync_features(loaded, segment), sync_features(model, segment))
    with pytest.raises(CheckpointError, match="wrong shape"):
        load_synchformer(path, replace(TINY, embed_dim=48))


def test_load_synchformer_refuses_a_damaged_file(tmp_path):
    path = tmp_path / "synchformer_state_dict.pth"
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load_synchformer(path, TINY)


@pytest.mark.parametrize(
    ("frames", "match"),
    [
        (torch.rand(1, 16, 3, 112, 112), r"\[B, T, 3, 224, 224\]"),
        (torch.rand(1, 15, 3, 224, 224), "at least 16 frames"),
        (torch.rand(1, 16, 3, 224, 224) * 2 - 1 - 0.5, r"floats in \[0, 1\]"),
    ],
)
def test_frames_are_checked(model, frames, match):
    with pytest.raises(ValueError, match=match):
        sync_features(model, frames)


def test_published_sizes():
    assert SYNCHFORMER.num_tokens(8 * 25) == 192  # MMAudio's sync_seq_len for 8 s
    assert {PRESETS[name] for name in ("small_16k", "small_44k", "medium_44k", "large_44k", "large_44k_v2")} == {
        SYNCHFORMER}
    with torch.device("meta"):
        shapes = {key: tuple(value.shape) for key, value in Synchformer(SYNCHFORMER).state_dict().items()}
    assert len(shapes) == 5 + 12 * 18 + 2 + 13
    assert shapes["vfeat_extractor.patch_embed_3d.proj.weight"] == (768, 3, 2, 16, 16)
    assert shapes["vfeat_extractor.pos_embed"] == (1, 197, 768)
    assert shapes["vfeat_extractor.temp_embed"] == (1, 8, 768)
    assert shapes["vfeat_extractor.blocks.11.timeattn.qkv.weight"] == (2304, 768)
    assert shapes["vfeat_extractor.spatial_attn_agg.linear1.weight"] == (3072, 768)
