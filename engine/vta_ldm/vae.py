"""AudioLDM's AutoencoderKL split in two: the decoder side (post-quant conv + decoder, latent -> log-mel) that
inference runs, and the encoder side (encoder + quant conv, log-mel -> latent distribution) that training needs."""

import torch
from diffusers.models.autoencoders.vae import Decoder, DiagonalGaussianDistribution, Encoder
from torch import nn

from engine.vta_ldm.config import VAEConfig

ENCODER_FILE = "vae_encoder.safetensors"  # beside a model's weights: the encoder side, for training


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
            norm_num_groups=config.norm_num_groups,
            act_fn="silu",
        )


class VAEEncoder(nn.Module):
    """The training side: kept beside a model (`vae_encoder.safetensors`) so it can be trained further."""

    def __init__(self, config: VAEConfig):
        super().__init__()
        self.encoder = Encoder(in_channels=1, out_channels=config.z_channels,
                               down_block_types=("DownEncoderBlock2D",) * len(config.ch_mult),
                               block_out_channels=config.block_out_channels, layers_per_block=config.num_res_blocks,
                               norm_num_groups=config.norm_num_groups, act_fn="silu", double_z=True)
        self.quant_conv = nn.Conv2d(2 * config.z_channels, 2 * config.embed_dim, 1)

    def forward(self, mel: torch.Tensor) -> DiagonalGaussianDistribution:
        """log-mel [B, frames, mels] -> the latent distribution [B, C, frames / 4, mels / 4]."""
        return DiagonalGaussianDistribution(self.quant_conv(self.encoder(mel[:, None])))


@torch.inference_mode()
def decode(vae: VAEDecoder, latents: torch.Tensor, scale_factor: float) -> torch.Tensor:
    """Latents [B, C, T, F] -> log-mel [B, 1, T*4, F*4]; undoes the training-time scale as AudioLDM does."""
    latents = 1.0 / scale_factor * latents
    return vae.decoder(vae.post_quant_conv(latents))
