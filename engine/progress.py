"""Progress types: one step of a job (`StepInfo`), the stages every window runs, and an ETA from the pace measured
so far (`JobClock`)."""

import time
from collections.abc import Callable
from dataclasses import dataclass

WINDOW_STAGES = ("decode", "encode", "sample", "vae", "vocode")  # what `generate` runs per window, in this order


@dataclass(frozen=True)
class StepInfo:
    """Progress of one job: `step` of `total` in `stage`, for the `variants` that advance together from variant
    `variant` on, in window `window` of about `windows` (long ranges are generated window by window), and the
    job's remaining seconds `eta` (None until measured)."""

    stage: str
    step: int
    total: int
    variant: int = 0
    variants: int = 1
    window: int = 0
    windows: int = 1
    eta: float | None = None


class JobClock:
    """Times the units of each stage as they are reported and estimates the seconds the job has left.

    The estimate is the measured seconds per unit of each stage times the units that this and every later window
    still have to run, so a window that starts adds nothing: it was counted from the first step on.
    """

    def __init__(self, steps: int, clock: Callable[[], float] = time.monotonic):
        self.units = {stage: steps if stage == "sample" else 1 for stage in WINDOW_STAGES}
        self.clock = clock
        self.spent = dict.fromkeys(WINDOW_STAGES, 0.0)
        self.done = dict.fromkeys(WINDOW_STAGES, 0)
        self._last: tuple[str, int, float] | None = None

    def tick(self, stage: str, step: int, window: int, windows: int) -> float | None:
        """Record that `stage` of `window` reached `step`; return the job's remaining seconds (None until known)."""
        now = self.clock()
        if self._last is not None and self._last[0] == stage and step > self._last[1]:
            self.spent[stage] += now - self._last[2]
            self.done[stage] += step - self._last[1]
        self._last = (stage, step, now)
        return self.remaining(stage, step, windows - window - 1)

    def remaining(self, stage: str, step: int, later_windows: int) -> float | None:
        """Seconds left: the rest of this window from `stage` `step` on, plus `later_windows` whole windows.

        None until the sampler's pace is measured: it is most of the work, and a guess would only jump."""
        if not self.done["sample"] or stage not in WINDOW_STAGES:
            return None
        here = WINDOW_STAGES.index(stage)
        seconds = 0.0
        for index, name in enumerate(WINDOW_STAGES):
            left = self.units[name] * later_windows
            left += self.units[name] if index > here else self.units[name] - step if index == here else 0
            if self.done[name]:  # a stage not yet timed (vae before the first window ends) is tiny beside sampling
                seconds += left * self.spent[name] / self.done[name]
        return seconds

