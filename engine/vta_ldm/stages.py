"""The VTA-LDM family's four stages built from a config: vision encoder, UNet, VAE decoder, vocoder."""

import torch
from torch import nn

from engine.vta_ldm.config import ModelConfig
from engine.vta_ldm.unet import build_unet
from engine.vta_ldm.vae import VAEDecoder
from engine.vta_ldm.vision_encoder import VideoFeatureExtractor, sinusoidal_table
from engine.vta_ldm.vocoder import build_vocoder


def build_modules(config: ModelConfig) -> dict[str, nn.Module]:
    """Random-initialised inference modules of `config` (no text tower, no VAE encoder)."""
    return {
        "vision": VideoFeatureExtractor(config.vision).eval(),
        "unet": build_unet(config.unet),
        "vae": VAEDecoder(config.vae).eval(),
        "vocoder": build_vocoder(config.vocoder, config.sample_rate),
    }


def rebuild_unsaved_buffers(modules: dict[str, nn.Module], config: ModelConfig) -> None:
    """Buffers a checkpoint does not hold (CLIP's position ids, the frame position table) are computed again."""
    vision = modules["vision"]
    embeddings = vision.clip_vision.vision_model.embeddings
    positions = torch.arange(embeddings.num_positions).expand((1, -1))
    embeddings.register_buffer("position_ids", positions, persistent=False)
    if config.vision.frame_pe:
        table = sinusoidal_table(config.vision.pe_max_frames, config.vision.projection_dim)
        vision.register_buffer("frame_pe", table, persistent=False)
    for part, module in modules.items():
        left = [n for n, t in (*module.named_parameters(), *module.named_buffers()) if t.is_meta]
        assert not left, f"{part} kept tensors on the meta device: {left[:3]}"
