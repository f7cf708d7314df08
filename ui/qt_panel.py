"""Thin Qt views over `PanelModel`: timeline, generation, jobs, variants with audition, place, export."""

import functools
import time
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image
from PySide6.QtCore import QRectF, Qt, QThread, QTimer, Signal
from PySide6.QtGui import QColor, QImage, QKeySequence, QPainter, QPen, QPixmap, QShortcut
from PySide6.QtWidgets import (
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
    QProgressBar,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from editor_plugin.hosts import BRIDGES
from engine.video import EditSpan, decode_edit
from export.stems import LOUDNESS_PRESETS
from ui.panel_model import QUALITY, PanelModel, VariantRow
from ui.player import AudioUnavailable, Player
from ui.worker import EngineWorker

PREVIEW_FPS = 12
PREVIEW_SIZE = (320, 180)
TRACK_HEIGHT = 26
RULER_HEIGHT = 20
TICK_MS = 30


def letterbox(image: Image.Image, width: int = PREVIEW_SIZE[0], height: int = PREVIEW_SIZE[1]) -> np.ndarray:
    """Fit a picture inside width x height on black, keeping its aspect ratio (the preview's frames)."""
    image = image.convert("RGB")
    scale = min(width / image.width, height / image.height)
    resized = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))), Image.BILINEAR)
    canvas = Image.new("RGB", (width, height))
    canvas.paste(resized, ((width - resized.width) // 2, (height - resized.height) // 2))
    return np.asarray(canvas)


def to_pixmap(rgb: np.ndarray) -> QPixmap:
    height, width, _ = rgb.shape
    return QPixmap.fromImage(QImage(np.ascontiguousarray(rgb).data, width, height, 3 * width, QImage.Format_RGB888).copy())


def timecode(frame: float, rate: float) -> str:
    whole = int(frame)
    fps = round(rate)
    return f"{whole // (3600 * fps):02d}:{whole // (60 * fps) % 60:02d}:{whole // fps % 60:02d}:{whole % fps:02d}"


class QtTimeline(QWidget):
    """Tracks and clips, the selection and the playhead; click a clip or drag a range; wheel zooms."""

    def __init__(self, model: PanelModel):
        super().__init__()
        self.model = model
        self.pixels_per_frame = 2.0
        self.playhead = 0.0
        self._drag_from: int | None = None
        self.setMinimumHeight(RULER_HEIGHT + 3 * TRACK_HEIGHT)
        model.events.project.connect(self._update)
        model.events.selection.connect(self._update)
        model.events.placed.connect(self._update)

    def _update(self, _=None) -> None:
        if self.model.timeline is not None:
            tracks = len(self.model.timeline.tracks)
            self.setMinimumHeight(RULER_HEIGHT + max(3, tracks) * TRACK_HEIGHT + 4)
            frames = self.model.timeline.duration().value or 1
            self.pixels_per_frame = max(0.05, (self.width() - 10) / frames)
        self.update()

    def resizeEvent(self, event) -> None:
        self._update()
        super().resizeEvent(event)

    def rows(self):
        """Tracks top to bottom as the editors draw them: video (top track first), then audio."""
        timeline = self.model.timeline
        return list(reversed(timeline.video_tracks())) + list(timeline.audio_tracks())

    def frame_at(self, x: float) -> int:
        return max(0, int(x / self.pixels_per_frame))

    def clip_at(self, x: float, y: float):
        row = int((y - RULER_HEIGHT) // TRACK_HEIGHT)
        rows = self.rows()
        if not 0 <= row < len(rows):
            return None
        frame = self.frame_at(x)
        for clip in rows[row].find_clips():
            place = clip.range_in_parent()
            if place.start_time.value <= frame < place.end_time_exclusive().value:
                return clip
        return None

    def mousePressEvent(self, event) -> None:
        if self.model.timeline is None:
            return
        self._drag_from = self.frame_at(event.position().x())

    def mouseReleaseEvent(self, event) -> None:
        if self._drag_from is None:
            return
        x, y = event.position().x(), event.position().y()
        frame = self.frame_at(x)
        if abs(frame - self._drag_from) * self.pixels_per_frame < 4:
            clip = self.clip_at(x, y)
            if clip is not None and clip.parent().kind == "Video":
                place = clip.range_in_parent()
                self.model.select_range(int(place.start_time.value), int(place.end_time_exclusive().value), clip.name)
        else:
            self.model.select_range(self._drag_from, frame)
        self._drag_from = None

    def wheelEvent(self, event) -> None:
        factor = 1.25 if event.angleDelta().y() > 0 else 0.8
        self.pixels_per_frame = max(0.05, self.pixels_per_frame * factor)
        self.update()

    def paintEvent(self, _event) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor("#1e1f22"))
        timeline = self.model.timeline
        if timeline is None:
            painter.setPen(QColor("#aaaaaa"))
            painter.drawText(self.rect(), Qt.AlignCenter, "Open a project to see its timeline")
            return
        rate = self.model.rate()
        scale = self.pixels_per_frame
        painter.setPen(QColor("#777777"))
        step = max(1, round(rate)) * max(1, int(60 / (scale * rate)) or 1)
        for frame in range(0, int(self.width() / scale) + 1, step):
            painter.drawLine(int(frame * scale), 0, int(frame * scale), RULER_HEIGHT - 4)
            painter.drawText(int(frame * scale) + 3, RULER_HEIGHT - 6, timecode(frame, rate))
        for row, track in enumerate(self.rows()):
            top = RULER_HEIGHT + row * TRACK_HEIGHT
            video = track.kind == "Video"
            painter.fillRect(0, top, self.width(), TRACK_HEIGHT - 2, QColor("#2b2d31"))
            for clip in track.find_clips():
                place = clip.range_in_parent()
                rect = QRectF(place.start_time.value * scale, top + 1, place.duration.value * scale, TRACK_HEIGHT - 4)
                colour = "#4a78c2" if video else ("#4fa36b" if track.name.startswith("Foley") else "#3f8a8a")
                painter.fillRect(rect, QColor(colour))
                painter.setPen(QColor("#ffffff"))
                painter.drawText(rect.adjusted(3, 0, 0, 0), Qt.AlignVCenter, f"{track.name}: {clip.name}")
        selection = self.model.selection
        if selection is not None:
            first = selection.record.start_time.value * scale
            width = selection.record.duration.value * scale
            painter.fillRect(QRectF(first, 0, width, self.height()), QColor(255, 200, 60, 60))
            painter.setPen(QPen(QColor("#ffc83c"), 1))
            painter.drawRect(QRectF(first, 0, width, self.height() - 1))
        painter.setPen(QPen(QColor("#ff4d4d"), 2))
        painter.drawLine(int(self.playhead * scale), 0, int(self.playhead * scale), self.height())


def waveform_pixmap(peaks: np.ndarray, width: int = 160, height: int = 28) -> QPixmap:
    pixmap = QPixmap(width, height)
    pixmap.fill(QColor("#1e1f22"))
    painter = QPainter(pixmap)
    painter.setPen(QColor("#6fd08c"))
    top = max(float(peaks.max(initial=0.0)), 1e-9)
    for x, peak in enumerate(np.interp(np.linspace(0, len(peaks) - 1, width), np.arange(len(peaks)), peaks)):
        half = max(1, int(peak / top * (height / 2 - 1)))
        painter.drawLine(x, height // 2 - half, x, height // 2 + half)
    painter.end()
    return pixmap


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
        for name, slot in (("project", self._update_project), ("selection", self._update_selection),
                           ("settings", self._update_settings), ("jobs", self._update_jobs),
                           ("variants", self._update_variants), ("chosen", self._update_chosen),
                           ("engine", self._update_engine), ("message", self._show_message),
                           ("placed", self._update_project), ("generate_requested", self.request_job.emit)):
            getattr(model.events, name).connect(slot)
        self._clock = QTimer(self)
        self._clock.timeout.connect(self._tick)
        self._clock.start(TICK_MS)
        self._shortcuts()
        self._update_settings(model.settings)
        self.request_connect.emit()

    # -- construction -----------------------------------------------------------------------------------------

    def _build(self) -> None:
        self.open_button = QPushButton("Open project…")
        self.open_button.clicked.connect(self._open)
        self.resolve_button = QPushButton("Connect Resolve")
        self.resolve_button.clicked.connect(lambda: self.model.connect_resolve())
        self.project_label = QLabel("No project")
        self.engine_label = QLabel("Engine: connecting…")
        self.reconnect_button = QPushButton("Reconnect")
        self.reconnect_button.clicked.connect(lambda: self.request_connect.emit())
        top = QHBoxLayout()
        for widget in (self.open_button, self.resolve_button, self.project_label):
            top.addWidget(widget)
        top.addStretch()
        top.addWidget(self.engine_label)
        top.addWidget(self.reconnect_button)

        self.timeline = QtTimeline(self.model)
        self.selection_label = QLabel("Click a video clip or drag a range")

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
        self.generate_button.clicked.connect(self.model.generate)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self._cancel)
        settings.addStretch()
        settings.addWidget(self.generate_button)
        settings.addWidget(self.cancel_button)

        self.jobs = QListWidget()
        self.jobs.setMaximumHeight(80)
        self.variants = QTableWidget(0, 3)
        self.variants.setHorizontalHeaderLabels(["Waveform", "Seed", "Duration"])
        self.variants.verticalHeader().setVisible(False)
        self.variants.setSelectionBehavior(QTableWidget.SelectRows)
        self.variants.setEditTriggers(QTableWidget.NoEditTriggers)
        self.variants.currentCellChanged.connect(lambda row, *_: self.model.choose(row))

        self.picture = QLabel()
        self.picture.setFixedSize(*PREVIEW_SIZE)
        self.picture.setStyleSheet("background: black")
        self.play_button = QPushButton("Play (Space)")
        self.play_button.clicked.connect(self.toggle_play)
        self.loop_box = QCheckBox("Loop (L)")
        self.loop_box.toggled.connect(self._set_loop)
        self.meter = QProgressBar()
        self.meter.setRange(0, 100)
        self.meter.setTextVisible(False)
        self.place_button = QPushButton("Place (Enter)")
        self.place_button.clicked.connect(self.model.place)
        self.undo_button = QPushButton("Undo place")
        self.undo_button.clicked.connect(self.model.undo_place)
        self.export_button = QPushButton("Export stems…")
        self.export_button.clicked.connect(self._export)
        audition = QVBoxLayout()
        audition.addWidget(self.picture)
        controls = QHBoxLayout()
        for widget in (self.play_button, self.loop_box):
            controls.addWidget(widget)
        audition.addLayout(controls)
        audition.addWidget(self.meter)
        for widget in (self.place_button, self.undo_button, self.export_button):
            audition.addWidget(widget)
        audition.addStretch()
        lower = QHBoxLayout()
        lower.addWidget(self.variants, 1)
        lower.addLayout(audition)

        self.message = QLabel("")
        self.message.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.timeline)
        layout.addWidget(self.selection_label)
        layout.addLayout(settings)
        layout.addWidget(QLabel("Jobs"))
        layout.addWidget(self.jobs)
        layout.addLayout(lower, 1)
        layout.addWidget(self.message)
        self.resize(980, 640)

    def _shortcuts(self) -> None:
        for keys, slot in ((Qt.Key_Space, self.toggle_play), (Qt.Key_Up, functools.partial(self.model.choose_next, -1)),
                           (Qt.Key_Down, functools.partial(self.model.choose_next, 1)), (Qt.Key_Return, self.model.place),
                           (Qt.Key_Enter, self.model.place), (Qt.Key_L, self.loop_box.toggle),
                           (QKeySequence.Undo, self.model.undo_place), (Qt.Key_Escape, self._cancel)):
            shortcut = QShortcut(QKeySequence(keys), self)
            shortcut.setContext(Qt.WidgetWithChildrenShortcut)
            shortcut.activated.connect(slot)

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
        self.timeline._update()

    def _update_selection(self, selection) -> None:
        if selection is None:
            self.selection_label.setText("Click a video clip or drag a range")
            return
        start, end = selection.range_seconds()
        rate = self.model.rate()
        first = selection.record.start_time.value
        self.selection_label.setText(
            f"Selection '{selection.label}': {timecode(first, rate)} – "
            f"{timecode(first + selection.record.duration.value, rate)} ({float(end - start):.2f} s, "
            f"{len(selection.spans)} shot(s))"
        )

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
            progress = f" {job.stage} {job.step}/{job.total}" if job.state == "running" else ""
            if job.state == "running" and job.stage == "sample":
                progress = f" variant {job.variant + 1}/{job.variants} sample {job.step}/{job.total}"
            eta = f", about {job.eta_seconds:.0f} s left" if job.eta_seconds else ""
            error = f": {job.error}" if job.error else ""
            self.jobs.addItem(f"{job.label} — {job.state}{progress}{eta}{error}")

    def _update_variants(self, variants: list[VariantRow]) -> None:
        self.variants.setRowCount(len(variants))
        for row, variant in enumerate(variants):
            thumb = QLabel()
            thumb.setPixmap(waveform_pixmap(variant.peaks))
            self.variants.setCellWidget(row, 0, thumb)
            self.variants.setItem(row, 1, QTableWidgetItem(str(variant.seed)))
            self.variants.setItem(row, 2, QTableWidgetItem(f"{float(variant.duration):.2f} s"))
        self.variants.resizeColumnsToContents()

    def _update_chosen(self, index: int) -> None:
        if self.variants.currentRow() != index:
            self.variants.selectRow(index)
        if self._player is not None and self._player.playing():
            self._player.switch(self.model.variants[index].audio)  # A/B: same position, other variant
        self._show_frame(self._player.position() if self._player and self._player.playing() else 0)

    def _update_engine(self, engine) -> None:
        if engine.connected:
            self.engine_label.setText(f"Engine: {engine.device}, model {engine.model} ({'; '.join(engine.licences)})")
        else:
            self.engine_label.setText("Engine: not connected")
            self._show_message(engine.error)

    def _show_message(self, text) -> None:
        self.message.setText(text or "")

    # -- audition ---------------------------------------------------------------------------------------------

    def _preview(self, variant: VariantRow) -> np.ndarray:
        key = variant.request.key
        if key not in self._previews:
            request = variant.request
            spans = [EditSpan(Path(s["media"]), Fraction(s["record_start"]), Fraction(s["record_end"]),
                              Fraction(s["source_start"])) for s in request.edit]
            self._previews[key] = decode_edit(spans, request.start, request.end, rate=PREVIEW_FPS, fit=letterbox).rgb
        return self._previews[key]

    def _show_frame(self, position: int) -> None:
        if self.model.chosen is None:
            return
        variant = self.model.variants[self.model.chosen]
        frames = self._preview(variant)
        index = min(len(frames) - 1, int(Fraction(position, variant.rate) * PREVIEW_FPS))
        self.picture.setPixmap(to_pixmap(frames[index]))
        self.timeline.playhead = variant.record_start.value + float(Fraction(position, variant.rate)) * self.model.rate()
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
        if self._player is None or not self._player.playing():
            self.meter.setValue(0)
            return
        self._show_frame(self._player.position())
        self.meter.setValue(int(min(1.0, self._player.level()) * 100))

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
        super().closeEvent(event)
