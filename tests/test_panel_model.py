"""The panel's Qt-free model end to end: project, selection, seeds, jobs with ETA, variants, place, undo, export.

No Qt here: the test plays the worker's part with the same stdlib client calls against a real engine.
"""

from collections import defaultdict
from dataclasses import replace
from fractions import Fraction

import numpy as np
import pytest
from opentimelineio.opentime import RationalTime

from engine.config import SamplingConfig
from export.stems import read_time_reference
from tests.engine_process import engine_with_test_model
from tests.projects import kdenlive_project
from ui import panel_model
from ui.panel_model import GenerateRequest, JobRow, PanelModel, VariantRow


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    process = engine_with_test_model(tmp_path_factory.mktemp("panel-engine") / "home")
    yield process
    process.stop()


def run_like_the_worker(client, model, request, etas):
    job = client.submit_edit(request.edit, str(request.start), str(request.end), seeds=request.seeds,
                             source=request.source, model=request.model, steps=request.steps, guidance=request.guidance,
                             sampler=request.sampler, spacing=request.spacing)
    model.job_submitted(request.key, job["id"])

    def on_event(event):
        model.job_event(request.key, event)
        etas.append(model.job(request.key).eta_seconds)

    client.wait(job["id"], on_event=on_event)
    model.job_finished(request.key, request, client.download(job["id"], model.output))


def test_panel_model_generate_audition_place_undo_export(engine, tmp_path, monkeypatch):
    monkeypatch.setitem(panel_model.QUALITY, "Final", SamplingConfig("dpmpp_2m", 3))  # a short loop keeps it quick
    project = kdenlive_project(tmp_path, Fraction(25))
    original = project.read_bytes()
    model = PanelModel(tmp_path / "out")
    seen = defaultdict(list)
    for name in ("project", "selection", "jobs", "variants", "chosen", "message", "placed", "generate_requested"):
        getattr(model.events, name).connect(seen[name].append)

    model.open_project(project)
    assert [t.name for t in model.timeline.tracks] == ["Dialogue", "V1"]
    assert model.generate() is None and "Select a clip" in seen["message"][-1]
    model.select_range(70, 20)  # dragged right to left
    assert model.selection.record.start_time.value == 20 and model.selection.record.duration.value == 50
    assert model.generate() is None and "not connected" in seen["message"][-1]
    model.set_engine({"health": engine.client.health(), "models": engine.client.models()})
    assert model.engine.connected and model.engine.device == "cpu"

    model.update_settings(variants=2, seed=7, model="tiny")
    request = model.generate()
    assert request.seeds == [7, 8] and request.steps == 3 and model.settings.seed == 9  # the seed moves on
    assert seen["generate_requested"] == [request] and model.jobs[0].state == "waiting"
    etas = []
    run_like_the_worker(engine.client, model, request, etas)
    assert model.jobs[0].state == "done" and any(eta and eta > 0 for eta in etas)
    assert [v.seed for v in model.variants] == [7, 8] and model.chosen == 0
    assert all(0 <= v.sync <= 1 for v in model.variants)  # from each variant's sidecar
    model.choose(1)
    chosen = model.variants[1]
    model.variants[0] = replace(model.variants[0], sync=-0.5)  # make the order to sort unambiguous
    model.sort_by_sync()
    assert [v.seed for v in model.variants] == [8, 7] and model.variants[model.chosen] is chosen
    assert seen["variants"][-1] is model.variants
    model.variants.reverse()
    model.choose(0)
    assert len(model.variants[0].audio) == 2 * 16000 and model.variants[0].peaks.max() > 0
    model.choose_next(1)
    assert model.chosen == 1
    model.choose_next(1)
    assert model.chosen == 0

    report = model.place()
    timeline = model.timeline
    (foley,) = [t for t in timeline.audio_tracks() if t.name == "Foley"]
    assert [c.range_in_parent().start_time.value for c in foley.find_clips()] == [20]
    assert report.backup.read_bytes() == original
    model.undo_place()
    assert project.read_bytes() == original and seen["placed"][-1] is None

    manifest = model.export(tmp_path / "stems", "online")  # nothing placed: the chosen variant alone
    assert [stem["source_wav"] for stem in manifest["stems"]] == [str(model.variants[0].wav)]
    assert read_time_reference(tmp_path / "stems" / manifest["stems"][0]["file"]) == round(Fraction(20, 25) * 48000)
    assert model.export(tmp_path / "stems") == {} and "already exists" in seen["message"][-1]
    model.choose(1)
    model.place()
    model.choose(0)  # chosen but not placed: the export is what is on the timeline
    placed = model.export(tmp_path / "placed")
    assert [stem["source_wav"] for stem in placed["stems"]] == [str(model.variants[1].wav)]

    model.update_settings(lock_seed=True, seed=3)
    locked = model.generate()
    assert locked.seeds == [3, 4] and model.settings.seed == 3


def test_variants_are_grouped_by_their_range_and_placing_one_elsewhere_says_so(engine, tmp_path, monkeypatch):
    monkeypatch.setitem(panel_model.QUALITY, "Final", SamplingConfig("dpmpp_2m", 3))
    project = kdenlive_project(tmp_path, Fraction(25))
    model = PanelModel(tmp_path / "out")
    messages = []
    model.events.message.connect(messages.append)
    model.open_project(project)
    model.set_engine({"health": engine.client.health(), "models": engine.client.models()})
    model.update_settings(variants=2, model="tiny")
    for first, after, label in ((20, 70, "door"), (110, 135, "steps"), (20, 70, "door")):
        model.select_range(first, after, label)
        run_like_the_worker(engine.client, model, model.generate(), [])
        model.update_settings(variants=1)
    groups = model.variant_groups()
    assert [(g.label, g.indices) for g in groups] == [("door", [0, 1, 3]), ("steps", [2])]
    assert (groups[1].start, groups[1].end) == (Fraction(110, 25), Fraction(135, 25))

    model.choose(2)  # made for "steps" 110-135 while "door" 20-70 is selected
    assert model.other_range_warning(2) == ("It was made for 'steps' 00:00:04:10 – 00:00:05:10, not the selection "
                                            "00:00:00:20 – 00:00:02:20: it went to its own range.")
    model.place()
    (foley,) = [t for t in model.timeline.audio_tracks() if t.name == "Foley"]
    assert [c.range_in_parent().start_time.value for c in foley.find_clips()] == [110]
    assert messages[-1].startswith("Placed ") and model.other_range_warning(2) in messages[-1]
    model.choose(0)
    assert model.other_range_warning(0) is None


def test_variants_go_beside_the_project_unless_a_folder_was_chosen(tmp_path):
    model = PanelModel()
    assert model.output == panel_model.DEFAULT_OUTPUT  # nothing open yet
    (tmp_path / "film").mkdir()
    project = kdenlive_project(tmp_path / "film", Fraction(25))
    model.open_project(project)
    assert model.output == project.parent.resolve() / "Foley Desk"
    assert PanelModel(tmp_path / "chosen").output == tmp_path / "chosen"


def test_quality_choices_are_in_an_editors_words_with_the_fast_method_by_default():
    assert list(panel_model.QUALITY) == ["Draft", "Final", "Published method (slow)"]
    assert panel_model.Settings().quality == "Final"
    final, published = panel_model.QUALITY["Final"], panel_model.QUALITY["Published method (slow)"]
    assert (final.sampler, final.steps) == ("dpmpp_2m", 25) and (published.sampler, published.steps) == ("ddpm", 300)
    assert panel_model.QUALITY["Draft"].steps < final.steps


def test_cancel_asks_for_the_newest_job_the_engine_still_has():
    model = PanelModel()
    asked = []
    model.events.cancel_requested.connect(asked.append)
    assert model.cancel() is None and asked == []
    model.jobs = [JobRow(1, "door", "running", engine_id="e1"), JobRow(2, "steps", "done", engine_id="e2"),
                  JobRow(3, "rain")]  # waiting: the engine has not got it yet, so there is nothing to cancel there
    assert model.cancel() == "e1" and asked == ["e1"]
    model.jobs.append(JobRow(4, "wind", "queued", engine_id="e4"))
    assert model.cancel() == "e4" and asked == ["e1", "e4"]
    assert model.jobs[0].summary.startswith("door — running ") and model.jobs[2].summary == "rain — waiting"
    model.job_failed(1, "boom")
    assert model.jobs[0].summary == "door — failed: boom"


def test_audition_plays_the_chosen_variant_and_moves_the_playhead_on_its_range(tmp_path):
    model = PanelModel(tmp_path / "out")
    messages, playheads = [], []
    model.events.message.connect(messages.append)
    model.events.playhead.connect(playheads.append)
    model.open_project(kdenlive_project(tmp_path, Fraction(25)))
    assert model.variant_to_audition() is None and messages == ["Generate and pick a variant to audition."]
    model.follow_audition(8000)
    assert playheads == []  # nothing chosen: the playhead stays
    model.select_range(110, 210)
    assert model.playhead == 110 and playheads == [110]  # a new selection parks the playhead at its start
    request = GenerateRequest(1, [], Fraction(110, 25), Fraction(210, 25), [5], "dpmpp_2m", "karras", 3, 3.0, None,
                              "", RationalTime(110, 25), tmp_path)
    audio = np.zeros(4 * 16000, np.float32)
    model.variants.append(VariantRow(tmp_path / "take.wav", 5, 16000, audio, panel_model.thumbnail(audio), request))
    model.choose(0)
    assert model.variant_to_audition() is model.variants[0] and model.chosen_variant is model.variants[0]
    model.follow_audition(8000)  # half a second into the take: 12.5 frames into its range
    assert model.playhead == pytest.approx(122.5) and playheads[-1] == model.playhead
    folder = model.new_export_folder()
    assert folder.parent == tmp_path / "out" and folder.name.startswith("stems-")


def test_the_engine_is_described_and_its_failure_is_said_in_the_message_line():
    model = PanelModel()
    messages = []
    model.events.message.connect(messages.append)
    model.set_engine({"error": "Cannot reach the engine"})
    assert model.engine.summary == "Engine: not connected" and messages == ["Cannot reach the engine"]
    model.set_engine({"health": {"device": "cpu"},
                      "models": [{"name": "tiny", "default": True, "licences": [{"licence": "MIT"}]}]})
    assert model.engine.summary == "Engine: cpu, model tiny (MIT)" and messages == ["Cannot reach the engine"]
