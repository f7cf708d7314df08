"""Audio drawings on a dBFS scale: a waveform thumbnail with its level scale, and a peak meter with peak hold."""

import time

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QLinearGradient, QPainter, QPolygonF
from PySide6.QtWidgets import QSizePolicy, QWidget

from ui import qt_theme as theme

DB_FLOOR = -48.0  # the bottom of both scales; quieter is drawn as silence
WAVEFORM_LINES = (0.0, -12.0, -24.0, -36.0)  # evenly spaced on the dB scale
WAVEFORM_LABELS = (0.0, -24.0)
METER_MARKS = (-48.0, -36.0, -24.0, -18.0, -12.0, -6.0, 0.0)
METER_FALL_DB_PER_S = 24.0  # the bar falls like a PPM's, so short peaks stay readable
PEAK_HOLD_S = 1.5
SCALE_WIDTH = 24


def db(linear: float | np.ndarray) -> float | np.ndarray:
    """Linear amplitude to dBFS, floored at DB_FLOOR."""
    return np.maximum(20 * np.log10(np.maximum(linear, 1e-12)), DB_FLOOR)


def level_fraction(decibels: float | np.ndarray) -> float | np.ndarray:
    """Where a dBFS level sits on the scale: 0 at DB_FLOOR, 1 at full scale."""
    return np.clip((np.asarray(decibels) - DB_FLOOR) / -DB_FLOOR, 0.0, 1.0)


def small_font() -> QFont:
    font = QFont()
    font.setPointSizeF(6.5)
    return font


class QtWaveform(QWidget):
    """A variant's peaks drawn on a dBFS scale across the whole cell, with the scale at its left edge."""

    def __init__(self, peaks: np.ndarray, parent: QWidget | None = None):
        super().__init__(parent)
        self.peaks = peaks
        self.selected = False  # drawn on the highlight colour, like the rest of its row
        self.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Expanding)
        self.setMinimumWidth(160)
        self.setToolTip(f"Peak {float(db(peaks.max(initial=0.0))):.1f} dBFS (scale: dBFS, {DB_FLOOR:g} at the "
                        "centre line)")

    def envelope(self, width: int) -> np.ndarray:
        """The scale position (0..1) of the peak under each pixel column of a `width`-wide drawing."""
        columns = np.interp(np.linspace(0, len(self.peaks) - 1, max(1, width)), np.arange(len(self.peaks)), self.peaks)
        return level_fraction(db(columns))

    def paintEvent(self, _event) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor("#203a55" if self.selected else theme.BASE))
        middle, half = self.height() / 2, self.height() / 2 - 1
        lanes = QRectF(SCALE_WIDTH, 0, self.width() - SCALE_WIDTH, self.height())
        painter.setPen(QColor("#2e3035"))
        for level in WAVEFORM_LINES:
            offset = float(level_fraction(level)) * half
            painter.drawLine(QPointF(lanes.left(), middle - offset), QPointF(lanes.right(), middle - offset))
            painter.drawLine(QPointF(lanes.left(), middle + offset), QPointF(lanes.right(), middle + offset))
        envelope = self.envelope(int(lanes.width())) * half
        xs = lanes.left() + np.arange(len(envelope))
        outline = [QPointF(x, middle - e) for x, e in zip(xs, envelope)]
        outline += [QPointF(x, middle + e) for x, e in zip(xs[::-1], envelope[::-1])]
        painter.setPen(Qt.NoPen)
        painter.setBrush(QColor(theme.WAVEFORM))
        painter.drawPolygon(QPolygonF(outline))
        painter.setPen(QColor("#3a3d42"))
        painter.drawLine(QPointF(lanes.left(), middle), QPointF(lanes.right(), middle))
        self._paint_scale(painter, middle, half)

    def _paint_scale(self, painter: QPainter, middle: float, half: float) -> None:
        painter.fillRect(QRectF(0, 0, SCALE_WIDTH - 2, self.height()), QColor(theme.PANEL))
        painter.setFont(small_font())
        painter.setPen(QColor(theme.DIM_TEXT))
        height = painter.fontMetrics().height()
        for level in WAVEFORM_LABELS:
            y = middle - float(level_fraction(level)) * half
            top = min(max(0.0, y - height / 2), self.height() - height)
            painter.drawText(QRectF(0, top, SCALE_WIDTH - 5, height), Qt.AlignRight | Qt.AlignVCenter, f"{level:g}")


class QtLevelMeter(QWidget):
    """A horizontal peak meter in dBFS: green to -12, yellow to -3, red above; the peak holds for a moment."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.level_db = DB_FLOOR
        self.hold_db = DB_FLOOR
        self._hold_since = 0.0
        self._last = time.monotonic()
        self.setMinimumHeight(30)
        self.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Fixed)
        self.setToolTip("Output level of the variant playing (peak, dBFS)")

    def set_level(self, linear: float) -> None:
        """A new block peak: the bar jumps up and falls back at METER_FALL_DB_PER_S."""
        now = time.monotonic()
        fallen = self.level_db - METER_FALL_DB_PER_S * (now - self._last)
        self.level_db, self._last = max(float(db(linear)), fallen, DB_FLOOR), now
        if self.level_db >= self.hold_db or now - self._hold_since > PEAK_HOLD_S:
            self.hold_db, self._hold_since = self.level_db, now
        self.update()

    def paintEvent(self, _event) -> None:
        painter = QPainter(self)
        bar = QRectF(0, 0, self.width(), 12)
        painter.fillRect(bar, QColor("#111214"))
        gradient = QLinearGradient(bar.topLeft(), bar.topRight())
        for level, colour in ((-12.0, theme.METER_GREEN), (-6.0, theme.METER_YELLOW), (-3.0, theme.METER_YELLOW),
                              (0.0, theme.METER_RED)):
            gradient.setColorAt(float(level_fraction(level)), QColor(colour))
        gradient.setColorAt(0.0, QColor(theme.METER_GREEN))
        painter.fillRect(QRectF(0, 0, bar.width() * float(level_fraction(self.level_db)), bar.height()), gradient)
        if self.hold_db > DB_FLOOR:
            x = bar.width() * float(level_fraction(self.hold_db))
            painter.fillRect(QRectF(min(x, bar.width() - 2), 0, 2, bar.height()), QColor("#ffffff"))
        painter.setFont(small_font())
        painter.setPen(QColor(theme.DIM_TEXT))
        for mark in METER_MARKS:
            x = bar.width() * float(level_fraction(mark))
            painter.drawLine(QPointF(x, bar.bottom()), QPointF(x, bar.bottom() + 3))
            align = Qt.AlignLeft if mark == DB_FLOOR else Qt.AlignRight if mark == 0 else Qt.AlignHCenter
            left = x if mark == DB_FLOOR else x - 30 if mark == 0 else x - 15
            painter.drawText(QRectF(left, bar.bottom() + 3, 30, 12), align | Qt.AlignTop, f"{mark:g}")
