"""`foley panel`: the Foley Desk window next to any editor."""

import sys
from pathlib import Path

from PySide6.QtWidgets import QApplication

from engine.client import EngineClient
from ui.panel_model import PanelModel
from ui.player import SoundDevicePlayer
from ui.qt_panel import QtFoleyPanel


def run_panel(project: str | None, engine: str | None, token: str | None, output: Path,
              sequence: str | None = None) -> int:
    app = QApplication.instance() or QApplication(sys.argv)
    model = PanelModel(output)

    def connect() -> EngineClient:
        return EngineClient(engine, token or "") if engine else EngineClient.connect(start=True)

    panel = QtFoleyPanel(model, connect, SoundDevicePlayer)
    if project:
        model.open_project(Path(project), sequence)
    panel.show()
    return app.exec()
