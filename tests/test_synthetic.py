"""The synthetic foley set: deterministic clips with exact labels, and the alignment metrics measured on it."""

import json

import numpy as np
import pytest
import soundfile

from engine.metrics import audio_onsets, av_align, false_onsets, frechet_distance, onset_accuracy, optional_metric
from engine.training.synthetic import (
    FRAME_RATES,
    HELD_OUT_KINDS,
    HELD_OUT_SEEDS,
    SCENE_KINDS,
    SCENE_METRES,
    make_clip,
    plan,
    seeds_for,
)
from engine.video import probe_video
from ui.cli import main


def test_clips_are_deterministic_by_seed_and_splits_never_meet():
    a, b, c = make_clip(5), make_clip(5), make_clip(6)
    assert np.array_equal(a.frames, b.frames) and np.array_equal(a.audio, b.audio) and a.events == b.events
    assert not np.array_equal(a.audio, c.audio)
    assert set(seeds_for("train", 50)).isdisjoint(seeds_for("held-out", 50))
    assert min(seeds_for("held-out", 3)) == HELD_OUT_SEEDS


@pytest.mark.parametrize("kind", list(SCENE_KINDS))
def test_every_kind_is_deterministic_and_its_labels_are_exact(kind):
    """Each labelled impact is a contact in the scene's own motion (on the floor, at a wall, against another body or
    on top of one), and the clip's true sound has an onset within one video frame of it."""
    a, b = make_clip(3, kind=kind), make_clip(3, kind=kind)
    assert np.array_equal(a.frames, b.frames) and np.array_equal(a.audio, b.audio) and a.events == b.events
    impacts = [e.time for e in a.events if e.kind == "impact"]
    assert impacts and onset_accuracy(audio_onsets(a.audio), impacts, 25) >= 0.8
    for seed in range(6):
        scene = SCENE_KINDS[kind](np.random.default_rng(seed), 4.0, SCENE_METRES * 4 / 3)
        for body in (b for b in scene.bodies if b.events):
            for event in (e for e in body.events if e.kind == "impact"):
                x, y = body.path(event.time)
                on_floor = y < 1e-6
                at_wall = any(abs(abs(x - wall) - body.radius) < 1e-6 for wall in scene.walls)
                touching = any(abs(abs(x - other.path(event.time)[0]) - body.radius - other.radius) < 1e-6
                               and other.path(event.time)[1] < 1e-6 for other in scene.bodies if other is not body)
                on_top = any(abs(y - 2 * other.radius) < 1e-6 and abs(x - other.path(event.time)[0]) < other.radius
                             for other in scene.bodies if other is not body)
                assert on_floor or at_wall or touching or on_top, (kind, seed, event)
                assert kind in ("throw", "collide", "stack") or (on_floor and (at_wall or not scene.walls)), (kind, seed, event)
    if kind != "drop":  # randomised kinds are rendered at 23.976-30 fps
        assert a.fps in FRAME_RATES and len(a.frames) == int(np.ceil(4.0 * a.fps))


def test_held_out_kinds_never_reach_the_training_split():
    train, held_out = plan("train", 300), plan("held-out", 40)
    assert {kind for _, kind in train} == set(SCENE_KINDS) - set(HELD_OUT_KINDS)
    assert {kind for _, kind in held_out} == set(SCENE_KINDS)
    assert {seed for seed, _ in train}.isdisjoint(seed for seed, _ in held_out)
    assert {kind for _, kind in plan("held-out", 10, ["throw", "collide"])} == {"throw", "collide"}
    with pytest.raises(ValueError, match="held-out scene kinds"):
        plan("train", 10, ["floor", "collide"])
    with pytest.raises(ValueError, match="unknown scene kind"):
        plan("held-out", 10, ["ceiling"])


def test_foley_synth_draws_kinds_and_real_backgrounds(tmp_path, capsys):
    from engine.training.sample_video import make_demo_video

    footage = tmp_path / "footage"
    footage.mkdir()
    make_demo_video(footage / "some-footage.mp4", seconds=1.0)
    assert main(["synth", str(tmp_path / "set"), "--count", "6", "--split", "held-out", "--kinds", "wall,shake",
                 "--backgrounds", str(footage)]) == 0
    assert "scene kinds: shake, wall" in capsys.readouterr().out
    labels = [json.loads(p.read_text()) for p in sorted((tmp_path / "set").glob("*.json"))]
    assert [x["kind"] for x in labels] == ["wall", "shake"] * 3 and all(x["fps"] == 25 for x in labels)
    assert any(x["background"].startswith("some-footage.mp4#") for x in labels)
    for path in (tmp_path / "set").glob("*.mp4"):
        assert probe_video(path).duration >= 4  # a whole model window, whatever the frame rate


def test_labels_match_the_sound_and_the_metrics_catch_a_shift():
    clips = [make_clip(seed) for seed in seeds_for("held-out", 10)]
    true, late, align_true, align_late = [], [], [], []
    for clip in clips:
        impacts = [event.time for event in clip.events if event.kind == "impact"]
        delayed = np.roll(clip.audio, 3200)  # the same sound 0.2 s late
        true.append(onset_accuracy(audio_onsets(clip.audio), impacts, clip.fps))
        late.append(onset_accuracy(audio_onsets(delayed), impacts, clip.fps))
        align_true.append(av_align(clip.frames, clip.fps, clip.audio))
        align_late.append(av_align(clip.frames, clip.fps, delayed))
    # the labelled impact times are where the sound's onsets are, within one video frame
    assert np.mean(true) >= 0.9 and np.mean(late) < 0.5
    assert np.mean(align_true) > 1.5 * np.mean(align_late)  # AV-Align's many motion peaks dilute it


def test_foley_synth_writes_video_sound_and_labels(tmp_path, capsys):
    assert main(["synth", str(tmp_path / "set"), "--count", "3", "--split", "held-out", "--seconds", "2"]) == 0
    videos = sorted((tmp_path / "set").glob("*.mp4"))
    assert len(videos) == 3 and "3 held-out clips" in capsys.readouterr().out
    labels = json.loads(videos[0].with_suffix(".json").read_text())
    assert labels["format"] == "FoleyLabels.1" and labels["seed"] == HELD_OUT_SEEDS
    assert probe_video(videos[0]).frame_count == 50 and soundfile.info(videos[0].with_suffix(".wav")).frames == 32000


def test_an_onset_one_frame_early_on_the_10_ms_grid_counts_as_within_one_frame():
    assert onset_accuracy(np.array([1.16, 2.44]), [1.2, 2.4], 25) == 1.0  # 0.04000000000000004 s is one frame
    assert onset_accuracy(np.array([1.15, 2.46]), [1.2, 2.4], 25) == 0.0


def test_false_onsets_count_only_onsets_far_from_every_impact():
    assert false_onsets(np.array([1.0, 1.05, 2.0, 3.5]), [1.0, 2.02], seconds=8.0) == 0.5  # 3.5 s, per 4 s


def test_frechet_distance_is_zero_for_one_distribution_and_grows_with_a_shift():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(200, 4)), rng.normal(size=(200, 4))
    assert frechet_distance(a, b) < 0.3 and frechet_distance(a, b + 2.0) > 15.0
    with pytest.raises(ImportError, match="pip install frechet_audio_distance"):
        optional_metric("fad")


def test_foley_eval_scores_the_reference_and_a_model(tmp_path, capsys):
    assert main(["synth", str(tmp_path / "set"), "--count", "3", "--split", "held-out", "--seconds", "2"]) == 0
    capsys.readouterr()
    assert main(["eval", str(tmp_path / "set"), "--reference", "--json", str(tmp_path / "ref.json")]) == 0
    reference = json.loads((tmp_path / "ref.json").read_text())
    assert reference["clips"] == 3 and reference["onset_accuracy"] >= 0.9 and reference["frechet_mel"] < 1e-6
    assert set(reference["per_kind"]) == {"drop", "floor", "multi"} and 0 <= reference["false_onsets_per_4s"] < 2
    assert main(["eval", str(tmp_path / "set"), "--model", "builtin", "--steps", "1", "--json", str(tmp_path / "m.json")]) == 0
    starter = json.loads((tmp_path / "m.json").read_text())
    assert "model builtin on 3 clips" in capsys.readouterr().out
    assert starter["frechet_mel"] > reference["frechet_mel"] and 0 <= starter["av_align"] <= 1
