"""The VTA-LDM family's four stages built from a config: vision encoder, UNet, VAE decoder, vocoder."""

from dataclasses import dataclass, fields
from typing import Protocol

import torch
from diffusers import UNet2DConditionModel
from torch import nn

from engine.vta_ldm.config import ModelConfig
from engine.vta_ldm.unet import build_unet
from engine.vta_ldm.vae import VAEDecoder
from engine.vta_ldm.vision_encoder import VideoFeatureExtractor, sinusoidal_table
from engine.vta_ldm.vocoder import build_vocoder


class VisionEncoder(Protocol):
    """Frames [T, 3, S, S] in [0, 1] -> context tokens [T, D]: the torch extractor, or its ONNX export on
    onnxruntime (`OnnxVisionEncoder`)."""

    def __call__(self, pixels: torch.Tensor) -> torch.Tensor: ...


@dataclass
class Stages:
    """The model's stages by name; `parts()` gives the torch modules (what a checkpoint holds) by the same names."""

    vision: VisionEncoder
    unet: UNet2DConditionModel
    vae: VAEDecoder
    vocoder: nn.Module

    def parts(self) -> dict[str, nn.Module]:
        """Name -> torch module, in checkpoint order (an ONNX vision encoder is no torch module and is left out)."""
        items = ((f.name, getattr(self, f.name)) for f in fields(self))
        return {name: module for name, module in items if isinstance(module, nn.Module)}


def build_modules(config: ModelConfig) -> Stages:
    """Random-initialised inference stages of `config` (no text tower, no VAE encoder)."""
    return Stages(
        vision=VideoFeatureExtractor(config.vision).eval(),
        unet=build_unet(config.unet),
        vae=VAEDecoder(config.vae).eval(),
        vocoder=build_vocoder(config.vocoder, config.sample_rate),
    )


def rebuild_unsaved_buffers(stages: Stages, config: ModelConfig) -> None:
    """Buffers a checkpoint does not hold (CLIP's position ids, the frame position table) are computed again."""
    vision = stages.vision
    embeddings = vision.clip_vision.vision_model.embeddings
    positions = torch.arange(embeddings.num_positions).expand((1, -1))
    embeddings.register_buffer("position_ids", positions, persistent=False)
    if config.vision.frame_pe:
        table = sinusoidal_table(config.vision.pe_max_frames, config.vision.projection_dim)
        vision.register_buffer("frame_pe", table, persistent=False)
    for part, module in stages.parts().items():
        left = [n for n, t in (*module.named_parameters(), *module.named_buffers()) if t.is_meta]
        assert not left, f"{part} kept tensors on the meta device: {left[:3]}"
