"""The panel's Qt-free model end to end: project, selection, seeds, jobs with ETA, variants, place, undo, export;
the engine's models with their own sampling presets, and prompts kept per range for a model that takes text.

No Qt here: the test plays the worker's part with the same stdlib client calls against a real engine.
"""

import json
from collections import defaultdict
from dataclasses import replace
from fractions import Fraction

import numpy as np
import pytest
from opentimelineio.opentime import RationalTime

from engine.config import Prompt, SamplingConfig
from export.stems import read_time_reference
from tests.engine_process import engine_with_test_model, install_mmaudio_tiny
from tests.projects import kdenlive_project
from ui import panel_model
from ui.panel_model import GenerateRequest, JobRow, ModelInfo, PanelModel, VariantRow


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    """One engine with the test-sized VTA-LDM model "tiny" and MMAudio model "mmaudio-tiny" (its default)."""
    home = tmp_path_factory.mktemp("panel-engine") / "home"
    install_mmaudio_tiny(home)
    process = engine_with_test_model(home)
    yield process
    process.stop()


@pytest.fixture
def quick(monkeypatch):
    """Draft at 3 steps: a short loop keeps the tests quick, through the same presets a user's Draft takes."""
    monkeypatch.setattr(panel_model, "DRAFT_STEPS", 3)


def run_like_the_worker(client, model, request, etas):
    job = client.submit_edit(request.edit, str(request.start), str(request.end), seeds=request.seeds,
                             source=request.source, model=request.model, steps=request.steps, guidance=request.guidance,
                             sampler=request.sampler, spacing=request.spacing, prompt=request.prompt.text,
                             negative_prompt=request.prompt.negative)
    model.job_submitted(request.key, job["id"])

    def on_event(event):
        model.job_event(request.key, event)
        etas.append(model.job(request.key).eta_seconds)

    client.wait(job["id"], on_event=on_event)
    model.job_finished(request.key, request, client.download(job["id"], model.output))


def test_panel_model_generate_audition_place_undo_export(engine, tmp_path, quick):
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

    model.update_settings(variants=2, seed=7, model="tiny", quality="Draft")
    request = model.generate()
    assert request.seeds == [7, 8] and request.steps == 3 and model.settings.seed == 9  # the seed moves on
    assert (request.sampler, request.spacing, request.guidance) == ("dpmpp_2m", "trailing", 3.0)  # tiny's fast
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


def test_variants_are_grouped_by_their_range_and_placing_one_elsewhere_says_so(engine, tmp_path, quick):
    project = kdenlive_project(tmp_path, Fraction(25))
    model = PanelModel(tmp_path / "out")
    messages = []
    model.events.message.connect(messages.append)
    model.open_project(project)
    model.set_engine({"health": engine.client.health(), "models": engine.client.models()})
    model.update_settings(variants=2, model="tiny", quality="Draft")
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


def test_quality_choices_are_in_an_editors_words_and_follow_each_models_own_presets(engine):
    assert panel_model.QUALITIES == ("Draft", "Final", "Published method")
    assert panel_model.Settings().quality == "Final"
    model = PanelModel()
    model.set_engine({"health": engine.client.health(), "models": engine.client.models()})
    assert model.model_info.name == "mmaudio-tiny" and model.model_info.takes_text  # the engine's default

    model.choose_model("tiny")
    vta = model.model_info.qualities()
    final, published = vta["Final"], vta["Published method"]
    assert (final.sampler, final.steps, final.spacing) == ("dpmpp_2m", 25, "trailing")
    assert (published.sampler, published.steps, published.spacing) == ("ddpm", 300, "leading")
    assert vta["Draft"] == SamplingConfig("dpmpp_2m", 10, 3.0, "trailing")
    assert model.model_info.quality_label("Published method") == "Published method (slow)"
    assert model.sampling == final and not model.model_info.takes_text

    model.choose_model("mmaudio-tiny")  # MMAudio refuses VTA-LDM's samplers: its own Euler flow matching instead
    for quality in panel_model.QUALITIES:
        model.update_settings(quality=quality)
        assert (model.sampling.sampler, model.sampling.guidance) == ("euler", 4.5)
        assert model.model_info.quality_label(quality) == quality  # 25 Euler steps are not slow
    assert model.sampling.steps == 25 and model.model_info.qualities()["Draft"].steps == 10

    model.update_settings(guidance=6.0)  # the user's guidance, until another model is chosen
    assert model.sampling.guidance == 6.0
    model.choose_model("tiny")
    assert model.settings.guidance is None and model.sampling.guidance == 3.0

    older = ModelInfo.from_entry({"name": "old", "default": True, "licences": []})  # an engine before MMAudio
    assert older.presets == panel_model.SAMPLING_PRESETS and not older.takes_text and older.family == "vta-ldm"


def test_prompts_are_kept_per_range_sent_for_a_text_model_and_shown_with_each_variant(engine, tmp_path, quick):
    model = PanelModel(tmp_path / "out")
    prompts = []
    model.events.prompt.connect(prompts.append)
    model.open_project(kdenlive_project(tmp_path, Fraction(25)))
    assert not model.prompt_field().enabled and "Connect the engine" in model.prompt_field().reason
    model.set_engine({"health": engine.client.health(), "models": engine.client.models()})
    model.update_settings(variants=1, seed=5, quality="Draft")
    assert model.prompt_field().reason.startswith("Select a range")

    model.select_range(20, 70, "door")
    assert model.prompt_field().enabled and model.prompt == Prompt()
    model.set_prompt(text="a wooden door creaks")
    model.set_prompt(negative="music")
    assert prompts[-1] == Prompt("a wooden door creaks", "music")
    model.select_range(110, 135, "steps")
    assert model.prompt == Prompt() and prompts[-1] == Prompt()  # a new range starts with its own, empty prompt
    model.set_prompt(text="footsteps on gravel")
    model.select_range(20, 70, "door")
    assert model.prompt == Prompt("a wooden door creaks", "music")  # kept for its range

    door = model.generate()
    assert door.model == "mmaudio-tiny" and door.prompt == Prompt("a wooden door creaks", "music")
    assert (door.sampler, door.steps, door.guidance) == ("euler", 3, 4.5)
    assert model.jobs[-1].label.startswith("door · a wooden door creaks · not: music · 1 variant(s)")
    run_like_the_worker(engine.client, model, door, [])
    model.select_range(110, 135, "steps")
    run_like_the_worker(engine.client, model, model.generate(), [])
    sidecars = [json.loads(v.wav.with_suffix(".json").read_text()) for v in model.variants]
    assert [(s["prompt"], s["negative_prompt"]) for s in sidecars] == [("a wooden door creaks", "music"),
                                                                     ("footsteps on gravel", "")]
    assert {(s["model"]["family"], s["sampler"], s["steps"], s["guidance"]) for s in sidecars} == {
        ("mmaudio", "euler", 3, 4.5)}
    assert [panel_model.describe_prompt(v.prompt) for v in model.variants] == ["a wooden door creaks · not: music",
                                                                            "footsteps on gravel"]
    assert model.variants[0].recipe == "mmaudio-tiny: euler sampler, 3 steps, guidance 4.5, seed 5"

    model.choose_model("tiny")  # a model without text: the fields say why, and no prompt goes with the job
    field = model.prompt_field()
    assert not field.enabled and field.reason.startswith("tiny (vta-ldm) takes no text prompt")
    request = model.generate()
    assert request.prompt == Prompt() and request.sampler == "dpmpp_2m" and request.model == "tiny"
    run_like_the_worker(engine.client, model, request, [])  # the engine would refuse a prompt for this model
    assert model.jobs[-1].state == "done" and model.variants[-1].prompt == Prompt()
    assert model.prompt == Prompt("footsteps on gravel")  # still kept for the range, for a model that takes it
    assert [len(g.indices) for g in model.variant_groups()] == [1, 2]

    model.update_settings(model="gone")
    assert model.generate() is None
    model.set_engine({"health": engine.client.health(), "models": engine.client.models()})
    assert model.settings.model is None  # a model the engine no longer offers: back to its default


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
