"""The export dialog: loudness target, true-peak ceiling and folder for a stem package."""

from pathlib import Path

from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QWidget,
)

from export.stems import LOUDNESS_PRESETS


class QtExportDialog(QDialog):
    """Loudness target, true-peak ceiling and folder for the stems."""

    def __init__(self, folder: Path, parent: QWidget | None = None):
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
