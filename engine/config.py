"""Options every model family shares: how a job samples and how its WAVs are levelled, with named presets."""

from dataclasses import dataclass
from typing import Literal

SamplerName = Literal["ddpm", "ddim", "dpmpp_2m", "unipc", "euler"]  # euler: flow matching (MMAudio)
LevelMode = Literal["normalised", "raw"]  # how variant WAVs are written (engine/core/levels.py)
LEVEL_MODES: tuple[LevelMode, ...] = ("normalised", "raw")


@dataclass(frozen=True)
class SamplingConfig:
    """How one job samples: the published method is DDPM, 300 steps, guidance 3."""

    sampler: SamplerName = "ddpm"
    steps: int = 300
    guidance: float = 3.0
    spacing: Literal["leading", "trailing"] = "leading"  # the published scheduler uses leading


@dataclass(frozen=True)
class Prompt:
    """What a text-conditioned model is asked for, and what it is steered away from (empty: no prompt)."""

    text: str = ""
    negative: str = ""

    def __bool__(self) -> bool:
        return bool(self.text or self.negative)


SAMPLING_PRESETS: dict[str, SamplingConfig] = {
    "reference": SamplingConfig(),  # the published method
    # a deterministic 2nd-order ODE solver from t = 999 (bench/samplers.py measures its convergence)
    "fast": SamplingConfig(sampler="dpmpp_2m", steps=25, spacing="trailing"),
    # the same solver in 10 steps: the fast preset's onset accuracy on the starter model (docs/starter-model.md);
    # bench/draft.py measures it against the fast preset's output (log-mel distance, onset agreement)
    "draft": SamplingConfig(sampler="dpmpp_2m", steps=10, spacing="trailing"),
}
