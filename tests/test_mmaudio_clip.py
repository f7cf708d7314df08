"""MMAudio's CLIP towers and tokenizer against fixtures made by MMAudio's and open_clip's own code
(tests/reference/mmaudio_clip.py): tiny towers loaded strictly from the published layout, token ids exactly."""

import hashlib
import json
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from engine.errors import CheckpointError
from engine.mmaudio import clip, tokenizer
from engine.mmaudio.clip import DFN5B, TINY, ClipModel, clip_image_features, clip_text_features, load_clip

FIXTURES = Path(__file__).parent / "fixtures" / "mmaudio"


def read_fixture(name: str) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    with safe_open(FIXTURES / name, "pt") as file:
        metadata = file.metadata()
    return load_file(FIXTURES / name), metadata


@pytest.fixture(scope="module")
def reference():
    return read_fixture("clip.safetensors")


@pytest.fixture(scope="module")
def published(reference):
    """The tiny towers' state dict as open_clip saves it (text_projection and logit_scale included)."""
    tensors, _ = reference
    return {key.removeprefix("weights."): value for key, value in tensors.items() if key.startswith("weights.")}


@pytest.fixture(scope="module")
def tiny(published):
    return load_clip(published, TINY)


def relative_error(ours: torch.Tensor, theirs: torch.Tensor) -> float:
    """max |ours - theirs| / std(theirs)."""
    return float((ours - theirs).abs().max() / theirs.std())


def test_fixture_was_built_at_the_tiny_preset(reference):
    _, metadata = reference
    config = json.loads(metadata["config"])
    vision, text = config["vision_cfg"], config["text_cfg"]
    assert config["embed_dim"] == TINY.embed_dim and config["quick_gelu"] == TINY.quick_gelu
    assert (vision["image_size"], vision["patch_size"], vision["width"], vision["layers"]) == (
        TINY.vision.image_size, TINY.vision.patch_size, TINY.vision.width, TINY.vision.layers)
    assert vision["width"] // vision["head_width"] == TINY.vision.heads
    assert (text["context_length"], text["vocab_size"], text["width"], text["heads"], text["layers"]) == (
        TINY.text.context_length, TINY.text.vocab_size, TINY.text.width, TINY.text.heads, TINY.text.layers)
    assert metadata["mmaudio_commit"].startswith("974010a")


def test_image_features_match_mmaudio(reference, tiny):
    tensors, _ = reference
    frames = tensors["frames_u8"].float() / 255  # [B, T, 3, H, W], as MMAudio's clip_transform leaves them
    theirs = tensors["image_features"].flatten(0, 1)
    ours = clip_image_features(tiny, frames.flatten(0, 1))
    assert ours.shape == theirs.shape == (2, TINY.embed_dim)
    assert relative_error(ours, theirs) < 1e-4
    assert relative_error(clip_image_features(tiny, frames.flatten(0, 1), batch_size=1), theirs) < 1e-4


def test_text_features_match_mmaudio(reference, tiny):
    tensors, _ = reference
    ours = clip_text_features(tiny, tensors["tokens"])
    assert ours.shape == tensors["text_features"].shape == (3, 77, TINY.text.width)
    assert relative_error(ours, tensors["text_features"]) < 1e-4


def test_published_preset_has_the_published_keys_and_shapes(reference):
    _, metadata = reference
    expected = json.loads(metadata["published_shapes"])  # open_clip's CLIP at the hub config's sizes
    with torch.device("meta"):
        model = ClipModel(DFN5B)
    ours = {key: list(value.shape) for key, value in model.state_dict().items()}
    assert ours == {key: shape for key, shape in expected.items() if key not in clip.DROPPED_KEYS}
    assert set(expected) - set(ours) == set(clip.DROPPED_KEYS)
    assert expected["visual.positional_embedding"] == [27 * 27 + 1, 1280]
    # 986,714,881 published parameters (x 4 bytes: the 3.947 GB file) less text_projection and logit_scale
    assert sum(value.numel() for value in model.state_dict().values()) == 986_714_881 - 1024 * 1024 - 1


def test_every_variant_uses_the_dfn5b_towers():
    assert {clip.PRESETS[name] for name in clip.MMAUDIO_VARIANTS} == {DFN5B}


def test_selector_names_what_it_drops(published):
    kept, dropped = clip.select_clip_state(published)
    assert sorted(dropped) == sorted(clip.DROPPED_KEYS)
    assert set(kept) == set(ClipModel(TINY).state_dict())


def test_missing_key_and_wrong_shape_give_one_clear_error(published):
    broken = dict(published)
    del broken["ln_final.weight"]
    broken["visual.proj"] = torch.zeros(32, 8)
    broken["visual.extra"] = torch.zeros(1)
    with pytest.raises(CheckpointError) as error:
        load_clip(broken, TINY, source="my.bin")
    message = str(error.value)
    assert "my.bin" in message and "missing: ln_final.weight" in message and "unexpected: visual.extra" in message
    assert "wrong shape: visual.proj (32, 8) != (32, 16)" in message


def test_transformers_layout_is_recognised():
    with pytest.raises(CheckpointError, match=r"use its open_clip_pytorch_model\.bin"):
        load_clip({"vision_model.embeddings.class_embedding": torch.zeros(32)}, TINY)


def test_bad_inputs_name_the_fix(tiny):
    with pytest.raises(ValueError, match=r"\[N, 3, 384, 384\]"):
        clip_image_features(tiny, torch.rand(1, 3, 224, 224))
    with pytest.raises(ValueError, match="divide 8-bit frames by 255"):
        clip_image_features(tiny, torch.zeros(1, 3, 384, 384, dtype=torch.uint8))
    with pytest.raises(ValueError, match=r"\[B, 77\]"):
        clip_text_features(tiny, torch.zeros(1, 76, dtype=torch.long))
    with pytest.raises(ValueError, match="outside the vocabulary"):
        clip_text_features(tiny, torch.full((1, 77), TINY.text.vocab_size))


@pytest.fixture(scope="module")
def token_reference():
    return read_fixture("clip_tokenizer.safetensors")


@pytest.fixture(scope="module")
def bpe():
    return tokenizer.load_tokenizer()


def test_shipped_vocab_is_openai_clips_file():
    assert hashlib.sha256(tokenizer.VOCAB_FILE.read_bytes()).hexdigest() == tokenizer.VOCAB_SHA256


def test_plain_prompts_match_open_clip_ids(token_reference, bpe):
    tensors, metadata = token_reference
    prompts = json.loads(metadata["plain_prompts"])
    assert all(tokenizer.FTFY_NEUTRAL.issuperset(prompt) for prompt in prompts)  # tokenized with or without ftfy
    assert bpe.vocab_size == 49408 and (bpe.start_id, bpe.end_id) == (49406, 49407)
    assert torch.equal(bpe(prompts), tensors["plain_ids"])


def test_unicode_prompts_match_open_clip_ids(token_reference, bpe):
    pytest.importorskip("ftfy")
    tensors, metadata = token_reference
    assert torch.equal(bpe(json.loads(metadata["unicode_prompts"])), tensors["unicode_ids"])


def test_without_ftfy_a_prompt_it_would_change_is_refused(monkeypatch, bpe):
    monkeypatch.setattr(tokenizer, "ftfy", None)
    assert bpe(["a dog barks"])[0, :7].tolist() == [49406, 320, 1929, 1040, 662, 49407, 0]
    with pytest.raises(ModuleNotFoundError, match="install ftfy"):
        bpe(["dog\u2019s bark"])


def test_a_single_string_is_not_split_into_characters(bpe):
    with pytest.raises(TypeError, match="list of prompts"):
        bpe("a dog barks")
