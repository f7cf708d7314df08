"""bench/gpu.py, the one-shot GPU measurement, on this CPU at the test model's shapes: every row of
docs/gpu-measurement.md is printed, and the rows a CPU cannot run say why."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).parents[1]


@pytest.mark.skipif(torch.cuda.is_available(), reason="on a GPU the bench runs its GPU rows instead")
def test_gpu_bench_prints_every_row_and_why_it_skips_the_gpu_ones():
    run = subprocess.run([sys.executable, "bench/gpu.py", "--tiny", "--calls", "1", "--device", "cpu"], cwd=ROOT,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    rows = {}
    for line in run.stdout.splitlines():
        rows.setdefault(line.split()[0], []).append(line)
    assert list(rows) == ["environment", "naive", "reference", "fast", "draft", "compiled", "variants", "encoder",
                          "stages", "memory"]
    assert "tiny shapes" in rows["environment"][0] and " 1.00x " in rows["naive"][0]
    assert [len(rows[name]) for name in ("reference", "fast", "draft")] == [2, 2, 1]
    for line in (*rows["reference"], *rows["fast"], *rows["draft"]):  # seconds per window and the ratio to naive
        assert re.search(r" \d+\.\d\d s +\d+\.\d\dx ", line) or "skipped: fp16 needs CUDA" in line, line
    assert "dpmpp_2m 25" in rows["fast"][0] and "unipc 25" in rows["fast"][1] and "dpmpp_2m 10" in rows["draft"][0]
    assert "skipped: CUDA graphs need a CUDA device" in rows["compiled"][0]
    assert "in one call" in rows["variants"][0] and "one CFG pair per call" in rows["variants"][0]
    encoder = rows["encoder"][0]
    assert "torch fp32" in encoder and "CUDA: skipped:" in encoder and "TensorRT: skipped:" in encoder
    assert "CPU: ONNX int8 on CPUExecutionProvider" in encoder
    shares = [int(part.split()[-1].rstrip("%")) for part in rows["stages"][0].split(": ", 1)[1].split(", ")]
    assert len(shares) == 5 and 97 <= sum(shares) <= 103  # decode, encode, sample, vae, vocode
    assert "process peak RSS" in rows["memory"][0]
