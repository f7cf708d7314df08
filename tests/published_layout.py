"""Build tiny checkpoints in the exact layout of the published `ariesssxu/vta-ldm-clip4clip-v-large` snapshot.

File names, key names and nesting follow the reference notes (sections 2.2-2.4): `pytorch_model_2.bin` holds
`unet.*` and `vid_fea_extractor.{clip_vision,linear_layer}.*` (plus the legacy `position_ids` buffer);
`pytorch_model.bin` holds the AudioLDM VAE (LDM key names, encoder included) and `vocoder.*` with
HiFi-GAN's `ups.i` names; `audioldm-s-full.ckpt` is a Lightning checkpoint with the same tensors under
`first_stage_model.` and a `scale_factor`. The LDM names are generated here from the original architecture,
independently of the engine's key conversion.
"""

import argparse
import json
import sys
import types
from pathlib import Path

import torch

from engine.vta_ldm.config import TINY, ModelConfig
from engine.vta_ldm.unet import build_unet
from engine.vta_ldm.vision_encoder import VideoFeatureExtractor


def _conv(shapes: dict, name: str, cout: int, cin: int, k: int, dims: int = 2) -> None:
    shapes[f"{name}.weight"] = (cout, cin) + (k,) * dims
    shapes[f"{name}.bias"] = (cout,)


def _norm(shapes: dict, name: str, c: int) -> None:
    shapes[f"{name}.weight"] = (c,)
    shapes[f"{name}.bias"] = (c,)


def _resnet(shapes: dict, name: str, cin: int, cout: int) -> None:
    _norm(shapes, f"{name}.norm1", cin)
    _conv(shapes, f"{name}.conv1", cout, cin, 3)
    _norm(shapes, f"{name}.norm2", cout)
    _conv(shapes, f"{name}.conv2", cout, cout, 3)
    if cin != cout:
        _conv(shapes, f"{name}.nin_shortcut", cout, cin, 1)


def _attn(shapes: dict, name: str, c: int) -> None:
    _norm(shapes, f"{name}.norm", c)
    for part in ("q", "k", "v", "proj_out"):
        _conv(shapes, f"{name}.{part}", c, c, 1)


def ldm_vae_shapes(config: ModelConfig) -> dict[str, tuple[int, ...]]:
    """Key -> shape of AudioLDM's AutoencoderKL (`audioldm/variational_autoencoder/modules.py` structure)."""
    vae, shapes = config.vae, {}
    ch, mult, levels = vae.ch, vae.ch_mult, len(vae.ch_mult)
    _conv(shapes, "encoder.conv_in", ch, 1, 3)
    block_in = ch
    for i in range(levels):
        for j in range(vae.num_res_blocks):
            _resnet(shapes, f"encoder.down.{i}.block.{j}", block_in, ch * mult[i])
            block_in = ch * mult[i]
        if i != levels - 1:
            _conv(shapes, f"encoder.down.{i}.downsample.conv", block_in, block_in, 3)
    for prefix in ("encoder", "decoder"):
        _resnet(shapes, f"{prefix}.mid.block_1", ch * mult[-1], ch * mult[-1])
        _attn(shapes, f"{prefix}.mid.attn_1", ch * mult[-1])
        _resnet(shapes, f"{prefix}.mid.block_2", ch * mult[-1], ch * mult[-1])
    _norm(shapes, "encoder.norm_out", block_in)
    _conv(shapes, "encoder.conv_out", 2 * vae.z_channels, block_in, 3)
    _conv(shapes, "quant_conv", 2 * vae.embed_dim, 2 * vae.z_channels, 1)
    _conv(shapes, "post_quant_conv", vae.z_channels, vae.embed_dim, 1)
    block_in = ch * mult[-1]
    _conv(shapes, "decoder.conv_in", block_in, vae.z_channels, 3)
    for i in reversed(range(levels)):
        for j in range(vae.num_res_blocks + 1):
            _resnet(shapes, f"decoder.up.{i}.block.{j}", block_in, ch * mult[i])
            block_in = ch * mult[i]
        if i != 0:
            _conv(shapes, f"decoder.up.{i}.upsample.conv", block_in, block_in, 3)
    _norm(shapes, "decoder.norm_out", block_in)
    _conv(shapes, "decoder.conv_out", 1, block_in, 3)
    return shapes


def hifigan_shapes(config: ModelConfig) -> dict[str, tuple[int, ...]]:
    """Key -> shape of AudioLDM's HiFi-GAN generator (`audioldm/hifigan/models.py`, weight norm removed)."""
    voc, shapes = config.vocoder, {}
    _conv(shapes, "conv_pre", voc.upsample_initial_channel, voc.num_mels, 7, dims=1)
    for i, k in enumerate(voc.upsample_kernel_sizes):
        cin, cout = voc.upsample_initial_channel // 2**i, voc.upsample_initial_channel // 2 ** (i + 1)
        shapes[f"ups.{i}.weight"] = (cin, cout, k)  # ConvTranspose1d stores [in, out, k]
        shapes[f"ups.{i}.bias"] = (cout,)
    index = 0
    for i in range(len(voc.upsample_rates)):
        c = voc.upsample_initial_channel // 2 ** (i + 1)
        for k in voc.resblock_kernel_sizes:
            for j in range(3):
                _conv(shapes, f"resblocks.{index}.convs1.{j}", c, c, k, dims=1)
                _conv(shapes, f"resblocks.{index}.convs2.{j}", c, c, k, dims=1)
            index += 1
    _conv(shapes, "conv_post", 1, c, 7, dims=1)
    return shapes


def random_state(shapes: dict[str, tuple[int, ...]], generator: torch.Generator) -> dict[str, torch.Tensor]:
    """Random tensors; GroupNorm weights near 1 so decoded values stay in a sensible range."""
    state = {}
    for key, shape in shapes.items():
        if ".norm" in key and key.endswith("weight"):
            state[key] = 1.0 + 0.1 * torch.randn(shape, generator=generator)
        else:
            state[key] = 0.05 * torch.randn(shape, generator=generator)
    return state


def main_state(config: ModelConfig, seed: int) -> dict[str, torch.Tensor]:
    """`pytorch_model_2.bin`: UNet + CLIP vision (with the legacy position_ids buffer) + linear projection."""
    torch.manual_seed(seed)
    unet, vision = build_unet(config.unet), VideoFeatureExtractor(config.vision)
    state = {f"unet.{k}": v for k, v in unet.state_dict().items()}
    state.update({f"vid_fea_extractor.{k}": v for k, v in vision.state_dict().items()})
    tokens = (config.vision.image_size // config.vision.patch_size) ** 2 + 1
    state["vid_fea_extractor.clip_vision.vision_model.embeddings.position_ids"] = torch.arange(tokens)[None]
    return state


class ModelCheckpoint:
    """Stands for pytorch_lightning's callback class inside a Lightning checkpoint (not importable here)."""

    def __init__(self):
        self.best_model_path = "/train/logs/checkpoints/epoch=5.ckpt"
        self.monitor = "val/loss"


def _save_lightning(path: Path, vae_state: dict, scale_factor: float) -> None:
    """A Lightning-style checkpoint whose extras reference pytorch_lightning classes and argparse."""
    module_names = ["pytorch_lightning", "pytorch_lightning.callbacks", "pytorch_lightning.callbacks.model_checkpoint"]
    for name in module_names:
        sys.modules.setdefault(name, types.ModuleType(name))
    ModelCheckpoint.__module__ = module_names[-1]
    sys.modules[module_names[-1]].ModelCheckpoint = ModelCheckpoint
    try:
        state = {f"first_stage_model.{k}": v for k, v in vae_state.items()}
        state["scale_factor"] = torch.tensor(scale_factor)
        state["model.diffusion_model.input_blocks.0.0.weight"] = torch.zeros(4, 8, 3, 3)  # unused AudioLDM UNet
        state["cond_stage_model.model.logit_scale_a"] = torch.zeros(())  # unused CLAP
        torch.save(
            {
                "epoch": 5,
                "global_step": 100,
                "pytorch-lightning_version": "1.7.0",
                "state_dict": state,
                "callbacks": {"ModelCheckpoint": ModelCheckpoint()},
                "hyper_parameters": argparse.Namespace(base_learning_rate=3e-5),
                "optimizer_states": [],
                "lr_schedulers": [],
            },
            path,
        )
    finally:
        for name in module_names:
            sys.modules.pop(name, None)
        ModelCheckpoint.__module__ = __name__


def build_snapshot(
    folder: Path,
    config: ModelConfig = TINY,
    *,
    lightning: bool = True,
    vae_bin: bool = True,
    scale_factor: float = 0.75,
    seed: int = 0,
    prefix: str = "",
) -> dict[str, dict[str, torch.Tensor]]:
    """Write a snapshot folder; returns the tensors written (keys as in the files) for comparisons."""
    folder.mkdir(parents=True, exist_ok=True)
    generator = torch.Generator().manual_seed(seed)
    main = main_state(config, seed)
    vae = random_state(ldm_vae_shapes(config), generator)
    vae.update({f"vocoder.{k}": v for k, v in random_state(hifigan_shapes(config), generator).items()})
    torch.save({prefix + k: v for k, v in main.items()}, folder / "pytorch_model_2.bin")
    if vae_bin:
        torch.save(vae, folder / "pytorch_model.bin")
    if lightning:
        _save_lightning(folder / "audioldm-s-full.ckpt", vae, scale_factor)
    torch.save({"stft_fn.forward_basis": torch.zeros(2, 1, 4)}, folder / "pytorch_model_1.bin")
    unet_file = "diffusion_model_config_large_2048.json" if config.name != "tiny" else "diffusion_model_config_tiny.json"
    args = {
        "fea_encoder_name": "clip-vit-large-patch14",
        "scheduler_name": "stabilityai/stable-diffusion-2-1",
        "unet_model_config": f"configs/{unet_file}",
        "snr_gamma": 5.0,
        "embedding_dim": config.vision.embedding_dim,
        "vae_model": "audioldm-s-full",
        "sample_rate": 16000,
        "task": "video2audio",
    }
    lines = [args, {"epoch": 1, "step": 372, "train_loss": 0.8671, "val_loss": 0.823}]
    (folder / "summary.jsonl").write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    return {"main": main, "vae": vae}
