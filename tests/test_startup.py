"""`foley --help` and argument errors load none of the heavy libraries (bench/startup.py measures the time)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ["torch", "diffusers", "transformers", "av", "cv2", "opentimelineio", "PySide6", "numpy", "scipy",
         "soundfile", "pyloudnorm", "fastapi", "uvicorn", "safetensors", "PIL"]
PROBE = """
import json, sys
from ui.cli import main
try:
    main(sys.argv[1:])
except SystemExit as exit:
    code = exit.code
print(json.dumps({"code": code, "heavy": sorted({m.split(".")[0] for m in sys.modules} & set(HEAVY))}), file=sys.stderr)
"""


@pytest.mark.parametrize("argv", [["--help"], ["generate", "--help"], ["generate", "clip.mp4", "--variants", "x"],
                                  ["export", "--bogus"], ["panel", "--help"], ["serve", "--port", "x"]])
def test_help_and_argument_errors_load_no_heavy_library(argv):
    result = subprocess.run([sys.executable, "-c", f"HEAVY = {HEAVY!r}\n{PROBE}", *argv], cwd=ROOT,
                            capture_output=True, text=True)
    report = json.loads(result.stderr.strip().splitlines()[-1])
    assert report["code"] in (0, 2), result.stderr
    assert report["heavy"] == [], f"`foley {' '.join(argv)}` imported {report['heavy']}"
