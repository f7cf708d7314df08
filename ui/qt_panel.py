"""The Foley Desk window: thin Qt views over `PanelModel` (timeline, generation, jobs, variants, audition,
place, export), dark like the editors it sits next to."""

import time
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt, QThread, QTimer, Signal
from PySide6.QtGui import QImage, QKeySequence, QPixmap, QShortcut
from PySide6.QtWidgets import (
    QApplication,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from editor_plugin.hosts import BRIDGES
from export.stems import LOUDNESS_PRESETS
from ui.panel_model import QUALITY, PanelModel, timecode
from ui.player import AudioUnavailable, Player
from ui.qt_audio import QtLevelMeter
from ui.qt_compat import keep_none_alive
from ui.qt_theme import METER_RED, apply_dark_theme, monospace
from ui.qt_timeline import RULER_HEIGHT, TRACK_HEIGHT, QtTimeline
from ui.qt_variants import QtVariants
from ui.worker import PREVIEW_FPS, PREVIEW_SIZE, EngineWorker, PreviewDecoder

__all__ = ["RULER_HEIGHT", "TRACK_HEIGHT", "QtExportDialog", "QtFoleyPanel"]

TICK_MS = 30
ENGINE_LABEL_WIDTH = 460  # pixels; the whole licence is in the tooltip


def to_pixmap(rgb: np.ndarray) -> QPixmap:
    height, width, _ = rgb.shape
    return QPixmap.fromImage(QImage(np.ascontiguousarray(rgb).data, width, height, 3 * width, QImage.Format_RGB888).copy())


def with_key(text: str, keys: QKeySequence) -> str:
    """A tooltip that names its shortcut the way the platform writes it."""
    return f"{text} ({keys.toString(QKeySequence.NativeText)})"


class QtExportDialog(QDialog):
    """Loudness target, true-peak ceiling and folder for the stems."""

    def __init__(self, folder: Path, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Export stems")
        self.loudness = QComboBox()
        for key, value in LOUDNESS_PRESETS.items():
            self.loudness.addItem(f"{key} ({value:g} LUFS)" if value is not None else "none (keep level)", key)
        self.ceiling = QDoubleSpinBox()
        self.ceiling.setRange(-12.0, 0.0)
        self.ceiling.setValue(-1.0)
        self.ceiling.setSuffix(" dBTP")
        self.folder = QLineEdit(str(folder))
        form = QFormLayout(self)
        form.addRow("Loudness", self.loudness)
        form.addRow("True-peak ceiling", self.ceiling)
        form.addRow("Folder", self.folder)
        form.addRow(QLabel("48 kHz 24-bit Broadcast WAV, time-stamped at the timeline position"))
        buttons = QDialogButtonBox(QDialogButtonBox.Ok | QDialogButtonBox.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)


class QtFoleyPanel(QWidget):
    """The Foley Desk panel. `player_factory` makes the audition player (it may raise `AudioUnavailable`)."""

    request_job = Signal(object)
    request_connect = Signal()

    def __init__(self, model: PanelModel, connect: Callable, player_factory: Callable[[], Player]):
        super().__init__()
        keep_none_alive()
        apply_dark_theme(QApplication.instance())
        self.model = model
        self.setWindowTitle("Foley Desk")
        self._player_factory = player_factory
        self._player: Player | None = None
        self._previews: dict[int, np.ndarray] = {}
        self._loop = False
        self._build()
        self._thread = QThread(self)
        self.worker = EngineWorker(connect)
        self.worker.moveToThread(self._thread)
        self.request_job.connect(self.worker.run)
        self.request_connect.connect(self.worker.connect_engine)
        # bound methods of this widget: Qt queues the worker's signals onto the GUI thread
        self.worker.status.connect(self._on_status)
        self.worker.submitted.connect(self._on_submitted)
        self.worker.event.connect(self._on_event)
        self.worker.finished.connect(self._on_finished)
        self.worker.failed.connect(self._on_failed)
        self._thread.start()
        self.previews = PreviewDecoder(self)
        self.previews.ready.connect(self._on_preview)
        self.previews.failed.connect(lambda _key, message: self._show_message(message))
        for name, slot in (("project", self._update_project), ("selection", self._update_selection),
                           ("settings", self._update_settings), ("jobs", self._update_jobs),
                           ("chosen", self._update_chosen), ("engine", self._update_engine),
                           ("message", self._show_message), ("placed", self._update_project),
                           ("generate_requested", self.request_job.emit)):
            getattr(model.events, name).connect(slot)
        self._clock = QTimer(self)
        self._clock.timeout.connect(self._tick)
        self._clock.start(TICK_MS)
        self._shortcuts()
        self._update_settings(model.settings)
        self.request_connect.emit()

    # -- construction -----------------------------------------------------------------------------------------

    def _build(self) -> None:
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 8, 6)
        layout.setSpacing(6)
        layout.addLayout(self._build_top())
        self.timeline = QtTimeline(self.model)
        layout.addWidget(self.timeline)
        layout.addLayout(self._build_transport())
        layout.addLayout(self._build_settings())
        lower = QHBoxLayout()
        lower.addLayout(self._build_lists(), 1)
        lower.addLayout(self._build_audition())
        layout.addLayout(lower, 1)
        self.message = QLabel("")
        self.message.setWordWrap(True)
        layout.addWidget(self.message)
        self.hints = QLabel("")
        self.hints.setObjectName("hint")
        layout.addWidget(self.hints)
        self.resize(1180, 760)

    def _build_top(self) -> QHBoxLayout:
        self.open_button = QPushButton("Open project…")
        self.open_button.clicked.connect(self._open)
        self.resolve_button = QPushButton("Connect Resolve")
        self.resolve_button.clicked.connect(lambda: self.model.connect_resolve())
        self.resolve_button.setToolTip("Read the timeline open in a running DaVinci Resolve")
        self.project_label = QLabel("No project")
        self.engine_label = QLabel("Engine: connecting…")
        self.engine_label.setObjectName("hint")
        self.reconnect_button = QPushButton("Reconnect")
        self.reconnect_button.clicked.connect(lambda: self.request_connect.emit())
        top = QHBoxLayout()
        for widget in (self.open_button, self.resolve_button, self.project_label):
            top.addWidget(widget)
        top.addStretch()
        top.addWidget(self.engine_label)
        top.addWidget(self.reconnect_button)
        return top

    def _build_transport(self) -> QHBoxLayout:
        self.timecode_label = QLabel(timecode(0, 25))
        self.timecode_label.setObjectName("timecode")
        self.timecode_label.setFont(monospace(15))
        self.timecode_label.setToolTip("Playhead (HH:MM:SS:FF at the timeline's rate)")
        self.selection_label = QLabel("Click a video clip or drag a range")
        transport = QHBoxLayout()
        transport.addWidget(self.timecode_label)
        transport.addSpacing(8)
        transport.addWidget(self.selection_label, 1)
        return transport

    def _build_settings(self) -> QHBoxLayout:
        self.variants_spin = QSpinBox()
        self.variants_spin.setRange(1, 16)
        self.seed_spin = QSpinBox()
        self.seed_spin.setRange(0, 2**31 - 1)
        self.lock_seed = QCheckBox("Lock")
        self.shuffle_button = QPushButton("Shuffle")
        self.quality = QComboBox()
        recipes = {name: f"{sampling.sampler} sampler, {sampling.steps} steps" for name, sampling in QUALITY.items()}
        for index, (name, recipe) in enumerate(recipes.items()):
            self.quality.addItem(name, name)
            self.quality.setItemData(index, recipe, Qt.ToolTipRole)
        self.quality.setToolTip("\n".join(f"{name}: {recipe}" for name, recipe in recipes.items()))
        self.guidance = QDoubleSpinBox()
        self.guidance.setRange(1.0, 20.0)
        self.guidance.setSingleStep(0.5)
        self.variants_spin.valueChanged.connect(lambda v: self.model.update_settings(variants=v))
        self.seed_spin.valueChanged.connect(lambda v: self.model.update_settings(seed=v))
        self.lock_seed.toggled.connect(lambda v: self.model.update_settings(lock_seed=v))
        self.shuffle_button.clicked.connect(self.model.shuffle_seed)
        self.quality.currentIndexChanged.connect(lambda _: self.model.update_settings(quality=self.quality.currentData()))
        self.guidance.valueChanged.connect(lambda v: self.model.update_settings(guidance=v))
        settings = QHBoxLayout()
        for label, widget in (("Variants", self.variants_spin), ("Seed", self.seed_spin), (None, self.lock_seed),
                              (None, self.shuffle_button), ("Quality", self.quality), ("Guidance", self.guidance)):
            if label:
                settings.addWidget(QLabel(label))
            settings.addWidget(widget)
        self.generate_button = QPushButton("Generate")
        self.generate_button.setObjectName("primary")
        self.generate_button.clicked.connect(self.model.generate)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self._cancel)
        settings.addStretch()
        settings.addWidget(self.generate_button)
        settings.addWidget(self.cancel_button)
        return settings

    def _build_lists(self) -> QVBoxLayout:
        self.variants = QtVariants(self.model)
        self.jobs = QListWidget()
        self.jobs.setMaximumHeight(70)
        lists = QVBoxLayout()
        for title, widget, stretch in (("Variants", self.variants, 1), ("Jobs", self.jobs, 0)):
            label = QLabel(title)
            label.setObjectName("section")
            lists.addWidget(label)
            lists.addWidget(widget, stretch)
        return lists

    def _build_audition(self) -> QVBoxLayout:
        self.picture = QLabel()
        self.picture.setFixedSize(*PREVIEW_SIZE)
        self.picture.setAlignment(Qt.AlignCenter)
        self.picture.setStyleSheet("background: black; color: #8b8e94")
        self.play_button = QPushButton("Play")
        self.play_button.clicked.connect(self.toggle_play)
        self.loop_box = QCheckBox("Loop")
        self.loop_box.toggled.connect(self._set_loop)
        self.meter = QtLevelMeter()
        self.place_button = QPushButton("Place on timeline")
        self.place_button.clicked.connect(self.model.place)
        self.undo_button = QPushButton("Undo place")
        self.undo_button.clicked.connect(self.model.undo_place)
        self.export_button = QPushButton("Export stems…")
        self.export_button.clicked.connect(self._export)
        audition = QVBoxLayout()
        label = QLabel("Audition")
        label.setObjectName("section")
        audition.addWidget(label)
        audition.addWidget(self.picture)
        controls = QHBoxLayout()
        controls.addWidget(self.play_button, 1)
        controls.addWidget(self.loop_box)
        audition.addLayout(controls)
        audition.addWidget(self.meter)
        for widget in (self.place_button, self.undo_button, self.export_button):
            audition.addWidget(widget)
        audition.addStretch()
        return audition

    def _shortcuts(self) -> None:
        """Each key once: it makes the shortcut, names itself in its button's tooltip and in the hint line."""
        table = (
            (Qt.Key_Space, self.toggle_play, "play/stop", self.play_button, "Play or stop the chosen variant"),
            (Qt.Key_Up, lambda: self.model.choose_next(-1), "previous", None, None),
            (Qt.Key_Down, lambda: self.model.choose_next(1), "next (A/B)", None, None),
            (Qt.Key_L, self.loop_box.toggle, "loop", self.loop_box, "Loop the range"),
            (Qt.Key_Return, self.model.place, "place", self.place_button,
             "Place the chosen variant at the range it was made for"),
            (Qt.Key_Enter, self.model.place, None, None, None),
            (QKeySequence.Undo, self.model.undo_place, "undo place", self.undo_button,
             "Restore the project from the backup the last placement made"),
            (Qt.CTRL | Qt.Key_G, self.model.generate, "generate", self.generate_button,
             "Generate variants for the selection"),
            (Qt.Key_Escape, self._cancel, "cancel", self.cancel_button, "Cancel the running job"),
            (QKeySequence.Open, self._open, "open", self.open_button, "Open an editor's project file"),
            (Qt.CTRL | Qt.Key_E, self._export, "export", self.export_button, "Export stems at a loudness target"),
        )
        hints = []
        for keys, slot, hint, button, tooltip in table:
            sequence = QKeySequence(keys)
            shortcut = QShortcut(sequence, self)
            shortcut.setContext(Qt.WidgetWithChildrenShortcut)
            shortcut.activated.connect(slot)
            if button is not None:
                button.setToolTip(with_key(tooltip, sequence))
            if hint:
                hints.append(f"{sequence.toString(QKeySequence.NativeText)} {hint}")
        self.hints.setText("   ·   ".join(hints))

    # -- worker -> model (GUI thread) ---------------------------------------------------------------------------

    def _on_status(self, status: dict) -> None:
        self.model.set_engine(status)

    def _on_submitted(self, key: int, engine_id: str) -> None:
        self.model.job_submitted(key, engine_id)

    def _on_event(self, key: int, event: dict) -> None:
        self.model.job_event(key, event)

    def _on_finished(self, key: int, request, paths: list) -> None:
        self.model.job_finished(key, request, paths)

    def _on_failed(self, key: int, message: str, state: str) -> None:
        self.model.job_failed(key, message, state)

    # -- model -> view ----------------------------------------------------------------------------------------

    def _update_project(self, _=None) -> None:
        self.project_label.setText(Path(self.model.project_name).name or "No project")
        self.project_label.setToolTip(self.model.project_name)

    def _update_selection(self, selection) -> None:
        if selection is None:
            self.selection_label.setText("Click a video clip or drag a range")
            return
        start, end = selection.range_seconds()
        self.selection_label.setText(f"Selection '{selection.label}': {self.model.timecode_range(start, end)} "
                                     f"({float(end - start):.2f} s, {len(selection.spans)} shot(s))")
        self._move_playhead(selection.record.start_time.value)

    def _update_settings(self, settings) -> None:
        for widget, value in ((self.variants_spin, settings.variants), (self.seed_spin, settings.seed)):
            widget.blockSignals(True)
            widget.setValue(value)
            widget.blockSignals(False)
        self.lock_seed.setChecked(settings.lock_seed)
        self.guidance.setValue(settings.guidance)
        self.quality.setCurrentIndex(list(QUALITY).index(settings.quality))

    def _update_jobs(self, jobs) -> None:
        self.jobs.clear()
        for job in jobs:
            progress = f" {job.progress}" if job.state == "running" else ""
            error = f": {job.error}" if job.error else ""
            self.jobs.addItem(f"{job.label} — {job.state}{progress}{error}")

    def _update_chosen(self, index: int) -> None:
        if self._player is not None and self._player.playing():
            self._player.switch(self.model.variants[index].audio)  # A/B: same position, other variant
        self._show_frame(self._player.position() if self._player and self._player.playing() else 0)

    def _update_engine(self, engine) -> None:
        if engine.connected:
            text = f"Engine: {engine.device}, model {engine.model} ({'; '.join(engine.licences)})"
            self.engine_label.setToolTip(text)
            self.engine_label.setText(self.engine_label.fontMetrics().elidedText(text, Qt.ElideRight, ENGINE_LABEL_WIDTH))
            self.engine_label.setStyleSheet("")
        else:
            self.engine_label.setText("Engine: not connected")
            self.engine_label.setStyleSheet(f"color: {METER_RED}")
            self._show_message(engine.error)

    def _show_message(self, text) -> None:
        self.message.setText(text or "")

    # -- audition ---------------------------------------------------------------------------------------------

    def _on_preview(self, key: int, frames: np.ndarray) -> None:
        """A preview decoded off the GUI thread: keep it and show the current frame if it is the chosen one's."""
        self._previews[key] = frames
        if self.model.chosen is not None and self.model.variants[self.model.chosen].request.key == key:
            self._show_frame(self._player.position() if self._player and self._player.playing() else 0)

    def _show_frame(self, position: int) -> None:
        """The picture and playhead at `position` samples into the chosen variant; decoding starts if needed."""
        if self.model.chosen is None:
            return
        variant = self.model.variants[self.model.chosen]
        self._move_playhead(variant.record_start.value + float(Fraction(position, variant.rate)) * self.model.rate())
        frames = self._previews.get(variant.request.key)
        if frames is None:
            self.previews.request(variant.request)
            self.picture.setText("Decoding preview…")
            return
        self.picture.setPixmap(to_pixmap(frames[min(len(frames) - 1, int(Fraction(position, variant.rate) * PREVIEW_FPS))]))

    def _move_playhead(self, frame: float) -> None:
        self.timeline.playhead = frame
        self.timecode_label.setText(timecode(frame, self.model.rate()))
        self.timeline.update()

    def toggle_play(self) -> None:
        if self.model.chosen is None:
            self._show_message("Generate and pick a variant to audition.")
            return
        try:
            if self._player is None:
                self._player = self._player_factory()
            if self._player.playing():
                self._player.stop()
                return
            variant = self.model.variants[self.model.chosen]
            self._player.play(variant.audio, variant.rate, 0, self._loop)
        except AudioUnavailable as exc:
            self._show_message(str(exc))
            self.play_button.setEnabled(False)

    def _set_loop(self, on: bool) -> None:
        self._loop = on

    def _tick(self) -> None:
        playing = self._player is not None and self._player.playing()
        self.play_button.setText("Stop" if playing else "Play")
        if not playing:
            self.meter.set_level(0.0)
            return
        self._show_frame(self._player.position())
        self.meter.set_level(self._player.level())

    # -- actions ----------------------------------------------------------------------------------------------

    def _open(self) -> None:
        patterns = " ".join(f"*{suffix}" for suffix in BRIDGES)  # a .fcpxmld bundle: pick the Info.fcpxml inside
        path, _ = QFileDialog.getOpenFileName(self, "Open project", "", f"Projects ({patterns})")
        if path:
            self.model.open_project(Path(path))

    def _cancel(self) -> None:
        for job in reversed(self.model.jobs):
            if job.state in ("queued", "running") and job.engine_id:
                self.worker.cancel(job.engine_id)
                return

    def _export(self) -> None:
        dialog = QtExportDialog(self.model.output / time.strftime("stems-%Y%m%d-%H%M%S"), self)
        if dialog.exec() == QDialog.Accepted:
            self.model.export(Path(dialog.folder.text()), dialog.loudness.currentData(), dialog.ceiling.value())

    def closeEvent(self, event) -> None:
        if self._player is not None:
            self._player.stop()
        self._thread.quit()
        self._thread.wait(5000)
        self.previews.wait()
        super().closeEvent(event)
