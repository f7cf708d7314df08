"""Vision encoder: CLIP ViT `image_embeds` per frame, optional frame position table, linear to context width."""

import logging

import torch
from torch import nn
from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

from engine.config import VisionConfig

logger = logging.getLogger(__name__)


def sinusoidal_table(length: int, dim: int, base: float = 10000.0) -> torch.Tensor:
    """Fixed sinusoidal position table (Vaswani et al. 2017): sin on even dims, cos on odd dims."""
    positions = torch.arange(length, dtype=torch.float32)[:, None]
    denominators = base ** (2 * torch.arange(dim // 2, dtype=torch.float32) / dim)
    table = torch.zeros(length, dim)
    table[:, 0::2] = torch.sin(positions / denominators)
    table[:, 1::2] = torch.cos(positions / denominators)
    return table


class VideoFeatureExtractor(nn.Module):
    """VTA-LDM's `vid_fea_extractor` with its attribute names, so checkpoint keys map one to one."""

    def __init__(self, config: VisionConfig):
        super().__init__()
        clip_config = CLIPVisionConfig(
            hidden_size=config.hidden_size,
            intermediate_size=config.intermediate_size,
            num_hidden_layers=config.num_layers,
            num_attention_heads=config.num_heads,
            patch_size=config.patch_size,
            image_size=config.image_size,
            projection_dim=config.projection_dim,
            hidden_act="quick_gelu",
            layer_norm_eps=1e-5,
        )
        self.clip_vision = CLIPVisionModelWithProjection(clip_config)
        self.linear_layer = nn.Linear(config.projection_dim, config.embedding_dim)
        pe = sinusoidal_table(config.pe_max_frames, config.projection_dim) if config.frame_pe else None
        self.register_buffer("frame_pe", pe, persistent=False)


@torch.inference_mode()
def encode_frames(extractor: VideoFeatureExtractor, pixels: torch.Tensor) -> torch.Tensor:
    """Frames [T, 3, S, S] in [0, 1] -> context tokens [T, embedding_dim] (one per frame)."""
    embeds = extractor.clip_vision(pixel_values=pixels).image_embeds
    if extractor.frame_pe is not None:
        if embeds.shape[0] > extractor.frame_pe.shape[0]:
            raise ValueError(
                f"{embeds.shape[0]} frames exceed the model's position table of {extractor.frame_pe.shape[0]}; "
                "generate a shorter range."
            )
        embeds = embeds + extractor.frame_pe[: embeds.shape[0]]
    return extractor.linear_layer(embeds)
