"""Honest progress: every stage of every window reaches done, window k/n and the variants are shown everywhere,
and the ETA estimates the whole job, so it does not grow by whole windows as windows start."""

from dataclasses import asdict, replace
from fractions import Fraction

from engine.config import SAMPLING_PRESETS
from engine.core.generate import generate
from engine.progress import WINDOW_STAGES, JobClock
from engine.serving.client import progress_text
from engine.training.sample_video import make_demo_video
from engine.video import EditFrames, EditSpan
from ui.cli import main
from ui.panel_model import JobRow, PanelModel

SECONDS = {"decode": 1.0, "encode": 0.5, "sample": 2.0, "vae": 0.5, "vocode": 1.0}  # per unit (sample: per step)


def simulated_job(windows: int, steps: int):
    """Tick a JobClock through a job whose stages take SECONDS each; yield (eta, true seconds left)."""
    now = [0.0]
    clock = JobClock(steps, clock=lambda: now[0])
    plan = [(w, stage, step) for w in range(windows) for stage in WINDOW_STAGES
            for step in range(steps + 1 if stage == "sample" else 2)]
    end = sum(SECONDS[stage] for _, stage, step in plan if step > 0)
    for window, stage, step in plan:
        if step > 0:
            now[0] += SECONDS[stage]
        yield clock.tick(stage, step, window, windows), end - now[0]


def test_the_eta_estimates_the_whole_job_from_the_measured_pace():
    seen = list(simulated_job(windows=3, steps=10))
    known = [(eta, left) for eta, left in seen if eta is not None]
    assert len(known) > len(seen) * 0.9  # measuring only until the first sampling step
    first_eta, first_left = known[0]
    assert first_eta > 0.8 * first_left  # all three windows counted from the first step
    # once every stage has run once, the estimate is the exact time left
    after_first_window = seen[len(seen) // 3 :]
    assert all(abs(eta - left) < 1e-9 for eta, left in after_first_window)
    # no step makes the estimate grow by anything like a window (the old panel ETA grew 35 s -> 80 s -> 152 s)
    window_seconds = sum(SECONDS.values()) + SECONDS["sample"] * 9
    assert max(b - a for (a, _), (b, _) in zip(known, known[1:])) < 0.1 * window_seconds
    assert seen[-1] == (0.0, 0.0)


def test_every_stage_of_every_window_reaches_done_and_reports_its_window(tmp_path, tiny):
    video = make_demo_video(tmp_path / "ball.mp4", seconds=16.0)
    frames = EditFrames((EditSpan(video, Fraction(0), Fraction(16), Fraction(0)),), Fraction(0), Fraction(16))
    seen = []
    generate(frames, components=tiny, sampling=replace(SAMPLING_PRESETS["fast"], steps=3), seeds=(1, 2),
             callback=seen.append)
    assert {info.windows for info in seen} == {2}
    for window in (0, 1):
        mine = [(info.stage, info.step, info.total) for info in seen if info.window == window]
        assert [stage for stage, step, total in mine if step == total] == list(WINDOW_STAGES)  # each reaches done
        assert [stage for stage, step, _ in mine if step == 0] == list(WINDOW_STAGES)
    assert all(info.variants == 2 for info in seen)
    etas = [info.eta for info in seen if info.eta is not None]
    assert etas and seen[-1].eta == 0.0
    assert progress_text(asdict(seen[-1])) == "window 2/2 · variants 1-2/2 · vocode 1/1 · ETA 0:00"


def test_the_cli_shows_windows_variants_and_eta(tmp_path, capsys):
    video = make_demo_video(tmp_path / "ball.mp4", seconds=6.0)  # two windows of the built-in model (4 s)
    assert main(["generate", str(video), "--end", "6", "--steps", "2", "--preset", "fast", "--variants", "2",
                 "--seed", "4", "-o", str(tmp_path / "out")]) == 0
    err = capsys.readouterr().err
    for text in ("window 1/2 · variants 1-2/2 · sample  [", "window 2/2 · variants 1-2/2 · vocode  [", "ETA 0:"):
        assert text in err, err
    assert "window 2/2 · variants 1-2/2 · vocode  [" + "#" * 30 + "] 1/1 · ETA 0:00" in err


def test_the_panel_job_row_takes_the_engines_eta_and_window(tmp_path):
    model = PanelModel(tmp_path)
    model.jobs.append(JobRow(1, "clip", variants=2))
    event = {"event": "progress", "stage": "sample", "step": 3, "total": 25, "variant": 0, "variants": 2,
             "window": 1, "windows": 3, "eta": 95.0}
    model.job_event(1, event)
    job = model.job(1)
    assert (job.window, job.windows, job.eta_seconds) == (1, 3, 95.0)
    assert job.progress == "window 2/3 · variants 1-2/2 · sample 3/25 · ETA 1:35"
    model.job_event(1, {**event, "stage": "load", "step": 0, "total": 1, "window": 0, "windows": 1, "eta": None})
    assert job.progress == "window 1/1 · variants 1-2/2 · load 0/1 · ETA measuring"
