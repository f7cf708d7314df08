"""Engine server benchmark: status latency under load, jobs per minute, and server vs in-process overhead.

Runs a real `foley serve` in a temporary FOLEY_HOME with the built-in tiny model, side by side with
`generate()` in this process, and prints ratios. Usage: python bench/server_bench.py [--jobs 6] [--steps 10]
"""

import argparse
import os
import signal
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from fractions import Fraction
from pathlib import Path


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=6, help="jobs per measurement")
    parser.add_argument("--steps", type=int, default=10, help="sampling steps per job")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="foley-bench-"))
    os.environ["FOLEY_HOME"] = str(home)

    from engine.config import SAMPLING_PRESETS
    from engine.core.generate import generate
    from engine.models import embedded_default
    from engine.serving.client import EngineClient, read_discovery, start_engine
    from engine.training.sample_video import make_demo_video
    from engine.video import decode_frames

    components = embedded_default()
    config = components.config
    video = make_demo_video(home / "clip.mp4", seconds=4.0)
    frames = decode_frames(video, Fraction(0), Fraction(4), rate=config.frame_rate, size=config.vision.image_size)
    sampling = replace(SAMPLING_PRESETS["reference"], steps=args.steps)
    size = config.vision.image_size
    upload = dict(count=len(frames.rgb), width=size, height=size, fps=config.frame_rate, start="0", end="4",
                  frame_times=[str(t) for t in frames.times], steps=args.steps)

    # in-process: the same work without HTTP, serialisation or files
    generate(frames, components=components, sampling=sampling, seeds=(0,))  # warm-up
    started = time.perf_counter()
    for seed in range(args.jobs):
        generate(frames, components=components, sampling=sampling, seeds=(seed,))
    in_process = (time.perf_counter() - started) / args.jobs

    foley = str(Path(sys.executable).with_name("foley"))
    client: EngineClient = start_engine([foley, "serve", "--max-queue", str(args.jobs + 1)], timeout=120)
    try:
        pixels = frames.rgb.tobytes()
        client.wait(client.submit_frames(pixels, seeds=[0], **upload)["id"])  # warm-up: loads the model
        out = home / "downloads"
        started = time.perf_counter()
        for seed in range(args.jobs):
            job = client.submit_frames(pixels, seeds=[seed], **upload)
            client.wait(job["id"])
            client.download(job["id"], out)
        served = (time.perf_counter() - started) / args.jobs

        started = time.perf_counter()
        ids = [client.submit_frames(pixels, seeds=[seed], **upload)["id"] for seed in range(args.jobs)]
        for job_id in ids:
            client.wait(job_id)
        per_minute = args.jobs / (time.perf_counter() - started) * 60

        long_job = client.submit_frames(pixels, seeds=[1], **{**upload, "steps": 1000})["id"]
        while client.job(long_job)["state"] != "running":
            time.sleep(0.05)
        latencies = []
        for _ in range(200):
            tick = time.perf_counter()
            client.job(long_job)
            latencies.append((time.perf_counter() - tick) * 1000)
        client.cancel(long_job)
    finally:
        os.kill(read_discovery().pid, signal.SIGTERM)

    print(f"tiny model, {args.steps} steps, 4 s range, {args.jobs} jobs per measurement, {os.cpu_count()} CPUs")
    print(f"in-process generate():        {in_process * 1000:8.1f} ms/job")
    print(f"server submit+wait+download:  {served * 1000:8.1f} ms/job   overhead ratio {served / in_process:.3f}x")
    print(f"server throughput (queued):   {per_minute:8.1f} jobs/min")
    print(f"GET /v1/jobs/{{id}} during a running job: p50 {statistics.median(latencies):.2f} ms, "
          f"p99 {percentile(latencies, 0.99):.2f} ms (200 requests)")


if __name__ == "__main__":
    main()
