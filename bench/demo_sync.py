"""The demo, as a new user hears it: for each seed, which of the demo ball's floor impacts get an onset within one
video frame, the stray onsets, and how loud the loudest stretch between impacts is against the quietest impact.
`--scene blender` scores a scene the synthetic generator never drew instead: a body dropped on a floor in
Blender's rigid-body physics, rendered by Cycles at `--fps` (needs `blender`), its impacts from the simulation.

    python bench/demo_sync.py [--model builtin] [--seeds 0 1 2 3 4] [--steps 25] [--guidance 3]
    python bench/demo_sync.py --scene blender [--body cube|sphere] [--fps 24]
"""

import argparse
import json
import subprocess
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
    parser.add_argument("--scene", choices=["demo", "blender"], default="demo")
    parser.add_argument("--body", choices=["cube", "sphere"], default="cube", help="--scene blender: what drops")
    parser.add_argument("--fps", type=int, default=24, help="--scene blender: the render's frame rate")
    args = parser.parse_args()
    components = load_model(args.model)
    sampling = SAMPLING_PRESETS["fast"]
    sampling = replace(sampling, steps=args.steps or sampling.steps, guidance=args.guidance or sampling.guidance)
    with TemporaryDirectory() as folder:
        if args.scene == "demo":
            video, impacts, fps = make_demo_video(Path(folder) / "demo.mp4"), demo_impacts(), 25
        else:
            (video, impacts), fps = blender_drop(Path(folder), args.body, args.fps), args.fps
        info = probe_video(video)
        frames = EditFrames((EditSpan(info.path, Fraction(0), info.duration, Fraction(0)),), Fraction(0),
                            info.duration, components.config.frame_rate, components.config.vision.image_size)
        generation = generate(frames, components=components, sampling=sampling, seeds=tuple(args.seeds))
    rate, seconds = generation.sample_rate, float(info.duration)
    hits = []
    print(f"model {args.model}, {sampling.sampler} {sampling.steps} steps, guidance {sampling.guidance}; "
          f"{args.scene} impacts at {', '.join(f'{t:.3g}' for t in impacts)} s ({fps} fps)")
    for variant in generation.variants:
        onsets = audio_onsets(variant.audio, rate)
        accuracy = onset_accuracy(onsets, impacts, fps)
        hits.append(accuracy)
        print(f"seed {variant.seed}: {round(accuracy * len(impacts))}/{len(impacts)} impacts hit, "
              f"{false_onsets(onsets, impacts, seconds):.2f} stray onsets per 4 s, loudest between impacts "
              f"{loudest_between_events(variant.audio, impacts, rate):+.1f} dB against the quietest impact, "
              f"{loudest_between_events(variant.audio, impacts, rate, against='median'):+.1f} against the median")
    print(f"all seeds: {np.mean(hits):.3f} of impacts hit (worst seed {min(hits):.3f})")


GRAVITY = 9.81
BOUNCE_LEAST = 0.05  # m: a bounce lower than this is too small to be heard as an impact of its own


def blender_drop(folder: Path, body: str, fps: int, seconds: int = 8) -> tuple[Path, list[float]]:
    """Render the rigid-body drop into `folder` (frames, then an H.264 file); returns the video and its impact
    times. The simulation gives the body's height per frame; between contacts its centre falls
    freely (z = z0 + v t - g t^2 / 2, whatever its spin), so each impact is where the parabola through the frames
    before a bounce meets the one through the frames after it."""
    settings = {"out": str(folder), "fps": fps, "frames": seconds * fps, "size": 128, "body": body, "height": 5.0,
                "restitution": 0.6}
    scene = Path(__file__).with_name("blender_drop_scene.py")
    subprocess.run(["blender", "-b", "--factory-startup", "--python", str(scene), "--", json.dumps(settings)],
                   check=True, capture_output=True)
    video = folder / "blender-drop.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-framerate", str(fps), "-i", str(folder / "frame_%04d.png"),
                    "-c:v", "libx264", "-pix_fmt", "yuv420p", str(video)], check=True)
    heights = np.array(json.loads((folder / "heights.json").read_text())["heights"])
    times = np.arange(len(heights)) / fps
    lowest = [i for i in range(1, len(heights) - 1) if heights[i] < heights[i - 1] and heights[i] <= heights[i + 1]]
    impacts, previous = [], 0
    for n, i in enumerate(lowest):
        following = lowest[n + 1] if n + 1 < len(lowest) else len(heights)
        if heights[previous:i].max() - heights[i] < BOUNCE_LEAST:
            previous = i  # a wobble as the body settles or tumbles, not an impact of its own
            continue
        fall, rise = slice(max(previous + 1, i - 3), i), slice(i + 1, min(following, i + 4))
        if fall.stop - fall.start < 2 or rise.stop - rise.start < 2:
            impacts.append(float(times[i]))
        else:
            (va, za), (vb, zb) = (np.polyfit(times[part], heights[part] + GRAVITY * times[part] ** 2 / 2, 1)
                                  for part in (fall, rise))
            impacts.append(float(np.clip((zb - za) / (va - vb), times[i - 1], times[i + 1])))
        previous = i
    return video, impacts


if __name__ == "__main__":
    main()
