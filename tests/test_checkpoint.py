"""Import of a published-layout snapshot: conversion, strictness, safe unpickling, hub pull, list/remove."""

import os
import random

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from engine.errors import CheckpointError, ModelNotInstalledError
from engine.models import list_models, load_model, models_dir, remove_model
from engine.vta_ldm.checkpoint import HUB_REPO, import_snapshot, pull_snapshot
from engine.vta_ldm.config import TINY
from engine.vta_ldm.vae import ENCODER_FILE, VAEEncoder, decode
from tests.published_layout import build_snapshot


def ldm_blocks(state: dict):
    """AudioLDM's autoencoder layers written from its architecture with the LDM key names (independent of
    diffusers): conv, norm, resnet, attention."""

    def conv(x, name, pad, stride=1):
        return F.conv2d(x, state[f"{name}.weight"], state[f"{name}.bias"], padding=pad, stride=stride)

    def norm(x, name):
        return F.group_norm(x, 32, state[f"{name}.weight"], state[f"{name}.bias"], eps=1e-6)

    def resnet(x, name):
        h = conv(F.silu(norm(x, f"{name}.norm1")), f"{name}.conv1", 1)
        h = conv(F.silu(norm(h, f"{name}.norm2")), f"{name}.conv2", 1)
        return (conv(x, f"{name}.nin_shortcut", 0) if f"{name}.nin_shortcut.weight" in state else x) + h

    def attention(x, name):
        h = norm(x, f"{name}.norm")
        q, k, v = (conv(h, f"{name}.{p}", 0).flatten(2) for p in "qkv")
        weights = torch.softmax(torch.einsum("bci,bcj->bij", q, k) * q.shape[1] ** -0.5, dim=2)
        return x + conv(torch.einsum("bij,bcj->bci", weights, v).reshape(x.shape), f"{name}.proj_out", 0)

    return conv, norm, resnet, attention


def ldm_decode(state: dict, z: torch.Tensor, scale: float) -> torch.Tensor:
    conv, norm, resnet, attention = ldm_blocks(state)
    h = conv(conv(z / scale, "post_quant_conv", 0), "decoder.conv_in", 1)
    h = resnet(attention(resnet(h, "decoder.mid.block_1"), "decoder.mid.attn_1"), "decoder.mid.block_2")
    levels = len(TINY.vae.ch_mult)
    for i in reversed(range(levels)):
        for j in range(TINY.vae.num_res_blocks + 1):
            h = resnet(h, f"decoder.up.{i}.block.{j}")
        if i != 0:
            h = conv(F.interpolate(h, scale_factor=2.0, mode="nearest"), f"decoder.up.{i}.upsample.conv", 1)
    return conv(F.silu(norm(h, "decoder.norm_out")), "decoder.conv_out", 1)


def ldm_encode(state: dict, mel: torch.Tensor) -> torch.Tensor:
    """The encoder side: log-mel -> the moments (mean, log variance) after quant_conv."""
    conv, norm, resnet, attention = ldm_blocks(state)
    h = conv(mel[:, None], "encoder.conv_in", 1)
    levels = len(TINY.vae.ch_mult)
    for i in range(levels):
        for j in range(TINY.vae.num_res_blocks):
            h = resnet(h, f"encoder.down.{i}.block.{j}")
        if i != levels - 1:  # LDM pads right and bottom by one, then a stride-2 convolution
            h = conv(F.pad(h, (0, 1, 0, 1)), f"encoder.down.{i}.downsample.conv", 0, stride=2)
    h = resnet(attention(resnet(h, "encoder.mid.block_1"), "encoder.mid.attn_1"), "encoder.mid.block_2")
    return conv(conv(F.silu(norm(h, "encoder.norm_out")), "encoder.conv_out", 1), "quant_conv", 0)


def test_import_published_layout_and_load_back(tmp_path):
    written = build_snapshot(tmp_path / "snap", scale_factor=0.75)
    manifest = import_snapshot(tmp_path / "snap", models_dir())
    assert manifest["preset"] == "tiny" and manifest["scale_factor"] == 0.75
    assert manifest["scale_factor_source"] == "audioldm-s-full.ckpt"
    assert {s["file"] for s in manifest["sources"]} == {"pytorch_model_2.bin", "audioldm-s-full.ckpt"}
    assert all(len(s["sha256"]) == 64 for s in manifest["sources"])
    installed = models_dir() / "tiny"
    assert sorted(p.name for p in installed.iterdir()) == ["manifest.json", "vae_encoder.safetensors",
                                                           "weights.safetensors"]

    model = load_model("tiny")
    unet_state = model.stages.unet.state_dict()
    assert torch.equal(unet_state["conv_in.weight"], written["main"]["unet.conv_in.weight"])
    linear = model.stages.vision.linear_layer.weight
    assert torch.equal(linear, written["main"]["vid_fea_extractor.linear_layer.weight"])
    vocoder = model.stages.vocoder.state_dict()
    assert torch.equal(vocoder["upsampler.2.weight"], written["vae"]["vocoder.ups.2.weight"])
    # built on the meta device: the unsaved buffers are computed again, nothing stays on meta
    embeddings = model.stages.vision.clip_vision.vision_model.embeddings
    assert torch.equal(embeddings.position_ids, torch.arange(embeddings.num_positions)[None])
    assert not any(t.is_meta for module in model.stages.parts().values() for t in (*module.parameters(), *module.buffers()))

    # The converted decoder computes what AudioLDM's decoder computes from the original keys.
    z = torch.randn(1, *TINY.latent_shape)[:, :, :32, :8]
    ours = decode(model.stages.vae, z, model.scale_factor)
    reference = ldm_decode(written["vae"], z, 0.75)
    torch.testing.assert_close(ours, reference, rtol=1e-4, atol=1e-4)

    # The encoder side is kept for fine-tuning, and computes what AudioLDM's encoder computes.
    encoder = VAEEncoder(TINY.vae)
    encoder.load_state_dict(load_file(str(installed / ENCODER_FILE)), strict=True)
    mel = torch.randn(1, 32, 64)
    torch.testing.assert_close(encoder(mel).parameters, ldm_encode(written["vae"], mel), rtol=1e-4, atol=1e-4)


def test_vae_from_pytorch_model_bin_uses_published_scale_factor(tmp_path):
    build_snapshot(tmp_path / "snap", lightning=False)
    manifest = import_snapshot(tmp_path / "snap", models_dir())
    assert manifest["scale_factor"] == pytest.approx(0.9227914214134216)
    assert manifest["scale_factor_source"] == "built-in published value"


def test_module_prefix_is_stripped(tmp_path):
    build_snapshot(tmp_path / "snap", prefix="module.")
    assert import_snapshot(tmp_path / "snap", models_dir())["name"] == "tiny"


def test_a_missing_key_is_named_and_nothing_is_installed(tmp_path):
    build_snapshot(tmp_path / "snap")
    state = torch.load(tmp_path / "snap" / "pytorch_model_2.bin", weights_only=True)
    del state["unet.mid_block.attentions.0.transformer_blocks.0.attn2.to_k.weight"]
    state["unet.extra.weight"] = torch.zeros(1)
    torch.save(state, tmp_path / "snap" / "pytorch_model_2.bin")
    with pytest.raises(CheckpointError) as error:
        import_snapshot(tmp_path / "snap", models_dir())
    message = str(error.value)
    assert "missing: mid_block.attentions.0.transformer_blocks.0.attn2.to_k.weight" in message
    assert "unexpected: extra.weight" in message
    assert not (models_dir() / "tiny").exists()
    assert not models_dir().exists() or not any(models_dir().iterdir())


def test_a_foreign_checkpoint_is_refused_with_shapes(tmp_path):
    build_snapshot(tmp_path / "snap")
    state = torch.load(tmp_path / "snap" / "pytorch_model_2.bin", weights_only=True)
    state["unet.conv_in.weight"] = torch.zeros(32, 4, 3, 3)
    torch.save(state, tmp_path / "snap" / "pytorch_model_2.bin")
    with pytest.raises(CheckpointError, match=r"wrong shape: conv_in.weight \(32, 4, 3, 3\) != \(32, 8, 3, 3\)"):
        import_snapshot(tmp_path / "snap", models_dir())


def test_truncated_and_garbage_files_give_clear_errors(tmp_path):
    build_snapshot(tmp_path / "snap")
    main = tmp_path / "snap" / "pytorch_model_2.bin"
    main.write_bytes(main.read_bytes()[: main.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="pytorch_model_2.bin is truncated or corrupt"):
        import_snapshot(tmp_path / "snap", models_dir())
    for seed in range(20):  # garbage of many kinds, the same every run
        main.write_bytes(random.Random(seed).randbytes(2048))
        with pytest.raises(CheckpointError, match="truncated or corrupt"):
            import_snapshot(tmp_path / "snap", models_dir())


class Payload:
    def __reduce__(self):
        return (os.system, ("echo owned",))


def test_code_execution_in_a_pickle_is_refused(tmp_path):
    build_snapshot(tmp_path / "snap", lightning=False)
    torch.save({"state_dict": {}, "payload": Payload()}, tmp_path / "snap" / "audioldm-s-full.ckpt")
    with pytest.raises(CheckpointError, match=r"refuses to unpickle.*(posix|os)\.system|(posix|os)\.system.*refuses"):
        import_snapshot(tmp_path / "snap", models_dir())


def test_missing_files_are_named(tmp_path):
    with pytest.raises(CheckpointError, match="is not a folder"):
        import_snapshot(tmp_path / "nowhere", models_dir())
    build_snapshot(tmp_path / "snap")
    (tmp_path / "snap" / "audioldm-s-full.ckpt").unlink()
    (tmp_path / "snap" / "pytorch_model.bin").unlink()
    with pytest.raises(CheckpointError, match="neither audioldm-s-full.ckpt nor pytorch_model.bin"):
        import_snapshot(tmp_path / "snap", models_dir())
    (tmp_path / "snap" / "pytorch_model_2.bin").unlink()
    with pytest.raises(CheckpointError, match="no pytorch_model_2.bin"):
        import_snapshot(tmp_path / "snap", models_dir())


def test_pull_resolves_the_snapshot_through_huggingface_hub(tmp_path, monkeypatch):
    """A populated hub cache, offline: the real `snapshot_download` code path finds the files."""
    cache = tmp_path / "hf"
    revision = "9b9147f0000000000000000000000000000000ab"
    repo = cache / "hub" / ("models--" + HUB_REPO.replace("/", "--"))
    snapshot = repo / "snapshots" / revision
    build_snapshot(snapshot)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(revision)
    monkeypatch.setenv("HF_HOME", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import huggingface_hub.constants as constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache / "hub"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    folder = pull_snapshot()
    assert folder == snapshot
    assert import_snapshot(folder, models_dir())["name"] == "tiny"


def test_pull_failure_says_what_to_do(tmp_path, monkeypatch):
    import huggingface_hub.constants as constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(CheckpointError, match="foley models import FOLDER"):
        pull_snapshot()


def test_list_remove_and_not_installed(tmp_path):
    build_snapshot(tmp_path / "snap")
    import_snapshot(tmp_path / "snap", models_dir(), name="mine")
    assert [m["name"] for m in list_models()] == ["mine"]
    with pytest.raises(CheckpointError, match="already installed"):
        import_snapshot(tmp_path / "snap", models_dir(), name="mine")
    import_snapshot(tmp_path / "snap", models_dir(), name="mine", force=True)
    remove_model("mine")
    assert list_models() == []
    with pytest.raises(ModelNotInstalledError, match="foley models pull vta-ldm"):
        load_model("mine")
