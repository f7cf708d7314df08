"""Start-up of the `foley` command: `foley --help` and an argument error, each as a ratio to a bare `python -c pass`
(the interpreter's own start), median of several runs. Usage: python bench/startup.py [--runs 9]"""

import argparse
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


def seconds(args: list[str]) -> float:
    """Wall time of one run of the interpreter with `args`, from the repository root (so this tree's code runs)."""
    started = time.perf_counter()
    subprocess.run([sys.executable, *args], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=9)
    runs = parser.parse_args().runs
    medians = {}
    for name, args in CASES.items():
        seconds(args)  # warm the file cache
        medians[name] = statistics.median(seconds(args) for _ in range(runs))
    bare = medians["python -c pass"]
    for name, median in medians.items():
        print(f"{name:<48} {median * 1000:7.0f} ms  {median / bare:5.1f}x bare python")


if __name__ == "__main__":
    main()
