"""Shared fixtures: an isolated model home, an untrained tiny model, and coded test videos."""

import shutil
from fractions import Fraction

import numpy as np
import pytest
import torch

from engine.models import Components
from engine.training.sample_video import write_video
from engine.vta_ldm.config import TINY
from engine.vta_ldm.stages import build_modules

DEBIAN_PACKAGES = {"melt": "melt frei0r-plugins", "ffmpeg": "ffmpeg", "blender": "blender", "node": "nodejs"}
CODE_BITS = 9
SIZE = 224


def installed(program: str) -> str:
    """The path of a real host program a test drives; when it is missing the test fails with the install command."""
    path = shutil.which(program)
    if path is None:
        pytest.fail(f"{program} is not installed: apt-get install {DEBIAN_PACKAGES[program]} "
                    "(the README's test command does this when run as root)")
    return path


@pytest.fixture(autouse=True)
def foley_home(tmp_path, monkeypatch):
    """Every test gets its own model directory; the user's real one is never touched."""
    home = tmp_path / "foley-home"
    monkeypatch.setenv("FOLEY_HOME", str(home))
    return home


def untrained(config=TINY) -> Components:
    """A model of `config` with random weights (seed 0): runs every stage fast, its sound means nothing."""
    with torch.random.fork_rng():
        torch.manual_seed(0)
        modules = build_modules(config)
    licences = ({"component": "all", "licence": "none (test model)", "source": "tests"},)
    return Components(config.name, config, modules, 1.0, licences, trained=False)


@pytest.fixture(scope="session")
def tiny():
    return untrained()


def coded_frame(index: int) -> np.ndarray:
    """A 224x224 frame whose 8 vertical bands spell `index` in binary (white = 1), readable after decoding."""
    image = np.zeros((SIZE, SIZE, 3), np.uint8)
    band = SIZE // CODE_BITS
    for bit in range(CODE_BITS):
        if index >> bit & 1:
            image[:, bit * band : (bit + 1) * band] = 255
    return image


def read_code(pixels: np.ndarray) -> int:
    """Inverse of `coded_frame` for a preprocessed [3, 224, 224] frame in [0, 1]."""
    band = SIZE // CODE_BITS
    centres = [pixels[:, SIZE // 2, bit * band + band // 2].mean() for bit in range(CODE_BITS)]
    return sum(1 << bit for bit, value in enumerate(centres) if value > 0.5)


def coded_video(path, times: list[Fraction], rate: Fraction):
    """Frame i is shown from times[i]; its picture encodes i."""
    return write_video(path, (coded_frame(i) for i in range(len(times))), times, rate)
