"""MMAudio on this machine at the published shapes with random weights: seconds per 8 s clip and each stage's share,
for the precisions given, from one run (the weights do not change the work; the sound is noise).

Usage: python bench/mmaudio_speed.py [--variant small_16k] [--precision fp32 bf16 onnx-int8] [--steps 25]
(small_16k in fp32 takes several minutes on 2 CPU cores, mostly the CLIP ViT-H/14 over 64 frames of 384 px.)
MMAudio's paper reports 1.23 s (small) and 1.96 s (large) per 8 s clip on a GPU: the numbers to beat there.
"""

import argparse
import tempfile
import time
from collections import defaultdict
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import torch

from engine.config import Prompt
from engine.mmaudio.config import PRESETS
from engine.mmaudio.encoders import OnnxPictureEncoders, export_onnx
from engine.mmaudio.pipeline import SAMPLING_PRESETS, frame_source, generate_window, timesteps
from engine.mmaudio.stages import build_modules
from engine.models import PRECISIONS
from engine.training.sample_video import make_demo_video
from engine.video import EditSpan


def measure(variant: str, precision: str, steps: int, video: Path) -> dict[str, float]:
    """Seconds per stage of one 8 s window: decode (both streams), encode (CLIP frames, Synchformer, prompt), sample
    (Euler with CFG), VAE, vocoder. `onnx-int8`: fp32 torch stages, the picture encoders from their int8 ONNX
    export (written first, not timed)."""
    config = PRESETS[variant]
    stages = build_modules(config)
    if precision == "onnx-int8":
        path = export_onnx(stages.clip, stages.synchformer, video.parent / "pictures-int8.onnx", "int8")
        stages.onnx = OnnxPictureEncoders(path, stages.clip, stages.synchformer)
        size = sum(file.stat().st_size for file in path.parent.glob(f"{path.name}*"))  # with its external data
        print(f"onnx-int8: {size / 2**20:.0f} MiB on {stages.onnx.providers[0]}")
    for name, module in stages.parts().items():
        setattr(stages, name, module.to(PRECISIONS.get(precision, torch.float32)))
    end = config.window_seconds
    times: dict[str, float] = defaultdict(float)
    clock = {"stage": "decode", "at": time.perf_counter()}

    def report(stage: str, step: int, total: int) -> None:
        now = time.perf_counter()
        times[clock["stage"]] += now - clock["at"]
        clock.update(stage=stage, at=now)

    source = frame_source((EditSpan(video, Fraction(0), end, Fraction(0)),), Fraction(0), end, config)
    part = source.window(Fraction(0), end)
    report("encode", 0, 1)
    sampling = replace(SAMPLING_PRESETS["reference"], steps=steps)
    generate_window(stages, config, 1.0, "cpu", part, sampling, timesteps(config, sampling), [0], report,
                    Prompt("footsteps on gravel", ""), None)
    report("done", 0, 0)
    return dict(times)


def guidance_row(variant: str, repeats: int = 3) -> tuple[float, float]:
    """Seconds of one guided network step: both halves in one call (as the engine runs it) vs one call each."""
    config = PRESETS[variant]
    network = build_modules(config).network
    lengths, hidden = network.sequence, config.network
    conditions = network.prepare_conditions(torch.randn(1, lengths.clip_seq_len, hidden.clip_dim),
                                            torch.randn(1, lengths.sync_seq_len, hidden.sync_dim),
                                            torch.randn(1, hidden.text_seq_len, hidden.text_dim))
    empty = network.empty_conditions(1)
    latent, t = torch.randn(1, lengths.latent_seq_len, hidden.latent_dim), torch.full((1,), 0.5)

    def timed(run) -> float:
        run()  # warm-up
        started = time.perf_counter()
        for _ in range(repeats):
            run()
        return (time.perf_counter() - started) / repeats

    with torch.inference_mode():
        batched = timed(lambda: network.guided_velocity(latent, 0.5, conditions, empty, 4.5))
        apart = timed(lambda: (network(latent, t, conditions), network(latent, t, empty)))
    return batched, apart


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", default="small_16k", choices=list(PRESETS))
    parser.add_argument("--precision", nargs="+", default=["fp32", "bf16", "onnx-int8"],
                        choices=["fp32", "bf16", "onnx-int8"])
    parser.add_argument("--steps", type=int, default=25)
    args = parser.parse_args()
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as folder:
        video = make_demo_video(Path(folder) / "clip.mp4", seconds=float(PRESETS[args.variant].window_seconds))
        rows = {precision: measure(args.variant, precision, args.steps, video) for precision in args.precision}
    print(f"MMAudio {args.variant}, one 8 s window, Euler {args.steps} steps with CFG, {torch.get_num_threads()} "
          "CPU threads, random weights")
    first = next(iter(rows.values()))
    stages = [stage for stage in first if stage != "done"]
    print(f"{'precision':<10}" + "".join(f"{stage:>16}" for stage in stages) + f"{'total s':>10}{'vs first':>10}")
    base = sum(first.values())
    for precision, times in rows.items():
        total = sum(times.values())
        cells = "".join(f"{times.get(stage, 0):>8.1f} s {100 * times.get(stage, 0) / total:>3.0f} %"
                        for stage in stages)
        print(f"{precision:<10}{cells}{total:>10.1f}{base / total:>9.2f}x")
    batched, apart = guidance_row(args.variant)
    print(f"one guided network step (fp32): both halves in one call {batched:.3f} s, one call each {apart:.3f} s "
          f"({apart / batched:.2f}x)")


if __name__ == "__main__":
    main()
