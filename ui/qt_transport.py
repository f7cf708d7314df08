"""The transport row: the playhead's timecode and what is selected."""

from PySide6.QtWidgets import QHBoxLayout, QLabel, QWidget

from editor_plugin.contract import Selection
from ui.panel_model import PanelModel, timecode
from ui.qt_theme import compact, monospace

NO_SELECTION = "Click a video clip or drag a range"


class QtTransport(QWidget):
    """The playhead as HH:MM:SS:FF at the timeline's rate, and the selection's range, length and shots."""

    def __init__(self, model: PanelModel):
        super().__init__()
        self.model = model
        self.timecode_label = QLabel(timecode(0, 25))
        self.timecode_label.setObjectName("timecode")
        self.timecode_label.setFont(monospace(15))
        self.timecode_label.setToolTip("Playhead (HH:MM:SS:FF at the timeline's rate)")
        self.selection_label = QLabel(NO_SELECTION)
        row = compact(QHBoxLayout(self))
        row.addWidget(self.timecode_label)
        row.addSpacing(8)
        row.addWidget(self.selection_label, 1)
        model.events.selection.connect(self._update_selection)
        model.events.playhead.connect(self._update_playhead)

    def _update_selection(self, selection: Selection | None) -> None:
        if selection is None:
            self.selection_label.setText(NO_SELECTION)
            return
        start, end = selection.range_seconds()
        self.selection_label.setText(f"Selection '{selection.label}': {self.model.timecode_range(start, end)} "
                                     f"({float(end - start):.2f} s, {len(selection.spans)} shot(s))")

    def _update_playhead(self, frame: float) -> None:
        self.timecode_label.setText(timecode(frame, self.model.rate()))
