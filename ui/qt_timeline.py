"""The timeline view: a timecode ruler, track headers, clips, the selection and the playhead."""

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFontMetricsF, QPainter, QPen, QPolygonF
from PySide6.QtWidgets import QWidget

from ui import qt_theme as theme
from ui.panel_model import PanelModel, timecode

TRACK_HEIGHT = 30
RULER_HEIGHT = 24
HEADER_WIDTH = 84
LABEL_GAP = 14  # pixels between one timecode label's end and the next label's start
MIN_MINOR_SPACING = 6
SECOND_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600)
MIN_SCALE = 0.01


def label_steps(rate: float) -> list[int]:
    """Frame intervals a ruler may label: divisors of a second, then whole seconds and minutes."""
    fps = max(1, round(rate))
    return [d for d in range(1, fps) if fps % d == 0] + [s * fps for s in SECOND_STEPS]


def label_step(rate: float, scale: float, label_width: float) -> int:
    """The finest interval whose labels are at least one label (plus a gap) apart at `scale` pixels per frame."""
    steps = label_steps(rate)
    for step in steps:
        if step * scale >= label_width + LABEL_GAP:
            return step
    step = steps[-1]
    while step * scale < label_width + LABEL_GAP:
        step *= 2
    return step


def minor_step(step: int, scale: float) -> int | None:
    """Ticks between labels: the finest even split of `step` still readable, or none."""
    for parts in (10, 5, 4, 2):
        if step % parts == 0 and step // parts * scale >= MIN_MINOR_SPACING:
            return step // parts
    return None


class QtTimeline(QWidget):
    """Tracks and clips, the selection and the playhead; click a clip or drag a range; the wheel zooms at the
    pointer and Shift+wheel scrolls."""

    def __init__(self, model: PanelModel):
        super().__init__()
        self.model = model
        self.pixels_per_frame = 2.0
        self.first_frame = 0.0  # the frame at the left edge of the lanes
        self.playhead = 0.0
        self._drag_from: int | None = None
        self.setMinimumHeight(RULER_HEIGHT + 3 * TRACK_HEIGHT)
        model.events.project.connect(self.fit)
        model.events.selection.connect(lambda _: self.update())
        model.events.placed.connect(self.fit)
        model.events.playhead.connect(self._update_playhead)

    def _update_playhead(self, frame: float) -> None:
        self.playhead = frame
        self.update()

    # -- geometry ---------------------------------------------------------------------------------------------

    def fit(self, _=None) -> None:
        """Show the whole timeline across the lanes."""
        if self.model.timeline is not None:
            self.setMinimumHeight(RULER_HEIGHT + max(3, len(self.model.timeline.tracks)) * TRACK_HEIGHT + 2)
            frames = self.model.timeline.duration().value or 1
            self.pixels_per_frame = max(MIN_SCALE, (self.width() - HEADER_WIDTH - 10) / frames)
            self.first_frame = 0.0
        self.update()

    def resizeEvent(self, event) -> None:
        self.fit()
        super().resizeEvent(event)

    def x_of(self, frame: float) -> float:
        return HEADER_WIDTH + (frame - self.first_frame) * self.pixels_per_frame

    def frame_at(self, x: float) -> int:
        return max(0, int(self.first_frame + (x - HEADER_WIDTH) / self.pixels_per_frame))

    def rows(self):
        """Tracks top to bottom as the editors draw them: video (top track first), then audio."""
        timeline = self.model.timeline
        return list(reversed(timeline.video_tracks())) + list(timeline.audio_tracks())

    def ruler_labels(self) -> list[tuple[int, QRectF, str]]:
        """(frame, text rectangle, timecode) of every label the ruler draws: the layout paintEvent uses."""
        rate = self.model.rate()
        metrics = QFontMetricsF(self.font())
        width = metrics.horizontalAdvance(timecode(0, rate))
        step = label_step(rate, self.pixels_per_frame, width)
        frame = int(self.first_frame // step * step)
        labels = []
        while self.x_of(frame) < self.width():
            x = self.x_of(frame)
            text = timecode(frame, rate)
            rect = QRectF(x + 3, 0, metrics.horizontalAdvance(text), RULER_HEIGHT - 8)
            if x >= HEADER_WIDTH and rect.right() <= self.width():
                labels.append((frame, rect, text))
            frame += step
        return labels

    # -- input ------------------------------------------------------------------------------------------------

    def clip_at(self, x: float, y: float):
        row = int((y - RULER_HEIGHT) // TRACK_HEIGHT)
        rows = self.rows()
        if not 0 <= row < len(rows) or x < HEADER_WIDTH:
            return None
        frame = self.frame_at(x)
        for clip in rows[row].find_clips():
            place = clip.range_in_parent()
            if place.start_time.value <= frame < place.end_time_exclusive().value:
                return clip
        return None

    def mousePressEvent(self, event) -> None:
        if self.model.timeline is not None and event.position().x() >= HEADER_WIDTH:
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
        up = event.angleDelta().y() > 0
        if event.modifiers() & Qt.ShiftModifier:
            self.first_frame = max(0.0, self.first_frame + (-40 if up else 40) / self.pixels_per_frame)
        else:
            anchor = self.first_frame + (event.position().x() - HEADER_WIDTH) / self.pixels_per_frame
            self.pixels_per_frame = max(MIN_SCALE, self.pixels_per_frame * (1.25 if up else 0.8))
            self.first_frame = max(0.0, anchor - (event.position().x() - HEADER_WIDTH) / self.pixels_per_frame)
        self.update()

    # -- drawing ----------------------------------------------------------------------------------------------

    def paintEvent(self, _event) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor(theme.BASE))
        if self.model.timeline is None:
            painter.setPen(QColor(theme.DIM_TEXT))
            painter.drawText(self.rect(), Qt.AlignCenter, "Open a project (Ctrl+O) to see its timeline")
            return
        painter.setClipRect(QRectF(HEADER_WIDTH, 0, self.width() - HEADER_WIDTH, self.height()))
        self._paint_ruler(painter)
        self._paint_lanes(painter)
        self._paint_selection(painter)
        self._paint_playhead(painter)
        painter.setClipping(False)
        self._paint_headers(painter)

    def _paint_ruler(self, painter: QPainter) -> None:
        painter.fillRect(QRectF(0, 0, self.width(), RULER_HEIGHT), QColor(theme.PANEL))
        labels = self.ruler_labels()
        painter.setPen(QColor("#5c6068"))
        if len(labels) > 1:
            step = labels[1][0] - labels[0][0]
            minor = minor_step(step, self.pixels_per_frame)
            if minor:
                start = int(self.first_frame // minor * minor)
                for frame in range(start, int(self.frame_at(self.width())) + minor, minor):
                    x = self.x_of(frame)
                    painter.drawLine(QPointF(x, RULER_HEIGHT - 5), QPointF(x, RULER_HEIGHT))
        for frame, rect, text in labels:
            x = self.x_of(frame)
            painter.setPen(QColor("#8b8e94"))
            painter.drawLine(QPointF(x, 2), QPointF(x, RULER_HEIGHT))
            painter.setPen(QColor(theme.TEXT))
            painter.drawText(rect, Qt.AlignLeft | Qt.AlignVCenter, text)

    def _paint_lanes(self, painter: QPainter) -> None:
        scale = self.pixels_per_frame
        for row, track in enumerate(self.rows()):
            top = RULER_HEIGHT + row * TRACK_HEIGHT
            video = track.kind == "Video"
            painter.fillRect(QRectF(HEADER_WIDTH, top + 1, self.width(), TRACK_HEIGHT - 1), QColor(theme.PANEL))
            colour = theme.VIDEO_CLIP if video else (theme.FOLEY_CLIP if track.name.startswith("Foley")
                                                     else theme.AUDIO_CLIP)
            for clip in track.find_clips():
                place = clip.range_in_parent()
                rect = QRectF(self.x_of(place.start_time.value), top + 2, place.duration.value * scale,
                              TRACK_HEIGHT - 3)
                painter.fillRect(rect, QColor(colour))
                painter.setPen(QColor(colour).lighter(140))
                painter.drawRect(rect.adjusted(0, 0, -1, -1))
                painter.setPen(QColor("#f2f3f5"))
                painter.drawText(rect.adjusted(5, 0, -3, 0), Qt.AlignVCenter | Qt.AlignLeft, clip.name)

    def _paint_selection(self, painter: QPainter) -> None:
        selection = self.model.selection
        if selection is None:
            return
        first = self.x_of(selection.record.start_time.value)
        width = selection.record.duration.value * self.pixels_per_frame
        painter.fillRect(QRectF(first, RULER_HEIGHT, width, self.height()), QColor(240, 180, 41, 45))
        painter.fillRect(QRectF(first, RULER_HEIGHT - 4, width, 4), QColor(theme.SELECTION))
        painter.setPen(QPen(QColor(theme.SELECTION), 1))
        painter.drawLine(QPointF(first, RULER_HEIGHT), QPointF(first, self.height()))
        painter.drawLine(QPointF(first + width, RULER_HEIGHT), QPointF(first + width, self.height()))

    def _paint_playhead(self, painter: QPainter) -> None:
        x = self.x_of(self.playhead)
        painter.setPen(QPen(QColor(theme.PLAYHEAD), 1))
        painter.drawLine(QPointF(x, 0), QPointF(x, self.height()))
        painter.setBrush(QColor(theme.PLAYHEAD))
        painter.drawPolygon(QPolygonF([QPointF(x - 5, 0), QPointF(x + 5, 0), QPointF(x, 7)]))

    def _paint_headers(self, painter: QPainter) -> None:
        painter.fillRect(QRectF(0, 0, HEADER_WIDTH, self.height()), QColor(theme.WINDOW))
        painter.setPen(QColor(theme.DIM_TEXT))
        painter.drawText(QRectF(4, 0, HEADER_WIDTH - 8, RULER_HEIGHT), Qt.AlignVCenter, "Tracks")
        for row, track in enumerate(self.rows()):
            rect = QRectF(0, RULER_HEIGHT + row * TRACK_HEIGHT + 1, HEADER_WIDTH - 2, TRACK_HEIGHT - 1)
            painter.fillRect(rect, QColor(theme.PANEL))
            kind = theme.VIDEO_CLIP if track.kind == "Video" else theme.AUDIO_CLIP
            painter.fillRect(QRectF(0, rect.top(), 3, rect.height()), QColor(kind))
            painter.setPen(QColor(theme.TEXT))
            painter.drawText(rect.adjusted(8, 0, -2, 0), Qt.AlignVCenter | Qt.AlignLeft,
                             painter.fontMetrics().elidedText(track.name, Qt.ElideRight, int(rect.width()) - 10))
