"""The top row: open a project or connect Resolve, the project's name, and the engine with Reconnect."""

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QFileDialog, QHBoxLayout, QLabel, QPushButton, QWidget

from editor_plugin.hosts import BRIDGES
from ui.panel_model import EngineStatus, PanelModel
from ui.qt_theme import METER_RED, compact

ENGINE_LABEL_WIDTH = 460  # pixels; the whole licence is in the tooltip


class QtTopBar(QWidget):
    """Where the timeline comes from and which engine makes the sound; `reconnect` asks for the engine again."""

    reconnect = Signal()

    def __init__(self, model: PanelModel):
        super().__init__()
        self.model = model
        self.open_button = QPushButton("Open project…")
        self.open_button.clicked.connect(self.open_project)
        self.resolve_button = QPushButton("Connect Resolve")
        self.resolve_button.clicked.connect(self._connect_resolve)
        self.resolve_button.setToolTip("Read the timeline open in a running DaVinci Resolve")
        self.project_label = QLabel("No project")
        self.engine_label = QLabel("Engine: connecting…")
        self.engine_label.setObjectName("hint")
        self.reconnect_button = QPushButton("Reconnect")
        self.reconnect_button.clicked.connect(self.reconnect)
        row = compact(QHBoxLayout(self))
        for widget in (self.open_button, self.resolve_button, self.project_label):
            row.addWidget(widget)
        row.addStretch()
        row.addWidget(self.engine_label)
        row.addWidget(self.reconnect_button)
        model.events.project.connect(self._update_project)
        model.events.placed.connect(self._update_project)
        model.events.engine.connect(self._update_engine)

    def open_project(self) -> None:
        """Ask for an editor's project file and open it."""
        patterns = " ".join(f"*{suffix}" for suffix in BRIDGES)  # a .fcpxmld bundle: pick the Info.fcpxml inside
        path, _ = QFileDialog.getOpenFileName(self, "Open project", "", f"Projects ({patterns})")
        if path:
            self.model.open_project(Path(path))

    def _connect_resolve(self) -> None:
        self.model.connect_resolve()

    def _update_project(self, _=None) -> None:
        self.project_label.setText(Path(self.model.project_name).name or "No project")
        self.project_label.setToolTip(self.model.project_name)

    def _update_engine(self, engine: EngineStatus) -> None:
        if engine.connected:
            self.engine_label.setToolTip(engine.summary)
        self.engine_label.setText(self.engine_label.fontMetrics().elidedText(engine.summary, Qt.ElideRight,
                                                                             ENGINE_LABEL_WIDTH))
        self.engine_label.setStyleSheet("" if engine.connected else f"color: {METER_RED}")
