"""Engine pool benchmark: jobs per minute with 1 and 2 replicas, status latency under load, and the pool's
overhead against the single engine (`foley serve`), printed as ratios from one run.

Runs the built-in starter model everywhere, every engine on one thread (OMP_NUM_THREADS=1): a `foley serve`
process, then a local Ray cluster (2 CPUs, 200 MB object store) with the pool at 1 and at 2 CPU replicas. The same
jobs are queued at once on each; while they run, a client polls GET /v1/jobs/{id}.
Usage: python bench/pool.py [--jobs 6] [--steps 10]   (about a minute on 2 cores)
"""

import argparse
import os
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def measure(client, jobs: int, upload: dict, pixels: bytes) -> tuple[float, list[float]]:
    """Queue `jobs` jobs at once and wait for all: jobs per minute, and the status latencies (ms) seen meanwhile."""
    client.wait(client.submit_frames(pixels, seeds=[0], **upload)["id"])  # warm: the model is loaded, code paths run
    latencies: list[float] = []
    started = time.perf_counter()
    ids = [client.submit_frames(pixels, seeds=[seed], **upload)["id"] for seed in range(1, jobs + 1)]
    finished = threading.Event()

    def poll() -> None:
        while not finished.is_set():
            tick = time.perf_counter()
            client.job(ids[-1])
            latencies.append((time.perf_counter() - tick) * 1000)
            time.sleep(0.02)

    poller = threading.Thread(target=poll)
    poller.start()
    for job_id in ids:
        client.wait(job_id)
    per_minute = jobs / (time.perf_counter() - started) * 60
    finished.set()
    poller.join()
    return per_minute, latencies


def single_engine(jobs: int, upload: dict, pixels: bytes) -> tuple[float, list[float]]:
    from engine.serving.client import start_engine

    command = [sys.executable, "-m", "ui.cli", "serve", "--max-queue", str(jobs + 1)]
    client = start_engine(command, timeout=180)
    try:
        return measure(client, jobs, upload, pixels)
    finally:
        client.shutdown()


def pool(home: Path, port: int, replicas: int, jobs: int, upload: dict, pixels: bytes) -> tuple[float, list[float]]:
    from ray import serve

    from engine.pool import APP, PoolSettings, ensure_token, start_pool
    from engine.serving.client import EngineClient

    settings = PoolSettings(home / f"shared-{replicas}", replicas=replicas, max_queue=jobs + 1, model="builtin")
    url = start_pool(settings, port=port)  # Serve keeps the first HTTP port it was started with
    try:
        return measure(EngineClient(url, ensure_token(settings.token_file)), jobs, upload, pixels)
    finally:
        serve.delete(APP)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=6, help="jobs per measurement")
    parser.add_argument("--steps", type=int, default=10, help="sampling steps per job")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="foley-pool-bench-"))
    # the engine processes and Ray's workers inherit these: this checkout's code, one thread each, a private home
    os.environ.update(FOLEY_HOME=str(home), OMP_NUM_THREADS="1",
                      PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    sys.path.insert(0, str(ROOT))
    import ray

    from engine.models import model_config

    config = model_config("builtin")
    count, size = 2 * config.frame_rate, config.vision.image_size
    pixels = bytes(count * size * size * 3)
    upload = dict(count=count, width=size, height=size, fps=config.frame_rate, start="0", end="2", model="builtin",
                  frame_times=[f"{n}/{config.frame_rate}" for n in range(count)], steps=args.steps)

    single, single_lat = single_engine(args.jobs, upload, pixels)
    ray.init(address="local", num_cpus=2, object_store_memory=200 << 20, include_dashboard=False,
             log_to_driver=False)
    try:
        port = free_port()
        one, _ = pool(home, port, 1, args.jobs, upload, pixels)
        two, pool_lat = pool(home, port, 2, args.jobs, upload, pixels)
    finally:
        ray.shutdown()

    print(f"built-in model, {args.steps} steps, 2 s range, {args.jobs} jobs queued at once per measurement, "
          f"{os.cpu_count()} CPUs, one thread per engine")
    print(f"single engine (foley serve): {single:7.1f} jobs/min")
    print(f"pool, 1 replica:             {one:7.1f} jobs/min   time per job vs the single engine: "
          f"{single / one:.2f}x (pool overhead)")
    print(f"pool, 2 replicas:            {two:7.1f} jobs/min   2 vs 1 replica: {two / one:.2f}x")
    print(f"GET /v1/jobs/{{id}} while jobs run: single engine p50 {statistics.median(single_lat):.1f} ms, "
          f"p99 {percentile(single_lat, 0.99):.1f} ms ({len(single_lat)} requests); pool of 2 p50 "
          f"{statistics.median(pool_lat):.1f} ms, p99 {percentile(pool_lat, 0.99):.1f} ms ({len(pool_lat)}); "
          f"pool/single p50 {statistics.median(pool_lat) / statistics.median(single_lat):.2f}x, "
          f"p99 {percentile(pool_lat, 0.99) / percentile(single_lat, 0.99):.2f}x")


if __name__ == "__main__":
    main()
