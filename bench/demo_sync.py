"""The demo, as a new user hears it: for each seed, which of the demo ball's floor impacts get an onset within one
video frame, the stray onsets, and how loud the loudest stretch between impacts is against the quietest impact.

    python bench/demo_sync.py [--model builtin] [--seeds 0 1 2 3 4] [--steps 25] [--guidance 3]
"""

import argparse
from dataclasses import replace
from fractions import Fraction
from pathlib import Path
from tempfile import TemporaryDirectory

import numpy as np

from engine.config import SAMPLING_PRESETS
from engine.core.generate import generate
from engine.metrics import audio_onsets, false_onsets, loudest_between_events, onset_accuracy
from engine.models import load_model
from engine.training.sample_video import demo_impacts, make_demo_video
from engine.video import EditFrames, EditSpan, probe_video


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="builtin")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--steps", type=int, help="override the fast preset's 25 steps")
    parser.add_argument("--guidance", type=float, help="override the fast preset's guidance 3")
    args = parser.parse_args()
    components = load_model(args.model)
    sampling = SAMPLING_PRESETS["fast"]
    sampling = replace(sampling, steps=args.steps or sampling.steps, guidance=args.guidance or sampling.guidance)
    impacts = demo_impacts()
    with TemporaryDirectory() as folder:
        video = make_demo_video(Path(folder) / "demo.mp4")
        info = probe_video(video)
        frames = EditFrames((EditSpan(info.path, Fraction(0), info.duration, Fraction(0)),), Fraction(0),
                            info.duration, components.config.frame_rate, components.config.vision.image_size)
        generation = generate(frames, components=components, sampling=sampling, seeds=tuple(args.seeds))
    rate, seconds = generation.sample_rate, float(info.duration)
    hits = []
    print(f"model {args.model}, {sampling.sampler} {sampling.steps} steps, guidance {sampling.guidance}; "
          f"demo impacts at {', '.join(f'{t:g}' for t in impacts)} s")
    for variant in generation.variants:
        onsets = audio_onsets(variant.audio, rate)
        accuracy = onset_accuracy(onsets, impacts, 25)
        hits.append(accuracy)
        print(f"seed {variant.seed}: {round(accuracy * len(impacts))}/{len(impacts)} impacts hit, "
              f"{false_onsets(onsets, impacts, seconds):.2f} stray onsets per 4 s, loudest between impacts "
              f"{loudest_between_events(variant.audio, impacts, rate):+.1f} dB against the quietest impact, "
              f"{loudest_between_events(variant.audio, impacts, rate, against='median'):+.1f} against the median")
    print(f"all seeds: {np.mean(hits):.3f} of impacts hit (worst seed {min(hits):.3f})")


if __name__ == "__main__":
    main()
