"""Start-up of the `foley` command: `foley --help` and an argument error, each as a ratio to a bare `python -c pass`
(the interpreter's own start), median of several runs, in wall time and in CPU time (user + system, which other
work on a busy machine disturbs less). Usage: python bench/startup.py [--runs 9]"""

import argparse
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CASES = {
    "python -c pass": ["-c", "pass"],
    "foley --help": ["-m", "ui.cli", "--help"],
    "foley generate --variants x (argument error)": ["-m", "ui.cli", "generate", "clip.mp4", "--variants", "x"],
    "foley generate --help": ["-m", "ui.cli", "generate", "--help"],
}


def seconds(args: list[str]) -> tuple[float, float]:
    """Wall and CPU time of one run of the interpreter with `args`, from the repository root (this tree's code)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run([sys.executable, *args], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=9)
    runs = parser.parse_args().runs
    medians = {}
    for name, args in CASES.items():
        seconds(args)  # warm the file cache
        samples = [seconds(args) for _ in range(runs)]
        medians[name] = tuple(statistics.median(sample[i] for sample in samples) for i in (0, 1))
    bare_wall, bare_cpu = medians["python -c pass"]
    for name, (wall, cpu) in medians.items():
        print(f"{name:<46} wall {wall * 1000:6.0f} ms {wall / bare_wall:5.1f}x   "
              f"cpu {cpu * 1000:6.0f} ms {cpu / bare_cpu:5.1f}x bare python")


if __name__ == "__main__":
    main()
