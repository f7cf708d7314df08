"""Vocoder: HiFi-GAN V1 (AudioLDM's 16 kHz, 64-mel generator) from log-mel to waveform."""

import torch
from transformers import SpeechT5HifiGan, SpeechT5HifiGanConfig

from engine.vta_ldm.config import VocoderConfig


def build_vocoder(config: VocoderConfig, sample_rate: int) -> SpeechT5HifiGan:
    """HiFi-GAN with plain (weight-norm removed) convolutions; transformers' module has the same maths."""
    hifigan_config = SpeechT5HifiGanConfig(
        model_in_dim=config.num_mels,
        sampling_rate=sample_rate,
        upsample_initial_channel=config.upsample_initial_channel,
        upsample_rates=list(config.upsample_rates),
        upsample_kernel_sizes=list(config.upsample_kernel_sizes),
        resblock_kernel_sizes=list(config.resblock_kernel_sizes),
        resblock_dilation_sizes=[list(d) for d in config.resblock_dilation_sizes],
        normalize_before=False,
        leaky_relu_slope=0.1,
    )
    return SpeechT5HifiGan(hifigan_config).eval()


@torch.inference_mode()
def vocode(vocoder: SpeechT5HifiGan, mel: torch.Tensor) -> torch.Tensor:
    """Log-mel [B, 1, frames, mels] -> waveform [B, samples] in [-1, 1] (tanh output)."""
    return vocoder(mel.squeeze(1))
