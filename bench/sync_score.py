"""How well the sync score separates sound that follows the picture from the same sound played late: synthetic
clips with their physically timed sound, scored as written and shifted by `--shift` seconds, at the built-in
model's frame rate and picture size (the score its sidecars carry).

Usage: python bench/sync_score.py [--clips 20] [--shift 0.3] [--work /tmp/sync-bench]
"""

import argparse
from pathlib import Path

import numpy as np
import soundfile

from engine.models import model_config
from engine.training.evaluate import clip_sync_score
from engine.training.synthetic import make_clip, write_clip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=20)
    parser.add_argument("--shift", type=float, default=0.3)
    parser.add_argument("--work", default="/tmp/sync-bench")
    args = parser.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    config = model_config("builtin")
    rows = []
    for seed in range(args.clips):
        video = write_clip(make_clip(seed, seconds=4.0), work)
        audio, rate = soundfile.read(str(video.with_suffix(".wav")), dtype="float32")
        late = np.concatenate([np.zeros(int(args.shift * rate), np.float32), audio[: -int(args.shift * rate)]])
        soundfile.write(str(work / "late.wav"), late, rate)
        rows.append([clip_sync_score(video, wav, config.frame_rate, config.vision.image_size)
                     for wav in (video.with_suffix(".wav"), work / "late.wav")])
    scores = np.array(rows)
    print(f"{args.clips} clips: in sync {scores[:, 0].mean():.3f}, {args.shift} s late {scores[:, 1].mean():.3f}; "
          f"in sync higher on {(scores[:, 0] > scores[:, 1]).sum()}, equal on {(scores[:, 0] == scores[:, 1]).sum()}, "
          f"lower on {(scores[:, 0] < scores[:, 1]).sum()}")


if __name__ == "__main__":
    main()
