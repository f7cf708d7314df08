"""The README's panel screenshots, from a real window: `xvfb-run -a -s "-screen 0 1440x900x24"
.venv/bin/python -m tests.make_screenshots docs` (the built-in starter model generates three variants for the
second shot of the Kdenlive fixture; the audition shot is 1.6 s into take 2, after take 1 was placed). The prompt
shot (`... docs prompts` takes it alone) is the test-sized MMAudio model, which takes text, chosen: takes of one
range made with two prompts, and another range's own prompt in the fields."""

import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

from PySide6.QtWidgets import QApplication

from engine.serving.client import EngineClient
from tests.engine_process import EngineProcess, install_mmaudio_tiny
from tests.fakes.player import RecordingPlayer
from tests.projects import kdenlive_project
from ui.panel_model import PanelModel
from ui.qt_export import QtExportDialog
from ui.qt_panel import QtFoleyPanel

TIMEOUT_S = 600


def wait_until(app: QApplication, condition, timeout: float = TIMEOUT_S) -> None:
    """Run the event loop until `condition()` holds; fail loudly after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out after {timeout:g} s waiting for the panel")
        app.processEvents()
        time.sleep(0.02)


def save(widget, folder: Path, name: str) -> None:
    QApplication.processEvents()
    if not widget.grab().save(str(folder / f"{name}.png")):
        raise SystemExit(f"could not write {folder / name}.png")
    print(folder / f"{name}.png")


def close(app: QApplication, panel: QtFoleyPanel) -> None:
    """Close and delete the window while the application still runs (deleting it at exit can crash PySide)."""
    panel.close()
    panel.deleteLater()
    app.processEvents()


def main(folder: Path, only: str | None = None) -> None:
    app = QApplication(sys.argv)
    work = Path(tempfile.mkdtemp(prefix="foley-shots-"))
    project = kdenlive_project(work, Fraction(25))
    if only != "prompts":
        home = work / "home"
        home.mkdir()
        engine = EngineProcess(home)
        try:
            shoot_flow(app, project, engine, work, folder)
        finally:
            engine.stop()
        shoot_engine_down(app, project, work, folder)
    text_home = work / "text-home"
    install_mmaudio_tiny(text_home)
    engine = EngineProcess(text_home)
    try:
        shoot_prompts(app, project, engine, work, folder)
    finally:
        engine.stop()


def shoot_flow(app: QApplication, project: Path, engine: EngineProcess, work: Path, folder: Path) -> None:
    model = PanelModel(work / "out")
    player = RecordingPlayer()
    panel = QtFoleyPanel(model, lambda: EngineClient(engine.url, engine.token), lambda: player)
    panel.show()
    wait_until(app, lambda: model.engine.connected)
    model.open_project(project)
    model.select_clip("shot")  # the first clip: frames 0-99
    model.select_range(110, 210, "shot 2")
    model.update_settings(variants=3, seed=11)
    model.generate()
    wait_until(app, lambda: len(model.variants) == 3)
    wait_until(app, lambda: not panel.picture.pixmap().isNull())
    save(panel, folder, "panel-variants")

    model.choose(0)
    model.place()
    model.choose(1)
    panel.toggle_play()
    player.advance(int(1.6 * model.variants[1].rate))
    deadline = time.monotonic() + 0.6
    while time.monotonic() < deadline:  # let the meter and the picture follow the clock
        app.processEvents()
        time.sleep(0.02)
    save(panel, folder, "panel-audition")
    player.stop()
    model.undo_place()

    dialog = QtExportDialog(work / "stems", panel)
    dialog.show()
    save(dialog, folder, "panel-export")
    dialog.close()
    close(app, panel)


def shoot_prompts(app: QApplication, project: Path, engine: EngineProcess, work: Path, folder: Path) -> None:
    model = PanelModel(work / "out-prompts")
    panel = QtFoleyPanel(model, lambda: EngineClient(engine.url, engine.token), RecordingPlayer)
    panel.show()
    wait_until(app, lambda: model.engine.connected)
    model.open_project(project)
    model.choose_model("mmaudio-tiny")
    model.update_settings(variants=2, seed=21, quality="Draft")
    model.select_range(110, 210, "shot 2")
    model.set_prompt("footsteps on gravel", "music")
    model.generate()
    model.set_prompt("footsteps on a wooden floor", "")
    model.update_settings(variants=1)
    model.generate()
    wait_until(app, lambda: len(model.variants) == 3)
    model.select_range(0, 100, "shot")
    model.set_prompt("a car door slams", "speech")
    save(panel, folder, "panel-prompts")
    close(app, panel)


def shoot_engine_down(app: QApplication, project: Path, work: Path, folder: Path) -> None:
    model = PanelModel(work / "out-down")
    panel = QtFoleyPanel(model, lambda: EngineClient("http://127.0.0.1:9", "x"), RecordingPlayer)
    panel.show()
    wait_until(app, lambda: model.engine.error is not None, 30)
    model.open_project(project)
    model.select_clip("shot")
    model.generate()
    save(panel, folder, "panel-engine-down")
    close(app, panel)


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs").resolve(), sys.argv[2] if len(sys.argv) > 2 else None)
