"""`foley panel`: the Foley Desk window next to any editor."""

import sys
from pathlib import Path

from PySide6.QtWidgets import QApplication

from engine.serving.client import EngineClient
from ui.commands.common import announce_started
from ui.panel_model import PanelModel
from ui.player import SoundDevicePlayer
from ui.qt_panel import QtFoleyPanel


def run_panel(project: str | None, engine: str | None, token: str | None, output: Path | None,
              sequence: str | None = None) -> int:
    """Run the panel until its window closes; an engine it started stops with it (see `EngineClient.release`)."""
    app = QApplication.instance() or QApplication(sys.argv)
    model = PanelModel(output)
    clients: list[EngineClient] = []

    def connect() -> EngineClient:
        client = EngineClient(engine, token or "") if engine else EngineClient.connect(start=True)
        announce_started(client, "when the panel closes")
        clients.append(client)
        return client

    panel = QtFoleyPanel(model, connect, SoundDevicePlayer)
    if project:
        model.open_project(Path(project), sequence)
    panel.show()
    try:
        return app.exec()
    finally:
        for client in clients:
            client.release()
