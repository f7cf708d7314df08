"""The audition column: the chosen variant's picture, Play/Stop and Loop, the level meter, place, undo and export."""

from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import QCheckBox, QDialog, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from ui.panel_model import PanelModel
from ui.player import AudioUnavailable, Player
from ui.qt_audio import QtLevelMeter
from ui.qt_export import QtExportDialog
from ui.qt_theme import compact
from ui.worker import PREVIEW_SIZE, PreviewDecoder, preview_frame

TICK_MS = 30


def to_pixmap(rgb: np.ndarray) -> QPixmap:
    """An RGB frame as a pixmap that owns its pixels."""
    height, width, _ = rgb.shape
    image = QImage(np.ascontiguousarray(rgb).data, width, height, 3 * width, QImage.Format_RGB888)
    return QPixmap.fromImage(image.copy())


class QtAudition(QWidget):
    """Plays the model's chosen variant with its picture; the audio clock moves the picture and the playhead.
    `player_factory` makes the player on the first Play (it may raise `AudioUnavailable`)."""

    def __init__(self, model: PanelModel, player_factory: Callable[[], Player]):
        super().__init__()
        self.model = model
        self._player_factory = player_factory
        self._player: Player | None = None
        self.previews = PreviewDecoder(self)
        self.picture = QLabel()
        self.picture.setFixedSize(*PREVIEW_SIZE)
        self.picture.setAlignment(Qt.AlignCenter)
        self.picture.setStyleSheet("background: black; color: #8b8e94")
        self.play_button = QPushButton("Play")
        self.loop_box = QCheckBox("Loop")
        self.meter = QtLevelMeter()
        self.place_button = QPushButton("Place on timeline")
        self.undo_button = QPushButton("Undo place")
        self.export_button = QPushButton("Export stems…")
        self._lay_out()
        self.play_button.clicked.connect(self.toggle_play)
        self.place_button.clicked.connect(model.place)
        self.undo_button.clicked.connect(model.undo_place)
        self.export_button.clicked.connect(self.export_stems)
        self.previews.ready.connect(self._on_preview)
        self.previews.failed.connect(self._on_preview_failed)
        model.events.chosen.connect(self._update_chosen)
        self._clock = QTimer(self)
        self._clock.timeout.connect(self._tick)
        self._clock.start(TICK_MS)

    def _lay_out(self) -> None:
        column = compact(QVBoxLayout(self))
        label = QLabel("Audition")
        label.setObjectName("section")
        column.addWidget(label)
        column.addWidget(self.picture)
        controls = QHBoxLayout()
        controls.addWidget(self.play_button, 1)
        controls.addWidget(self.loop_box)
        column.addLayout(controls)
        column.addWidget(self.meter)
        for widget in (self.place_button, self.undo_button, self.export_button):
            column.addWidget(widget)
        column.addStretch()

    # -- actions ----------------------------------------------------------------------------------------------

    def toggle_play(self) -> None:
        """Play the chosen variant from its start, or stop it."""
        variant = self.model.variant_to_audition()
        if variant is None:
            return
        try:
            if self._player is None:
                self._player = self._player_factory()
            if self._player.playing():
                self._player.stop()
                return
            self._player.play(variant.audio, variant.rate, 0, self.loop_box.isChecked())
        except AudioUnavailable as exc:
            self.model.notify(str(exc))
            self.play_button.setEnabled(False)

    def export_stems(self) -> None:
        """Ask for the loudness target, ceiling and folder, then export."""
        dialog = QtExportDialog(self.model.new_export_folder(), self)
        if dialog.exec() == QDialog.Accepted:
            self.model.export(Path(dialog.folder.text()), dialog.loudness.currentData(), dialog.ceiling.value())

    def shut_down(self) -> None:
        """Stop the sound and wait for running decodes (the window is closing)."""
        if self._player is not None:
            self._player.stop()
        self.previews.wait()

    # -- model and clock -> view ------------------------------------------------------------------------------

    def _playing(self) -> bool:
        return self._player is not None and self._player.playing()

    def _position(self) -> int:
        """Samples into the chosen variant: the player's clock while it plays, else its start."""
        return self._player.position() if self._playing() else 0

    def _update_chosen(self, index: int) -> None:
        if self._playing():
            self._player.switch(self.model.variants[index].audio)  # A/B: same position, other variant
        self._show_frame(self._position())

    def _on_preview(self, key: int) -> None:
        variant = self.model.chosen_variant
        if variant is not None and variant.request.key == key:
            self._show_frame(self._position())

    def _on_preview_failed(self, _key: int, message: str) -> None:
        self.model.notify(message)

    def _show_frame(self, position: int) -> None:
        """The picture and playhead at `position` samples into the chosen variant."""
        variant = self.model.chosen_variant
        if variant is None:
            return
        self.model.follow_audition(position)
        frames = self.previews.frames(variant.request)
        if frames is None:
            self.picture.setText("Decoding preview…")
            return
        self.picture.setPixmap(to_pixmap(preview_frame(frames, Fraction(position, variant.rate))))

    def _tick(self) -> None:
        playing = self._playing()
        self.play_button.setText("Stop" if playing else "Play")
        if not playing:
            self.meter.set_level(0.0)
            return
        self._show_frame(self._player.position())
        self.meter.set_level(self._player.level())
