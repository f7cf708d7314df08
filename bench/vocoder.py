"""The starter model's trained HiFi-GAN (mel + STFT losses, no discriminators) against Griffin-Lim, the
training-free alternative: each turns the log-mel of a held-out clip's true sound back into audio, scored by onset
accuracy against the labels, log-mel distance to the input, and time, side by side in one run.

Usage: python bench/vocoder.py --held-out DIR [--model builtin] [--iterations 60]
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np
import soundfile
import torch

from engine.metrics import audio_onsets, onset_accuracy
from engine.models import load_model
from engine.vta_ldm.mel import HOP, N_FFT, log_mel, mel_filterbank
from engine.vta_ldm.vocoder import vocode


def griffin_lim(mel: torch.Tensor, iterations: int) -> torch.Tensor:
    """Log-mel [B, frames, mels] -> waveform: pseudo-inverse linear magnitude, then Griffin-Lim phase (1984)."""
    magnitude = (torch.linalg.pinv(mel_filterbank()) @ mel.exp().transpose(1, 2)).clamp(min=0)
    window = torch.hann_window(N_FFT)
    phase = torch.exp(2j * torch.pi * torch.rand(magnitude.shape, generator=torch.Generator().manual_seed(0)))
    length = mel.shape[1] * HOP
    for _ in range(iterations):
        audio = torch.istft(magnitude * phase, N_FFT, HOP, N_FFT, window, length=length)
        spectrum = torch.stft(audio, N_FFT, HOP, N_FFT, window, return_complex=True)
        phase = torch.exp(1j * spectrum.angle())[..., : magnitude.shape[-1]]
    return torch.istft(magnitude * phase, N_FFT, HOP, N_FFT, window, length=length)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--held-out", required=True)
    parser.add_argument("--model", default="builtin")
    parser.add_argument("--iterations", type=int, default=60)
    args = parser.parse_args()
    components = load_model(args.model)
    config = components.config
    rows = {"trained HiFi-GAN": [], f"Griffin-Lim ({args.iterations} iterations)": []}
    seconds = dict.fromkeys(rows, 0.0)
    for labels_path in sorted(Path(args.held_out).glob("*.json")):
        labels = json.loads(labels_path.read_text())
        audio = soundfile.read(str(labels_path.with_suffix(".wav")), dtype="float32")[0][: config.window_samples]
        mel = log_mel(torch.from_numpy(audio)[None], config.mel_frames, config.vocoder.num_mels)
        impacts = [e["time"] for e in labels["events"] if e["kind"] == "impact"]
        for name, make in zip(rows, (lambda: vocode(components.stages.vocoder, mel[:, None]),
                                     lambda: griffin_lim(mel, args.iterations))):
            started = time.perf_counter()
            wave = make()[0, : len(audio)]
            seconds[name] += time.perf_counter() - started
            again = log_mel(wave[None].float(), config.mel_frames, config.vocoder.num_mels)
            rows[name].append((onset_accuracy(audio_onsets(wave.numpy()), impacts, labels["fps"]),
                               float((again - mel).abs().mean())))
    reference = [onset_accuracy(audio_onsets(soundfile.read(str(p.with_suffix(".wav")), dtype="float32")[0]),
                                [e["time"] for e in json.loads(p.read_text())["events"] if e["kind"] == "impact"],
                                json.loads(p.read_text())["fps"]) for p in sorted(Path(args.held_out).glob("*.json"))]
    print(f"{len(reference)} held-out clips; the true sound's own onset accuracy: {np.mean(reference):.3f}")
    print("| vocoder | onset accuracy (±1 frame) | log-mel L1 to input | time (relative) |\n|---|---|---|---|")
    fastest = min(seconds.values())
    for name, values in rows.items():
        onset, distance = np.mean(values, axis=0)
        print(f"| {name} | {onset:.3f} | {distance:.3f} | {seconds[name] / fastest:.1f}x |")


if __name__ == "__main__":
    main()
