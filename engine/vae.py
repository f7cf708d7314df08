"""VAE decode: AudioLDM's AutoencoderKL decoder side (post-quant conv + decoder), latent -> log-mel."""

import torch
from diffusers.models.autoencoders.vae import Decoder
from torch import nn

from engine.config import VAEConfig


class VAEDecoder(nn.Module):
    """Only what inference needs from the AutoencoderKL: no encoder, no quant_conv."""

    def __init__(self, config: VAEConfig):
        super().__init__()
        self.post_quant_conv = nn.Conv2d(config.embed_dim, config.z_channels, 1)
        self.decoder = Decoder(
            in_channels=config.z_channels,
            out_channels=1,
            up_block_types=("UpDecoderBlock2D",) * len(config.ch_mult),
            block_out_channels=config.block_out_channels,
            layers_per_block=config.num_res_blocks,
            norm_num_groups=32,
            act_fn="silu",
        )


@torch.inference_mode()
def decode(vae: VAEDecoder, latents: torch.Tensor, scale_factor: float) -> torch.Tensor:
    """Latents [B, C, T, F] -> log-mel [B, 1, T*4, F*4]; undoes the training-time scale as AudioLDM does."""
    latents = 1.0 / scale_factor * latents
    return vae.decoder(vae.post_quant_conv(latents))
