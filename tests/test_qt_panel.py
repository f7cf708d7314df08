"""The Qt panel as a user drives it (pytest-qt, offscreen): open, click a clip, generate, audition, A/B, place."""

import os
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QPoint, Qt  # noqa: E402

from editor_plugin import mlt  # noqa: E402
from engine.client import EngineClient  # noqa: E402
from tests.engine_process import engine_with_test_model  # noqa: E402
from tests.fakes.player import RecordingPlayer  # noqa: E402
from tests.projects import kdenlive_project  # noqa: E402
from engine.config import SamplingConfig  # noqa: E402
from ui import panel_model  # noqa: E402
from ui.panel_model import PanelModel  # noqa: E402
from ui.qt_panel import RULER_HEIGHT, TRACK_HEIGHT, QtExportDialog, QtFoleyPanel  # noqa: E402

# FOLEY_SCREENSHOTS=docs refreshes the README's screenshots; by default they go to a temporary folder
SHOTS = os.environ.get("FOLEY_SCREENSHOTS")


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    process = engine_with_test_model(tmp_path_factory.mktemp("qt-engine") / "home")
    yield process
    process.stop()


def screenshot(widget, name: str, folder: Path) -> None:
    target = Path(__file__).parents[1] / SHOTS if SHOTS else folder
    target.mkdir(exist_ok=True)
    assert widget.grab().save(str(target / f"{name}.png"))


def test_whole_flow_with_keyboard(qtbot, engine, tmp_path, monkeypatch):
    monkeypatch.setitem(panel_model.QUALITY, "Final", SamplingConfig("dpmpp_2m", 3))
    project = kdenlive_project(tmp_path, Fraction(25))
    model = PanelModel(tmp_path / "out")
    player = RecordingPlayer()
    panel = QtFoleyPanel(model, lambda: EngineClient(engine.url, engine.token), lambda: player)
    qtbot.addWidget(panel)
    panel.show()
    qtbot.waitExposed(panel)
    qtbot.waitUntil(lambda: model.engine.connected, timeout=20000)
    assert panel.engine_label.text() == "Engine: cpu, model tiny (none (test-sized checkpoint))"  # licence shown
    model.update_settings(model="tiny")
    model.open_project(project)

    timeline = panel.timeline
    row = [t.name for t in timeline.rows()].index("V1")
    click = QPoint(int(150 * timeline.pixels_per_frame), RULER_HEIGHT + row * TRACK_HEIGHT + TRACK_HEIGHT // 2)
    qtbot.mouseClick(timeline, Qt.LeftButton, pos=click)  # the second shot: frames 110-209
    assert model.selection.record.start_time.value == 110 and model.selection.record.duration.value == 100
    assert panel.selection_label.text().startswith("Selection 'shot': 00:00:04:10 – 00:00:08:10 (4.00 s")

    panel.variants_spin.setValue(2)
    qtbot.mouseClick(panel.generate_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: len(model.variants) == 2, timeout=120000)
    assert panel.variants.rowCount() == 2 and "done" in panel.jobs.item(0).text()
    screenshot(panel, "panel-variants", tmp_path)

    panel.activateWindow()
    panel.setFocus()
    qtbot.keyClick(panel, Qt.Key_Space)
    assert player.calls[-1][0] == "play" and player.calls[-1][1] is model.variants[0].audio
    player.advance(16000)  # one second into the range
    qtbot.wait(100)
    assert timeline.playhead == pytest.approx(110 + 25)  # the picture follows the audio clock
    qtbot.keyClick(panel, Qt.Key_Down)  # A/B without losing the position
    assert model.chosen == 1 and player.calls[-1] == ("switch", model.variants[1].audio, 16000)
    screenshot(panel, "panel-audition", tmp_path)

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
    screenshot(dialog, "panel-export", tmp_path)
    manifest = model.export(Path(dialog.folder.text()), dialog.loudness.currentData(), dialog.ceiling.value())
    assert len(manifest["stems"]) == 2 and (tmp_path / "stems" / "mixdown_48k.wav").is_file()
    panel.close()


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
    screenshot(panel, "panel-engine-down", tmp_path)
    assert project.read_bytes() == before
    panel.close()


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
