"""Does the draft preset (10 steps) lose anything against the fast preset (25)? On held-out synthetic scenes with exact
impact labels, each candidate's sound is compared with the fast preset's from the same seed: relative log-mel distance
(as bench/samplers.py), onset agreement (one-to-one IoU of their audio onsets within one video frame), and each one's
onset accuracy against the labelled impacts, with the seconds per clip.

Usage: python bench/draft.py [--model builtin] [--clips 8] [--seconds 4]   (starter model: about 3 minutes on 2 cores;
the published model, `--model vta-ldm-clip4clip-v-large`, runs 4 s windows at about 1 minute per clip and sampler)
"""

import argparse
import tempfile
import time
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

from engine.config import SAMPLING_PRESETS, SamplingConfig
from engine.core.generate import generate
from engine.metrics import audio_onsets, matched_iou, onset_accuracy
from engine.models import describe_runtime, open_model
from engine.training.synthetic import MODEL_FPS, make_clip, plan, write_clip
from engine.video import EditFrames, EditSpan
from engine.vta_ldm.mel import HOP, log_mel

CANDIDATES = {"draft (dpmpp_2m 10)": SAMPLING_PRESETS["draft"],
              "unipc 10": replace(SAMPLING_PRESETS["draft"], sampler="unipc"),
              "dpmpp_2m 15": replace(SAMPLING_PRESETS["draft"], steps=15)}


def sound(components, video: Path, seconds: float, sampling: SamplingConfig, seed: int) -> tuple[np.ndarray, float]:
    """One variant of `video` and the seconds it took."""
    config = components.config
    end = Fraction(seconds).limit_denominator(1000)
    frames = EditFrames((EditSpan(video, Fraction(0), end, Fraction(0)),), Fraction(0), end, config.frame_rate,
                        config.vision.image_size)
    started = time.perf_counter()
    audio = generate(frames, components=components, sampling=sampling, seeds=(seed,)).variants[0].audio
    return audio, time.perf_counter() - started


def mel_distance(audio: np.ndarray, reference: np.ndarray) -> float:
    """|mel(a) - mel(ref)| / |mel(ref) - its mean|, on AudioLDM's log-mel frames."""
    frames = len(reference) // HOP + 1
    a, b = (log_mel(torch.from_numpy(x)[None], frames) for x in (audio, reference))
    return float((a - b).norm() / (b - b.mean()).norm())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="builtin")
    parser.add_argument("--clips", type=int, default=8, help="held-out scenes, the scene kinds in turn")
    parser.add_argument("--seconds", type=float, default=4.0)
    args = parser.parse_args()
    components = open_model(args.model)
    print(f"{args.model} on {describe_runtime(components)}; reference: the fast preset "
          f"({SAMPLING_PRESETS['fast'].sampler} {SAMPLING_PRESETS['fast'].steps} steps), same seed per clip")
    rows: dict[str, list[tuple[float, float, float, float]]] = {name: [] for name in ["fast 25", *CANDIDATES]}
    with tempfile.TemporaryDirectory() as folder:
        for seed, kind in plan("held-out", args.clips):
            clip = make_clip(seed, seconds=args.seconds, kind=kind)
            video = write_clip(clip, Path(folder))
            impacts = [e.time for e in clip.events if e.kind == "impact"]
            reference, spent = sound(components, video, args.seconds, SAMPLING_PRESETS["fast"], seed)
            onsets = audio_onsets(reference)
            rows["fast 25"].append((0.0, 1.0, onset_accuracy(onsets, impacts, MODEL_FPS), spent))
            for name, sampling in CANDIDATES.items():
                audio, spent = sound(components, video, args.seconds, sampling, seed)
                found = audio_onsets(audio)
                rows[name].append((mel_distance(audio, reference), matched_iou(found, onsets, 1 / MODEL_FPS + 1e-6),
                                   onset_accuracy(found, impacts, MODEL_FPS), spent))
    print(f"{args.clips} held-out clips of {args.seconds:g} s; means (and the worst clip's mel distance / agreement)")
    print(f"  {'':<22}{'mel distance':>18}{'onset agreement':>20}{'onset accuracy':>16}{'s per clip':>12}")
    for name, values in rows.items():
        table = np.array(values)
        mel, agreement, accuracy, seconds = table.mean(axis=0)
        print(f"  {name:<22}{mel:>9.4f} ({table[:, 0].max():.4f}){agreement:>12.3f} ({table[:, 1].min():.3f})"
              f"{accuracy:>16.3f}{seconds:>12.2f}")


if __name__ == "__main__":
    main()
