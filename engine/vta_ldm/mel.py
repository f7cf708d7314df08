"""Log-mel spectrogram as AudioLDM computes it for its VAE and HiFi-GAN (16 kHz, n_fft 1024, hop 160, 64 Slaney
mel bands from 0 to 8 kHz, natural log of the magnitude clamped at 1e-5), for training the starter model."""

import functools

import numpy as np
import torch

N_FFT = 1024
HOP = 160


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    """Slaney's mel scale: linear below 1 kHz, logarithmic above."""
    hz = np.asarray(hz, dtype=np.float64)
    linear = hz * 3 / 200
    return np.where(hz >= 1000, 15 + np.log(np.maximum(hz, 1e-9) / 1000) / (np.log(6.4) / 27), linear)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    mel = np.asarray(mel, dtype=np.float64)
    return np.where(mel >= 15, 1000 * np.exp((np.log(6.4) / 27) * (mel - 15)), mel * 200 / 3)


@functools.cache
def mel_filterbank(sample_rate: int = 16000, bands: int = 64, fmax: float = 8000.0) -> torch.Tensor:
    """[bands, N_FFT // 2 + 1] triangular filters, area-normalised (Slaney), as librosa's default mel basis."""
    freqs = np.linspace(0, sample_rate / 2, N_FFT // 2 + 1)
    edges = _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(fmax), bands + 2))
    lower = (freqs[None, :] - edges[:-2, None]) / (edges[1:-1] - edges[:-2])[:, None]
    upper = (edges[2:, None] - freqs[None, :]) / (edges[2:] - edges[1:-1])[:, None]
    weights = np.maximum(0, np.minimum(lower, upper)) * (2.0 / (edges[2:] - edges[:-2]))[:, None]
    return torch.from_numpy(weights.astype(np.float32))


def log_mel(audio: torch.Tensor, frames: int, bands: int = 64, sample_rate: int = 16000) -> torch.Tensor:
    """Waveforms [B, samples] -> log-mel [B, frames, bands] (centred STFT frames, cut or padded to `frames`)."""
    spectrum = torch.stft(audio, N_FFT, HOP, N_FFT, torch.hann_window(N_FFT, device=audio.device), center=True,
                          pad_mode="reflect", return_complex=True).abs()
    mel = torch.einsum("mf,bft->btm", mel_filterbank(sample_rate, bands).to(audio.device), spectrum)
    mel = torch.log(mel.clamp(min=1e-5))
    if mel.shape[1] < frames:
        mel = torch.nn.functional.pad(mel, (0, 0, 0, frames - mel.shape[1]), value=float(np.log(1e-5)))
    return mel[:, :frames]
