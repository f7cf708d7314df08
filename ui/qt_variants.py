"""The variants list: one group per range they were made for, a row per variant with waveform, sync score and the
prompt it was made with."""

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QColor, QFont, QPainter
from PySide6.QtWidgets import QHeaderView, QTreeWidget, QTreeWidgetItem

from ui import qt_theme as theme
from ui.panel_model import PanelModel, VariantRow, describe_prompt
from ui.qt_audio import QtWaveform

COLUMNS = ("Variant", "Waveform (dBFS)", "Seed", "Sync", "Length", "Prompt")
WAVEFORM_COLUMN = 1
SYNC_COLUMN = 3
PROMPT_COLUMN = 5
PROMPT_WIDTH = 220  # pixels; the whole prompt is in the tooltip
ROW_HEIGHT = 56
NO_SCORE = "—"


def sync_text(variant: VariantRow) -> str:
    """The variant's sync score, or a dash until it has one."""
    return NO_SCORE if variant.sync is None else f"{variant.sync:.2f}"


class QtVariants(QTreeWidget):
    """Groups are the model's `variant_groups()`; choosing a row chooses that variant in the model."""

    def __init__(self, model: PanelModel):
        super().__init__()
        self.model = model
        self.setColumnCount(len(COLUMNS))
        self.setHeaderLabels(COLUMNS)
        self.headerItem().setToolTip(SYNC_COLUMN, "How well the variant's onsets follow the picture's motion "
                                                  "(higher is better); click to put the best first")
        header = self.header()
        header.setStretchLastSection(False)
        for column in range(len(COLUMNS)):
            header.setSectionResizeMode(column, QHeaderView.ResizeToContents)
        header.setSectionResizeMode(WAVEFORM_COLUMN, QHeaderView.Stretch)
        header.setSectionResizeMode(PROMPT_COLUMN, QHeaderView.Interactive)
        self.setColumnWidth(PROMPT_COLUMN, PROMPT_WIDTH)
        self.setColumnHidden(PROMPT_COLUMN, True)  # until a variant was made with a prompt
        header.setSectionsClickable(True)
        header.sectionClicked.connect(self._on_header_clicked)
        self.setRootIsDecorated(False)
        self.setIndentation(0)
        self.setUniformRowHeights(False)
        self.setAlternatingRowColors(False)
        self.currentItemChanged.connect(self._on_current)
        model.events.variants.connect(self._update_variants)
        model.events.chosen.connect(self._update_chosen)

    def _on_header_clicked(self, column: int) -> None:
        if column == SYNC_COLUMN:
            self.model.sort_by_sync()

    def paintEvent(self, event) -> None:
        super().paintEvent(event)
        if self.topLevelItemCount() == 0:
            painter = QPainter(self.viewport())
            painter.setPen(QColor(theme.DIM_TEXT))
            painter.drawText(self.viewport().rect(), Qt.AlignCenter,
                             "Select a range and Generate (Ctrl+G): its variants are listed here")

    def variant_items(self) -> list[QTreeWidgetItem]:
        """The variant rows, group after group."""
        groups = [self.topLevelItem(i) for i in range(self.topLevelItemCount())]
        return [group.child(i) for group in groups for i in range(group.childCount())]

    def item_of(self, index: int) -> QTreeWidgetItem | None:
        """The row showing variant `index`."""
        return next((item for item in self.variant_items() if item.data(0, Qt.UserRole) == index), None)

    def _on_current(self, item: QTreeWidgetItem | None, _previous) -> None:
        index = item.data(0, Qt.UserRole) if item is not None else None
        if index is not None:
            self.model.choose(index)

    def _update_variants(self, variants: list[VariantRow]) -> None:
        self.blockSignals(True)
        self.clear()
        for group in self.model.variant_groups():
            title = (f"{group.label or 'Range'}   {self.model.timecode_range(group.start, group.end)}   ·   "
                     f"{len(group.indices)} variant(s)")
            parent = QTreeWidgetItem(self, [title])
            parent.setFirstColumnSpanned(True)
            parent.setFlags(Qt.ItemIsEnabled)
            bold = QFont(self.font())
            bold.setBold(True)
            parent.setFont(0, bold)
            parent.setForeground(0, QColor(theme.SELECTION))
            for number, index in enumerate(group.indices, 1):
                self._add_row(parent, number, index, variants[index])
            parent.setExpanded(True)
        self.setColumnHidden(PROMPT_COLUMN, not any(variant.prompt for variant in variants))
        self.blockSignals(False)
        if self.model.chosen is not None:
            self._update_chosen(self.model.chosen)

    def _add_row(self, parent: QTreeWidgetItem, number: int, index: int, variant: VariantRow) -> None:
        prompt = describe_prompt(variant.prompt)
        item = QTreeWidgetItem(parent, [f"Take {number}", "", str(variant.seed), sync_text(variant),
                                        f"{float(variant.duration):.2f} s", prompt])
        item.setData(0, Qt.UserRole, index)
        item.setToolTip(0, f"{variant.wav}\n{variant.recipe}")
        item.setToolTip(PROMPT_COLUMN, prompt)
        item.setSizeHint(WAVEFORM_COLUMN, QSize(200, ROW_HEIGHT))
        for column in (2, 3, 4):
            item.setTextAlignment(column, Qt.AlignRight | Qt.AlignVCenter)
        self.setItemWidget(item, WAVEFORM_COLUMN, QtWaveform(variant.peaks))

    def _update_chosen(self, index: int) -> None:
        for row in self.variant_items():
            waveform = self.itemWidget(row, WAVEFORM_COLUMN)
            waveform.selected = row.data(0, Qt.UserRole) == index
            waveform.update()
        item = self.item_of(index)
        if item is not None and self.currentItem() is not item:
            self.blockSignals(True)  # the model already knows: do not choose it again
            self.setCurrentItem(item)
            self.blockSignals(False)
