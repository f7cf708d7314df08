"""The Qt panel as a user drives it (pytest-qt, offscreen): open, click a clip, generate, audition, A/B, place;
choose a model and type a prompt per range for a model that takes text."""

import json
import os
import subprocess
import sys
import threading
from fractions import Fraction
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest
from opentimelineio.opentime import RationalTime

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QPoint, Qt, QThread  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from editor_plugin import mlt  # noqa: E402
from engine.config import Prompt  # noqa: E402
from engine.serving.client import EngineClient  # noqa: E402
from tests.engine_process import engine_with_test_model, install_mmaudio_tiny  # noqa: E402
from tests.fakes.player import RecordingPlayer  # noqa: E402
from tests.projects import kdenlive_project  # noqa: E402
from ui import worker  # noqa: E402
from ui.panel_model import GenerateRequest, PanelModel  # noqa: E402
from ui.qt_export import QtExportDialog  # noqa: E402
from ui.qt_panel import QtFoleyPanel  # noqa: E402
from ui.qt_timeline import RULER_HEIGHT, TRACK_HEIGHT, QtTimeline  # noqa: E402
from ui.qt_variants import PROMPT_COLUMN  # noqa: E402


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    """One engine with the test-sized VTA-LDM model "tiny" and MMAudio model "mmaudio-tiny" (its default)."""
    home = tmp_path_factory.mktemp("qt-engine") / "home"
    install_mmaudio_tiny(home)
    process = engine_with_test_model(home)
    yield process
    process.stop()


def choose(box, data) -> None:
    """Pick the item holding `data` in a combo box as a user does (Qt emits `activated` only for the user)."""
    index = box.findData(data)
    assert index >= 0, data
    box.setCurrentIndex(index)
    box.activated.emit(index)


def test_whole_flow_with_keyboard(qtbot, engine, tmp_path, monkeypatch):
    decoded_on = []

    def decode_and_note_thread(request):  # the real decode, noting the thread it runs on
        decoded_on.append(threading.get_ident())
        return decode_preview(request)

    decode_preview = worker.decode_preview
    monkeypatch.setattr(worker, "decode_preview", decode_and_note_thread)
    project = kdenlive_project(tmp_path, Fraction(25))
    model = PanelModel(tmp_path / "out")
    player = RecordingPlayer()
    panel = QtFoleyPanel(model, lambda: EngineClient(engine.url, engine.token), lambda: player)
    qtbot.addWidget(panel)
    panel.show()
    qtbot.waitExposed(panel)
    qtbot.waitUntil(lambda: model.engine.connected, timeout=20000)
    assert panel.engine_label.text().startswith("Engine: cpu, model mmaudio-tiny (CC-BY-NC-4.0 (non-commercial)")
    assert "apple-amlr" in panel.engine_label.toolTip()  # every licence, in the tooltip
    choose(panel.model_box, "tiny")
    choose(panel.quality_box, "Draft")
    assert model.settings.model == "tiny" and model.sampling.steps == 10
    model.open_project(project)

    timeline = panel.timeline
    row = [t.name for t in timeline.rows()].index("V1")
    click = QPoint(int(timeline.x_of(150)), RULER_HEIGHT + row * TRACK_HEIGHT + TRACK_HEIGHT // 2)
    qtbot.mouseClick(timeline, Qt.LeftButton, pos=click)  # the second shot: frames 110-209
    assert model.selection.record.start_time.value == 110 and model.selection.record.duration.value == 100
    assert panel.selection_label.text().startswith("Selection 'shot': 00:00:04:10 – 00:00:08:10 (4.00 s")

    panel.variants_spin.setValue(2)
    qtbot.mouseClick(panel.generate_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: len(model.variants) == 2, timeout=120000)
    (group,) = [panel.variants.topLevelItem(i) for i in range(panel.variants.topLevelItemCount())]
    assert group.text(0).startswith("shot   00:00:04:10 – 00:00:08:10") and group.childCount() == 2
    assert panel.variants.isColumnHidden(PROMPT_COLUMN)  # no variant was made with a prompt
    scores = [variant.sync for variant in model.variants]
    assert all(score is not None for score in scores)  # from each variant's sidecar
    assert [group.child(i).text(3) for i in range(2)] == [f"{score:.2f}" for score in scores]
    panel.variants.header().sectionClicked.emit(3)  # a click on "Sync": the best-synchronised first
    assert [variant.sync for variant in model.variants] == sorted(scores, reverse=True)
    assert "done" in panel.jobs.item(0).text()
    qtbot.waitUntil(lambda: not panel.picture.pixmap().isNull(), timeout=20000)  # the preview arrives
    assert decoded_on and threading.get_ident() not in decoded_on

    panel.activateWindow()
    panel.setFocus()
    qtbot.keyClick(panel, Qt.Key_Space)
    assert player.calls[-1][0] == "play" and player.calls[-1][1] is model.variants[0].audio
    player.advance(16000)  # one second into the range
    qtbot.wait(100)
    assert timeline.playhead == pytest.approx(110 + 25)  # the picture follows the audio clock
    assert panel.timecode_label.text() == "00:00:05:10"
    qtbot.keyClick(panel, Qt.Key_Down)  # A/B without losing the position
    assert model.chosen == 1 and player.calls[-1] == ("switch", model.variants[1].audio, 16000)

    qtbot.keyClick(panel, Qt.Key_Return)
    placed = mlt.read_timeline(project)
    (foley,) = [t for t in placed.audio_tracks() if t.name == "Foley"]
    (clip,) = foley.find_clips()
    assert clip.range_in_parent().start_time.value == 110 and clip.name == model.variants[1].wav.stem
    assert "Placed" in panel.message.text()
    qtbot.keyClick(panel, Qt.Key_Z, Qt.ControlModifier)
    placed = mlt.read_timeline(project)
    assert "Foley" not in [t.name for t in placed.tracks]

    dialog = QtExportDialog(tmp_path / "stems", panel)
    qtbot.addWidget(dialog)
    dialog.show()
    manifest = model.export(Path(dialog.folder.text()), dialog.loudness.currentData(), dialog.ceiling.value())
    assert len(manifest["stems"]) == 1 and (tmp_path / "stems" / "mixdown_48k.wav").is_file()  # the chosen one
    panel.close()


def test_the_prompt_row_follows_the_chosen_model_and_keeps_a_prompt_per_range(qtbot, engine, tmp_path):
    model = PanelModel(tmp_path / "out")
    panel = QtFoleyPanel(model, lambda: EngineClient(engine.url, engine.token), RecordingPlayer)
    qtbot.addWidget(panel)
    panel.show()
    qtbot.waitUntil(lambda: model.engine.connected, timeout=20000)
    box = panel.model_box
    assert [box.itemData(i) for i in range(box.count())] == ["builtin", "mmaudio-tiny", "tiny"]
    assert box.currentData() == "mmaudio-tiny" and "takes a text prompt" in box.toolTip()  # the engine's default
    assert "euler sampler, 25 steps, guidance 4.5" in panel.quality_box.toolTip()
    assert panel.settings.guidance.value() == 4.5 and panel.quality_box.itemText(2) == "Published method"
    assert not panel.prompt_edit.isEnabled() and panel.prompt_edit.placeholderText().startswith("Select a range")

    model.open_project(kdenlive_project(tmp_path, Fraction(25)))
    model.select_range(20, 70, "door")
    assert panel.prompt_edit.isEnabled() and panel.prompt_edit.placeholderText().startswith("Describe the sound")
    qtbot.keyClicks(panel.prompt_edit, "a wooden door creaks")
    qtbot.keyClicks(panel.negative_edit, "music")
    assert model.prompt == Prompt("a wooden door creaks", "music")
    model.select_range(110, 135, "steps")
    assert panel.prompt_edit.text() == panel.negative_edit.text() == ""  # this range's own prompt: none yet
    model.select_range(20, 70, "door")
    assert (panel.prompt_edit.text(), panel.negative_edit.text()) == ("a wooden door creaks", "music")

    choose(panel.quality_box, "Draft")
    panel.variants_spin.setValue(1)
    qtbot.mouseClick(panel.generate_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: len(model.variants) == 1, timeout=120000)
    (take,) = panel.variants.variant_items()
    assert not panel.variants.isColumnHidden(PROMPT_COLUMN)
    assert take.text(PROMPT_COLUMN) == "a wooden door creaks · not: music"
    assert "mmaudio-tiny: euler sampler, 10 steps, guidance 4.5" in take.toolTip(0)
    sidecar = json.loads(model.variants[0].wav.with_suffix(".json").read_text())
    assert (sidecar["prompt"], sidecar["negative_prompt"], sidecar["sampler"]) == ("a wooden door creaks", "music",
                                                                                    "euler")
    assert "a wooden door creaks" in panel.jobs.item(0).text()

    choose(box, "tiny")  # no text: empty, disabled fields that say why; VTA-LDM's samplers and guidance
    assert not panel.prompt_edit.isEnabled() and panel.prompt_edit.text() == ""
    assert panel.prompt_edit.placeholderText().startswith("tiny (vta-ldm) takes no text prompt")
    assert panel.negative_edit.placeholderText() == "" and not panel.negative_edit.isEnabled()  # said once
    assert panel.settings.guidance.value() == 3.0 and panel.quality_box.itemText(2) == "Published method (slow)"
    assert "dpmpp_2m sampler, 10 steps" in panel.quality_box.toolTip()
    choose(box, "mmaudio-tiny")
    assert panel.prompt_edit.text() == "a wooden door creaks"  # kept all along
    panel.close()


def test_shortcuts_are_shown_where_their_actions_are(qtbot, tmp_path):
    panel = QtFoleyPanel(PanelModel(tmp_path / "out"), lambda: EngineClient("http://127.0.0.1:9", "x"), RecordingPlayer)
    qtbot.addWidget(panel)
    for button, key in ((panel.play_button, "Space"), (panel.place_button, "Return"), (panel.undo_button, "Ctrl+Z"),
                        (panel.generate_button, "Ctrl+G"), (panel.cancel_button, "Esc"), (panel.open_button, "Ctrl+O")):
        assert f"({key})" in button.toolTip(), button.toolTip()
    for key in ("Space", "Up", "Down", "L loop", "Return place", "Ctrl+Z", "Ctrl+G", "Esc"):
        assert key in panel.hints.text()
    panel.close()


@pytest.mark.parametrize("rate", [Fraction(25), Fraction(30000, 1001)])
def test_ruler_labels_never_overlap_at_any_zoom(qtbot, tmp_path, rate):
    model = PanelModel(tmp_path / "out")
    model.open_project(kdenlive_project(tmp_path, rate))
    timeline = QtTimeline(model)
    qtbot.addWidget(timeline)
    timeline.resize(900, 120)
    seen_steps = set()
    for scale in (0.01, 0.04, 0.2, 0.7, 1.0, 2.6, 9.0, 31.0, 120.0):
        timeline.pixels_per_frame = scale
        for first in (0.0, 37.5):
            timeline.first_frame = first
            labels = timeline.ruler_labels()
            assert len(labels) >= 2, (scale, first)
            for (_, left, _), (_, right, _) in pairwise(labels):
                assert not left.intersects(right) and left.right() < right.left(), (scale, first, left, right)
            assert all(rect.right() <= timeline.width() for _, rect, _ in labels)
            seen_steps.add(labels[1][0] - labels[0][0])
    assert min(seen_steps) == 1 and max(seen_steps) >= 60 * round(rate)  # single frames up to minutes


def test_engine_down_is_visible_and_nothing_is_lost(qtbot, tmp_path):
    project = kdenlive_project(tmp_path, Fraction(25))
    before = project.read_bytes()
    model = PanelModel(tmp_path / "out")
    panel = QtFoleyPanel(model, lambda: EngineClient("http://127.0.0.1:9", "x"), RecordingPlayer)
    qtbot.addWidget(panel)
    panel.show()
    qtbot.waitUntil(lambda: model.engine.error is not None, timeout=10000)
    assert panel.engine_label.text() == "Engine: not connected"
    assert "Cannot reach the engine" in panel.message.text()
    model.open_project(project)
    model.select_clip("shot")
    qtbot.mouseClick(panel.generate_button, Qt.LeftButton)
    assert "not connected" in panel.message.text() and not model.jobs
    assert project.read_bytes() == before
    panel.close()


def test_previews_decode_off_the_gui_thread_once_and_arrive_on_it(qtbot, monkeypatch, tmp_path):
    frames = np.zeros((3, 180, 320, 3), np.uint8)
    decoded_on, arrived_on = [], []

    def decode(_request):
        decoded_on.append(QThread.currentThread())
        return frames

    def arrived(key):
        arrived_on.append((key, QThread.currentThread()))

    monkeypatch.setattr(worker, "decode_preview", decode)
    decoder = worker.PreviewDecoder()
    decoder.ready.connect(arrived)
    request = GenerateRequest(7, [], Fraction(0), Fraction(1), [1], "dpmpp_2m", "karras", 3, 3.0, None, "",
                              RationalTime(0, 25), tmp_path)
    assert decoder.frames(request) is None and decoder.frames(request) is None  # asked twice while on its way
    qtbot.waitUntil(lambda: len(arrived_on) == 1, timeout=10000)
    gui = QApplication.instance().thread()
    assert len(decoded_on) == 1 and decoded_on[0] != gui  # a pool thread decoded it
    assert arrived_on == [(7, gui)]  # and the GUI thread heard of it
    assert decoder.frames(request) is frames and len(decoded_on) == 1  # kept: never decoded again
    decoder.wait()


class CancelRecordingClient:
    """Just enough engine client for the worker to connect and cancel."""

    def __init__(self):
        self.cancelled_on: list[tuple[str, QThread]] = []

    def health(self):
        return {"device": "cpu"}

    def models(self):
        return []

    def cancel(self, job_id):
        self.cancelled_on.append((job_id, QThread.currentThread()))
        return {}


def test_cancel_reaches_the_engine_off_the_gui_thread(qtbot):
    client = CancelRecordingClient()
    engine_worker = worker.EngineWorker(lambda: client)
    engine_worker.connect_engine()
    engine_worker.cancel("e1")
    qtbot.waitUntil(lambda: len(client.cancelled_on) == 1, timeout=10000)
    ((job_id, thread),) = client.cancelled_on
    assert job_id == "e1" and thread != QApplication.instance().thread()


VOID_CALLS = """
import os, sys
os.environ["QT_QPA_PLATFORM"] = "offscreen"
from PySide6.QtWidgets import QApplication, QLabel
app = QApplication([])
if sys.argv[1] == "guarded":
    from ui.qt_compat import keep_none_alive
    keep_none_alive()
label = QLabel()
for _ in range(200_000):  # a long session's worth of redraws
    label.update()
print("alive")
"""


def test_a_long_session_of_void_qt_calls_does_not_abort():
    root = str(Path(__file__).parents[1])
    run = subprocess.run([sys.executable, "-c", VOID_CALLS, "guarded"], capture_output=True, text=True, timeout=120,
                         cwd=root, check=False)
    assert run.returncode == 0 and run.stdout == "alive\n", run.stderr[-2000:]
    bare = subprocess.run([sys.executable, "-c", VOID_CALLS, "bare"], capture_output=True, text=True, timeout=120,
                          cwd=root, check=False)
    # the guard is still needed: when this fails, PySide keeps None's references and ui/qt_compat.py can go
    assert bare.returncode != 0 and "deallocating None" in bare.stderr


SOUND = """
import numpy as np, time
from ui.player import AudioUnavailable, SoundDevicePlayer
try:
    player = SoundDevicePlayer()
    player.play(np.full(8000, 0.25, np.float32), 16000)
    deadline = time.monotonic() + 10
    while player.playing() and time.monotonic() < deadline:
        time.sleep(0.05)
    print("played", player.position(), round(player.level(), 2))
except AudioUnavailable as exc:
    print("unavailable", exc)
"""


def test_real_sounddevice_path_on_a_null_device_and_without_one(tmp_path):
    null_home = tmp_path / "null"
    null_home.mkdir()
    (null_home / ".asoundrc").write_text("pcm.!default { type null }\nctl.!default { type hw card 0 }\n")
    root = str(Path(__file__).parents[1])
    run = subprocess.run([sys.executable, "-c", SOUND], capture_output=True, text=True, timeout=60, cwd=root,
                         env={**os.environ, "HOME": str(null_home)})
    assert run.stdout.startswith("played 8000"), run.stdout + run.stderr
    bare = tmp_path / "bare"
    bare.mkdir()
    run = subprocess.run([sys.executable, "-c", SOUND], capture_output=True, text=True, timeout=60, cwd=root,
                         env={**os.environ, "HOME": str(bare)})
    assert run.stdout.startswith("unavailable No audio output device"), run.stdout + run.stderr
