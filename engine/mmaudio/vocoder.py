"""BigVGAN vocoders (Lee et al., 2023) from log-mel to waveform: v1 at 16 kHz and NVIDIA's v2 at 44.1 kHz.

Published files:
- 16 kHz: `ext_weights/best_netG.pt` (from Make-An-Audio 2), settings in MMAudio's `bigvgan_vocoder.yml`.
- 44.1 kHz: `bigvgan_generator.pt` and `config.json` of the hub repo `nvidia/bigvgan_v2_44khz_128band_512x`.

`torch.load(path, weights_only=True)` of either returns `{"generator": state_dict}`; `generator_state` takes the
inner dict. NVIDIA's BigVGAN code, which trained both, wraps every convolution in `torch.nn.utils.weight_norm`, so
the stored convolutions are weight-normed: `<conv>.weight_g` ([out, 1, 1]; [in, 1, 1] for the transposed ones),
`<conv>.weight_v` and `<conv>.bias`. MMAudio's own modules use the newer parametrization, whose load hook renames
these to `parametrizations.weight.original0/1`, and then fold the weight norm into plain weights once
(`remove_weight_norm`). We keep `weight_g`/`weight_v` as the module's parameters and form the plain weight
g * v / |v| in each forward, the same arithmetic, so that `state_dict()` stays the published layout. The other
tensors are each activation's `act.alpha`/`act.beta` (log-scale) and the fixed low-pass filters of its resamplers
(`upsample.filter`, `downsample.lowpass.filter`), which the files hold too.
"""

import logging
import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn
from torch.nn import functional as F

from engine.errors import CheckpointError
from engine.mmaudio.vae import check_state_dict

logger = logging.getLogger(__name__)

RESAMPLE_RATIO = 2  # each activation runs at twice the rate (alias-free, StyleGAN3-style)
RESAMPLE_TAPS = 12


@dataclass(frozen=True)
class BigVGANConfig:
    """The generator settings of a BigVGAN checkpoint (the hyperparameters its code reads; AMP block type 1)."""

    num_mels: int
    upsample_rates: tuple[int, ...]
    upsample_kernel_sizes: tuple[int, ...]
    upsample_initial_channel: int
    sampling_rate: int
    resblock_kernel_sizes: tuple[int, ...] = (3, 7, 11)
    resblock_dilation_sizes: tuple[tuple[int, ...], ...] = ((1, 3, 5), (1, 3, 5), (1, 3, 5))
    activation: Literal["snake", "snakebeta"] = "snakebeta"
    snake_logscale: bool = True  # alpha (and beta) are stored as logarithms
    use_bias_at_final: bool = True
    use_tanh_at_final: bool = True  # else the output is clamped to [-1, 1]

    @property
    def hop_length(self) -> int:
        """Waveform samples per mel frame."""
        return math.prod(self.upsample_rates)

    def channels(self, stage: int) -> int:
        """Width after upsampling stage `stage`."""
        return self.upsample_initial_channel // 2 ** (stage + 1)


VOCODER_PRESETS: dict[str, BigVGANConfig] = {
    # best_netG.pt, MMAudio's bigvgan_vocoder.yml
    "16k": BigVGANConfig(num_mels=80, upsample_rates=(4, 4, 2, 2, 2, 2), upsample_kernel_sizes=(8, 8, 4, 4, 4, 4),
                         upsample_initial_channel=1536, sampling_rate=16_000),
    # nvidia/bigvgan_v2_44khz_128band_512x, config.json
    "44k": BigVGANConfig(num_mels=128, upsample_rates=(8, 4, 2, 2, 2, 2), upsample_kernel_sizes=(16, 8, 4, 4, 4, 4),
                         upsample_initial_channel=1536, sampling_rate=44_100, use_bias_at_final=False,
                         use_tanh_at_final=False),
    "tiny": BigVGANConfig(num_mels=8, upsample_rates=(4, 2), upsample_kernel_sizes=(8, 4), upsample_initial_channel=16,
                          sampling_rate=16_000, resblock_kernel_sizes=(3, 5), resblock_dilation_sizes=((1, 3, 5),) * 2),
    "tiny_44k": BigVGANConfig(num_mels=8, upsample_rates=(4, 2), upsample_kernel_sizes=(8, 4),
                              upsample_initial_channel=16, sampling_rate=44_100, resblock_kernel_sizes=(3, 5),
                              resblock_dilation_sizes=((1, 3, 5),) * 2, use_bias_at_final=False,
                              use_tanh_at_final=False),
}


def config_from_hparams(hparams: dict, sampling_rate: int) -> BigVGANConfig:
    """The generator settings of a BigVGAN `config.json` / yml, with the defaults BigVGAN's code applies."""
    if hparams.get("resblock", "1") != "1":
        raise CheckpointError(f"BigVGAN resblock type {hparams['resblock']!r} is not supported (only type '1').")
    return BigVGANConfig(
        num_mels=hparams["num_mels"],
        upsample_rates=tuple(hparams["upsample_rates"]),
        upsample_kernel_sizes=tuple(hparams["upsample_kernel_sizes"]),
        upsample_initial_channel=hparams["upsample_initial_channel"],
        sampling_rate=sampling_rate,
        resblock_kernel_sizes=tuple(hparams["resblock_kernel_sizes"]),
        resblock_dilation_sizes=tuple(tuple(d) for d in hparams["resblock_dilation_sizes"]),
        activation=hparams["activation"],
        snake_logscale=hparams["snake_logscale"],
        use_bias_at_final=hparams.get("use_bias_at_final", True),
        use_tanh_at_final=hparams.get("use_tanh_at_final", True),
    )


def weight_normed(g: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """The weight g * v / |v|, the norm taken per slice of dim 0 (Salimans & Kingma, 2016)."""
    return v * (g / torch.linalg.vector_norm(v, dim=tuple(range(1, v.ndim)), keepdim=True))


class WNConv1d(nn.Module):
    """Weight-normed 1D convolution with 'same' padding, in `torch.nn.utils.weight_norm`'s parameter names."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, dilation: int = 1, bias: bool = True):
        super().__init__()
        self.dilation = dilation
        self.padding = (kernel_size - 1) * dilation // 2
        self.weight_g = nn.Parameter(torch.ones(out_channels, 1, 1))
        self.weight_v = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size) * 0.01)
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = weight_normed(self.weight_g, self.weight_v)
        return F.conv1d(x, weight, self.bias, padding=self.padding, dilation=self.dilation)


class WNConvTranspose1d(nn.Module):
    """Weight-normed transposed convolution that upsamples by `stride` (weight [in, out, kernel], norm per input)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int):
        super().__init__()
        self.stride = stride
        self.padding = (kernel_size - stride) // 2
        self.weight_g = nn.Parameter(torch.ones(in_channels, 1, 1))
        self.weight_v = nn.Parameter(torch.randn(in_channels, out_channels, kernel_size) * 0.01)
        self.bias = nn.Parameter(torch.zeros(out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = weight_normed(self.weight_g, self.weight_v)
        return F.conv_transpose1d(x, weight, self.bias, stride=self.stride, padding=self.padding)


def kaiser_sinc_filter(cutoff: float, half_width: float, taps: int) -> torch.Tensor:
    """A low-pass FIR filter [1, 1, taps] (even taps): a Kaiser-windowed sinc with unit DC gain.

    The window's beta follows Kaiser's design formula for the attenuation that the transition band
    `half_width` (in cycles per sample) allows, as julius' LowPassFilters does.
    """
    half = taps // 2
    attenuation = 2.285 * (half - 1) * math.pi * (4 * half_width) + 7.95
    if attenuation > 50.0:
        beta = 0.1102 * (attenuation - 8.7)
    elif attenuation >= 21.0:
        beta = 0.5842 * (attenuation - 21) ** 0.4 + 0.07886 * (attenuation - 21.0)
    else:
        beta = 0.0
    window = torch.kaiser_window(taps, periodic=False, beta=beta)
    time = torch.arange(-half, half) + 0.5  # taps sit half a sample either side of the centre
    kernel = 2 * cutoff * window * torch.sinc(2 * cutoff * time)
    return (kernel / kernel.sum()).view(1, 1, taps)


def _resample_filter() -> torch.Tensor:
    """The anti-aliasing low-pass for 2x resampling: cutoff at the lower rate's Nyquist."""
    return kaiser_sinc_filter(cutoff=0.5 / RESAMPLE_RATIO, half_width=0.6 / RESAMPLE_RATIO, taps=RESAMPLE_TAPS)


class UpSample(nn.Module):
    """2x upsampling by zero-stuffing and low-pass filtering, edges padded by replication."""

    def __init__(self):
        super().__init__()
        self.register_buffer("filter", _resample_filter())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pad = RESAMPLE_TAPS // RESAMPLE_RATIO - 1
        crop = pad * RESAMPLE_RATIO + (RESAMPLE_TAPS - RESAMPLE_RATIO) // 2  # the same on both sides for even taps
        x = F.pad(x, (pad, pad), mode="replicate")
        kernel = self.filter.expand(x.shape[1], -1, -1)
        x = RESAMPLE_RATIO * F.conv_transpose1d(x, kernel, stride=RESAMPLE_RATIO, groups=x.shape[1])
        return x[..., crop:-crop]


class LowPass(nn.Module):
    """Low-pass filtering and keeping every second sample, edges padded by replication."""

    def __init__(self):
        super().__init__()
        self.register_buffer("filter", _resample_filter())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.pad(x, (RESAMPLE_TAPS // 2 - 1, RESAMPLE_TAPS // 2), mode="replicate")
        return F.conv1d(x, self.filter.expand(x.shape[1], -1, -1), stride=RESAMPLE_RATIO, groups=x.shape[1])


class DownSample(nn.Module):
    """2x downsampling (the published key layout nests its filter as `downsample.lowpass.filter`)."""

    def __init__(self):
        super().__init__()
        self.lowpass = LowPass()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lowpass(x)


class Snake(nn.Module):
    """Snake x + sin^2(a x) / a (Liu Ziyin et al., 2020), or SnakeBeta x + sin^2(a x) / b, per channel."""

    def __init__(self, channels: int, beta: bool, logscale: bool):
        super().__init__()
        self.logscale = logscale
        self.alpha = nn.Parameter(torch.zeros(channels) if logscale else torch.ones(channels))
        self.beta = nn.Parameter(torch.zeros(channels) if logscale else torch.ones(channels)) if beta else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        alpha = self.alpha[None, :, None]
        beta = alpha if self.beta is None else self.beta[None, :, None]
        if self.logscale:
            alpha, beta = alpha.exp(), beta.exp()
        return x + 1.0 / (beta + 1e-9) * torch.sin(x * alpha).pow(2)


class AntiAliasedActivation(nn.Module):
    """Snake at twice the sample rate, so that its harmonics above Nyquist are filtered out, not aliased."""

    def __init__(self, channels: int, config: BigVGANConfig):
        super().__init__()
        self.upsample = UpSample()
        self.act = Snake(channels, beta=config.activation == "snakebeta", logscale=config.snake_logscale)
        self.downsample = DownSample()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.downsample(self.act(self.upsample(x)))


class AMPBlock(nn.Module):
    """Anti-aliased multi-periodicity block (type 1): per dilation, act -> dilated conv -> act -> conv, residual."""

    def __init__(self, channels: int, kernel_size: int, dilations: tuple[int, ...], config: BigVGANConfig):
        super().__init__()
        self.convs1 = nn.ModuleList([WNConv1d(channels, channels, kernel_size, dilation=d) for d in dilations])
        self.convs2 = nn.ModuleList([WNConv1d(channels, channels, kernel_size) for _ in dilations])
        self.activations = nn.ModuleList([AntiAliasedActivation(channels, config) for _ in range(2 * len(dilations))])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, (conv1, conv2) in enumerate(zip(self.convs1, self.convs2)):
            h = conv2(self.activations[2 * i + 1](conv1(self.activations[2 * i](x))))
            x = h + x
        return x


class BigVGAN(nn.Module):
    """BigVGAN generator: log-mel [B, num_mels, frames] -> waveform [B, 1, frames * hop_length] in [-1, 1]."""

    def __init__(self, config: BigVGANConfig):
        super().__init__()
        self.config = config
        self.conv_pre = WNConv1d(config.num_mels, config.upsample_initial_channel, 7)
        self.ups = nn.ModuleList([
            nn.ModuleList([WNConvTranspose1d(config.upsample_initial_channel // 2**i, config.channels(i), k, u)])
            for i, (u, k) in enumerate(zip(config.upsample_rates, config.upsample_kernel_sizes))
        ])
        # stage i's blocks are resblocks[i * kernels : (i + 1) * kernels]
        self.resblocks = nn.ModuleList([
            AMPBlock(config.channels(i), k, d, config)
            for i in range(len(config.upsample_rates))
            for k, d in zip(config.resblock_kernel_sizes, config.resblock_dilation_sizes)
        ])
        last = config.channels(len(config.upsample_rates) - 1)
        self.activation_post = AntiAliasedActivation(last, config)
        self.conv_post = WNConv1d(last, 1, 7, bias=config.use_bias_at_final)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        kernels = len(self.config.resblock_kernel_sizes)
        x = self.conv_pre(mel)
        for i, stage in enumerate(self.ups):
            x = stage[0](x)
            blocks = self.resblocks[i * kernels:(i + 1) * kernels]
            total = blocks[0](x)
            for block in blocks[1:]:
                total = total + block(x)
            x = total / kernels
        x = self.conv_post(self.activation_post(x))
        return torch.tanh(x) if self.config.use_tanh_at_final else x.clamp(-1.0, 1.0)


def _published_spelling(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The published weight-norm names for a generator saved in another spelling: torch's parametrization
    (`parametrizations.weight.original0/1`) or plain folded weights (`weight`, which becomes g = |w|, v = w)."""
    spelled = {}
    for key, value in state.items():
        if key.endswith(".parametrizations.weight.original0"):
            spelled[key.removesuffix("parametrizations.weight.original0") + "weight_g"] = value
        elif key.endswith(".parametrizations.weight.original1"):
            spelled[key.removesuffix("parametrizations.weight.original1") + "weight_v"] = value
        elif key.endswith(".weight"):
            norm = torch.linalg.vector_norm(value, dim=tuple(range(1, value.ndim)), keepdim=True)
            spelled[key.removesuffix("weight") + "weight_g"] = norm
            spelled[key.removesuffix("weight") + "weight_v"] = value
        else:
            spelled[key] = value
    return spelled


def generator_state(checkpoint: object, source: str = "the vocoder file") -> dict[str, torch.Tensor]:
    """The generator's state dict from what `torch.load` returns for best_netG.pt or bigvgan_generator.pt."""
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("generator"), dict):
        keys = sorted(checkpoint)[:8] if isinstance(checkpoint, dict) else type(checkpoint).__name__
        raise CheckpointError(f"{source} has no 'generator' state dict (found {keys}). Is it a BigVGAN generator "
                              "checkpoint (best_netG.pt or bigvgan_generator.pt)?")
    state = checkpoint["generator"]
    if any(key.endswith((".weight", ".original0")) for key in state):
        logger.info("%s: convolutions are not in weight_g/weight_v spelling; renaming them", source)
        state = _published_spelling(state)
    return state


def load_vocoder(config: BigVGANConfig, checkpoint: object, source: str = "the vocoder file",
                 *, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> BigVGAN:
    """Build the BigVGAN of `config` and load a published checkpoint (`{"generator": ...}`) into it strictly."""
    state = generator_state(checkpoint, source)
    vocoder = BigVGAN(config)
    check_state_dict(vocoder, state, source)
    vocoder.load_state_dict(state, strict=True)
    return vocoder.to(device=device, dtype=dtype).eval().requires_grad_(False)


@torch.inference_mode()
def vocode(vocoder: BigVGAN, mel: torch.Tensor) -> torch.Tensor:
    """Log-mel [B, num_mels, frames] -> waveform [B, 1, frames * hop_length], as MMAudio's `FeaturesUtils.vocode`."""
    return vocoder(mel)
