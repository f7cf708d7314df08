"""MMAudio's 1D mel VAE, decoder side: latents -> log-mel, built from EDM2's magnitude-preserving layers.

The published files are `ext_weights/v1-16.pth` (16 kHz, 80 mels) and `ext_weights/v1-44.pth` (44.1 kHz,
128 mels). `torch.load(path, weights_only=True)` of either returns a flat `dict[str, Tensor]`, the whole VAE's
state dict: `data_mean` and `data_std` (the mel statistics, shape [1, mels, 1]), `encoder.*` and `decoder.*`.
MMAudio loads it strictly into its VAE, so these are all the keys there are. Its convolutions hold the raw
weight `w`; MMAudio normalises it once after loading (`remove_weight_norm`); we normalise it in each forward,
the same arithmetic, so that the module keeps the published layout.

Decoding needs `data_mean`, `data_std` and `decoder.*`: `select_decoder_keys` keeps those and drops the encoder.

The mel it decodes to (MMAudio's `mel_converter.py`, for the record): magnitude STFT without centring (reflect
padding of (n_fft - hop) / 2 each side, Hann window), librosa's Slaney mel filters from 0 Hz, log of the magnitude
clamped at 1e-5. 16k: 16 kHz, n_fft = win = 1024, hop 256, 80 mels up to 8 kHz, log10. 44k: 44.1 kHz,
n_fft = win = 2048, hop 512, 128 mels up to 22.05 kHz, natural log. The vocoders expect exactly these.
"""

import logging
import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn
from torch.nn import functional as F

from engine.checkpoints import check_state

logger = logging.getLogger(__name__)

Mode = Literal["16k", "44k"]

# the VAE and the vocoder depend only on the sampling rate, not on the network's size
VARIANT_MODES: dict[str, Mode] = {
    "small_16k": "16k",
    "small_44k": "44k",
    "medium_44k": "44k",
    "large_44k": "44k",
    "large_44k_v2": "44k",
}

DROPPED_PREFIXES = ("encoder.",)  # in the published file, not needed to decode


@dataclass(frozen=True)
class VAEConfig:
    """Sizes of MMAudio's `Decoder1D` as `get_my_vae` builds it (levels of `hidden_dim * channel_mults`)."""

    mel_dim: int  # data_dim: mel bins
    latent_dim: int  # embed_dim: latent channels
    hidden_dim: int
    channel_mults: tuple[int, ...] = (1, 2, 4)
    res_blocks: int = 2  # per level on the encoder side; the decoder runs one more
    upsample_levels: tuple[int, ...] = (1,)  # levels that end in a 2x upsampling (the encoder's down_layers + 1)
    clip_act: float = 256.0  # activations are clamped to +-clip_act after each block

    @property
    def upsample_factor(self) -> int:
        """Mel frames per latent frame."""
        return 2 ** len(self.upsample_levels)

    @property
    def bottom_dim(self) -> int:
        """Channels at the lowest resolution, where decoding starts."""
        return self.hidden_dim * self.channel_mults[-1]


VAE_PRESETS: dict[str, VAEConfig] = {
    "16k": VAEConfig(mel_dim=80, latent_dim=20, hidden_dim=384),  # v1-16.pth
    "44k": VAEConfig(mel_dim=128, latent_dim=40, hidden_dim=512),  # v1-44.pth
    "tiny": VAEConfig(mel_dim=80, latent_dim=4, hidden_dim=8),
}


def unit_rms(x: torch.Tensor, dim: int | tuple[int, ...], eps: float = 1e-4) -> torch.Tensor:
    """Scale `x` to unit root-mean-square over `dim` (EDM2's `normalize`, Karras et al. 2024), norm in float32."""
    norm = torch.linalg.vector_norm(x, dim=dim, keepdim=True, dtype=torch.float32)
    size = math.prod(x.shape[d] for d in ([dim] if isinstance(dim, int) else dim))
    return x / (eps + norm / math.sqrt(size)).to(x.dtype)


def mp_silu(x: torch.Tensor) -> torch.Tensor:
    """Magnitude-preserving SiLU (EDM2, Eq. 81)."""
    return F.silu(x) / 0.596


def mp_sum(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    """Magnitude-preserving blend of `a` and `b` with weight `t` on `b` (EDM2, Eq. 88)."""
    return a.lerp(b, t) / math.sqrt((1 - t) ** 2 + t**2)


class MPConv1d(nn.Module):
    """Magnitude-preserving 1D convolution without bias; the stored weight is raw, each output filter is forced to
    unit norm over its fan-in when used (EDM2, Eqs. 47 and 66)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size))

    def forward(self, x: torch.Tensor, gain: torch.Tensor | float = 1.0) -> torch.Tensor:
        weight = self.weight.to(torch.float32)
        fan_in = weight[0].numel()
        weight = unit_rms(weight, dim=(1, 2)) / math.sqrt(fan_in)
        weight = weight.to(self.weight.dtype) * gain
        return F.conv1d(x, weight, padding=weight.shape[-1] // 2)


class ResBlock(nn.Module):
    """Pixel-normalised residual block: two MP convolutions, a 1x1 shortcut when the width changes."""

    def __init__(self, in_dim: int, out_dim: int):
        super().__init__()
        self.conv1 = MPConv1d(in_dim, out_dim, 3)
        self.conv2 = MPConv1d(out_dim, out_dim, 3)
        self.nin_shortcut = MPConv1d(in_dim, out_dim, 1) if in_dim != out_dim else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = unit_rms(x, dim=1)
        h = self.conv2(mp_silu(self.conv1(mp_silu(x))))
        if self.nin_shortcut is not None:
            x = self.nin_shortcut(x)
        return mp_sum(x, h, t=0.3)


class AttnBlock(nn.Module):
    """Single-head self-attention over time with unit-RMS queries, keys and values (cosine attention)."""

    def __init__(self, dim: int):
        super().__init__()
        self.qkv = MPConv1d(dim, dim * 3, 1)
        self.proj_out = MPConv1d(dim, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, dim, frames = x.shape
        # the qkv channels interleave: channel 3c + j is feature c of q (j=0), k (j=1) or v (j=2)
        qkv = unit_rms(self.qkv(x).reshape(batch, dim, 3, frames), dim=1)
        q, k, v = qkv.permute(2, 0, 3, 1).unsqueeze(2)  # each [B, 1 head, frames, dim]
        h = F.scaled_dot_product_attention(q, k, v).squeeze(1).transpose(1, 2)
        return mp_sum(x, self.proj_out(h), t=0.3)


class Upsample(nn.Module):
    """Nearest-neighbour 2x upsampling in time followed by an MP convolution."""

    def __init__(self, dim: int):
        super().__init__()
        self.conv = MPConv1d(dim, dim, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x.repeat_interleave(2, dim=-1))


class Mid(nn.Module):
    """The bottom of the decoder: block, attention, block."""

    def __init__(self, dim: int):
        super().__init__()
        self.block_1 = ResBlock(dim, dim)
        self.attn_1 = AttnBlock(dim)
        self.block_2 = ResBlock(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block_2(self.attn_1(self.block_1(x)))


class UpLevel(nn.Module):
    """One resolution level of the decoder: residual blocks, then an optional 2x upsampling."""

    def __init__(self, in_dim: int, out_dim: int, blocks: int, upsample: bool):
        super().__init__()
        self.block = nn.ModuleList([ResBlock(in_dim if i == 0 else out_dim, out_dim) for i in range(blocks)])
        self.upsample = Upsample(out_dim) if upsample else None


class Decoder(nn.Module):
    """MMAudio's `Decoder1D`: latent [B, latent_dim, T] -> normalised mel [B, mel_dim, T * upsample_factor]."""

    def __init__(self, config: VAEConfig):
        super().__init__()
        self.clip_act = config.clip_act
        self.conv_in = MPConv1d(config.latent_dim, config.bottom_dim, 3)
        self.mid = Mid(config.bottom_dim)
        # indexed by level and run from the last (lowest resolution) to level 0; a level's input is the width of
        # the level below it
        dims = [config.hidden_dim * mult for mult in config.channel_mults]
        self.up = nn.ModuleList([
            UpLevel(dims[min(level + 1, len(dims) - 1)], dim, config.res_blocks + 1, level in config.upsample_levels)
            for level, dim in enumerate(dims)
        ])
        self.conv_out = MPConv1d(dims[0], config.mel_dim, 3)
        self.learnable_gain = nn.Parameter(torch.zeros([]))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.mid(self.conv_in(z)).clamp(-self.clip_act, self.clip_act)
        for level in reversed(self.up):
            for block in level.block:
                h = block(h).clamp(-self.clip_act, self.clip_act)
            if level.upsample is not None:
                h = level.upsample(h)
        return self.conv_out(mp_silu(h), gain=self.learnable_gain + 1)


class MelVAEDecoder(nn.Module):
    """The decoding part of a published v1-*.pth: the decoder and the mel statistics that undo the normalisation."""

    def __init__(self, config: VAEConfig):
        super().__init__()
        self.config = config
        # filled from the published file; the identity until then
        self.register_buffer("data_mean", torch.zeros(1, config.mel_dim, 1))
        self.register_buffer("data_std", torch.ones(1, config.mel_dim, 1))
        self.decoder = Decoder(config)

    def forward(self, latents: torch.Tensor) -> torch.Tensor:
        """Latents [B, latent_dim, T] -> log-mel [B, mel_dim, T * upsample_factor] (VAE.decode, unnormalised)."""
        return self.decoder(latents) * self.data_std + self.data_mean


def check_state_dict(module: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Strict key and shape check; one CheckpointError names every missing, unexpected and mis-shaped tensor."""
    check_state(module, state, f"{source} does not match the {type(module).__name__} layout of this preset.",
                "Is it the file of this preset (16k or 44k), complete and unmodified?")


def select_decoder_keys(published: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The tensors of a published v1-*.pth that decoding needs; logs what it drops (the encoder)."""
    dropped = [key for key in published if key.startswith(DROPPED_PREFIXES)]
    if dropped:
        logger.info("VAE: dropping %d encoder tensors (%s), decoding does not use them", len(dropped),
                    ", ".join(DROPPED_PREFIXES))
    return {key: value for key, value in published.items() if not key.startswith(DROPPED_PREFIXES)}


def load_vae_decoder(config: VAEConfig, published: dict[str, torch.Tensor], source: str = "the VAE file",
                     *, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> MelVAEDecoder:
    """Build the decoder of `config` and load a published v1-*.pth state dict into it strictly."""
    state = select_decoder_keys(published)
    vae = MelVAEDecoder(config)
    check_state_dict(vae, state, source)
    vae.load_state_dict(state, strict=True)
    return vae.to(device=device, dtype=dtype).eval().requires_grad_(False)


@torch.inference_mode()
def decode(vae: MelVAEDecoder, latents: torch.Tensor) -> torch.Tensor:
    """Latents [B, latent_dim, T] -> log-mel [B, mel_dim, T * 2], as MMAudio's `AutoEncoderModule.decode`.

    MMAudio's network works on [B, T, latent_dim]; its `FeaturesUtils.decode` transposes before calling this.
    """
    return vae(latents)
