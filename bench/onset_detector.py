"""How well a model's onset detector finds a labelled set's impacts from the pictures alone, at several thresholds:
the onsets it would tell the UNet, scored as `foley eval` scores sound (within one video frame; strays farther
than 0.1 s from every impact, per 4 s). Pick the threshold on clips the test set does not hold (a validation set
of training kinds), then score the test set at that threshold.

    python bench/onset_detector.py --model starter7 --set data/val --thresholds 0.3,0.4,0.5,0.6
"""

import argparse
import json
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

from engine.metrics import false_onsets, onset_accuracy
from engine.models import load_model
from engine.video import decode_frames, probe_video
from engine.vta_ldm.vision_encoder import onset_map


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True)
    parser.add_argument("--set", required=True, help="a folder written by `foley synth`")
    parser.add_argument("--thresholds", default="0.3,0.4,0.5,0.6,0.7")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = load_model(args.model)
    config, vision = model.config, model.stages.vision
    if not config.vision.onset_kernel:
        raise SystemExit(f"'{args.model}' has no onset detector.")
    thresholds = [float(t) for t in args.thresholds.split(",")]
    scores = {t: {} for t in thresholds}  # threshold -> kind -> [(accuracy, strays)]
    for path in sorted(Path(args.set).glob("*.json")):
        labels = json.loads(path.read_text())
        video = path.with_suffix(".mp4")
        end = min(probe_video(video).duration, config.window_seconds)  # one window, as the model sees it
        frames = decode_frames(video, Fraction(0), end, rate=config.frame_rate, size=config.vision.image_size)
        with torch.no_grad():
            _, logits = vision.events(torch.from_numpy(frames.model_input()).float())
        impacts = [e["time"] for e in labels["events"] if e["kind"] == "impact"]
        seconds = len(logits) / config.frame_rate
        for threshold in thresholds:
            marked = (onset_map(logits, threshold) == 1).nonzero()[:, 0].numpy() / config.frame_rate
            row = (onset_accuracy(marked, impacts, labels["fps"]), false_onsets(marked, impacts, seconds))
            scores[threshold].setdefault(labels.get("kind", "drop"), []).append(row)
    kinds = sorted(next(iter(scores.values())))
    print("| threshold | all: accuracy | all: strays / 4 s | " + " | ".join(kinds) + " |")
    print("|---" * (3 + len(kinds)) + "|")
    for threshold, by_kind in scores.items():
        every = np.array([row for rows in by_kind.values() for row in rows])
        cells = [f"{np.mean([r[0] for r in by_kind[k]]):.3f} / {np.mean([r[1] for r in by_kind[k]]):.2f}" for k in kinds]
        print(f"| {threshold:g} | {every[:, 0].mean():.3f} | {every[:, 1].mean():.2f} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
