"""The generation row: variants, seed (locked or shuffled), quality and guidance, with Generate and Cancel."""

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QCheckBox, QComboBox, QDoubleSpinBox, QHBoxLayout, QLabel, QPushButton, QSpinBox, QWidget

from ui.panel_model import QUALITY, PanelModel, Settings
from ui.qt_theme import compact


class QtSettings(QWidget):
    """Edits `model.settings` and shows them back; Generate and Cancel ask the model."""

    def __init__(self, model: PanelModel):
        super().__init__()
        self.model = model
        self.variants_spin = QSpinBox()
        self.variants_spin.setRange(1, 16)
        self.seed_spin = QSpinBox()
        self.seed_spin.setRange(0, 2**31 - 1)
        self.lock_seed = QCheckBox("Lock")
        self.shuffle_button = QPushButton("Shuffle")
        self.quality = self._quality_box()
        self.guidance = QDoubleSpinBox()
        self.guidance.setRange(1.0, 20.0)
        self.guidance.setSingleStep(0.5)
        self.generate_button = QPushButton("Generate")
        self.generate_button.setObjectName("primary")
        self.cancel_button = QPushButton("Cancel")
        self._lay_out()
        self.variants_spin.valueChanged.connect(self._set_variants)
        self.seed_spin.valueChanged.connect(self._set_seed)
        self.lock_seed.toggled.connect(self._set_lock_seed)
        self.shuffle_button.clicked.connect(model.shuffle_seed)
        self.quality.currentIndexChanged.connect(self._set_quality)
        self.guidance.valueChanged.connect(self._set_guidance)
        self.generate_button.clicked.connect(model.generate)
        self.cancel_button.clicked.connect(model.cancel)
        model.events.settings.connect(self._update_settings)
        self._update_settings(model.settings)

    @staticmethod
    def _quality_box() -> QComboBox:
        """The qualities in an editor's words; each one's sampler and steps in its tooltip."""
        box = QComboBox()
        recipes = {name: f"{sampling.sampler} sampler, {sampling.steps} steps" for name, sampling in QUALITY.items()}
        for index, (name, recipe) in enumerate(recipes.items()):
            box.addItem(name, name)
            box.setItemData(index, recipe, Qt.ToolTipRole)
        box.setToolTip("\n".join(f"{name}: {recipe}" for name, recipe in recipes.items()))
        return box

    def _lay_out(self) -> None:
        row = compact(QHBoxLayout(self))
        for label, widget in (("Variants", self.variants_spin), ("Seed", self.seed_spin), (None, self.lock_seed),
                              (None, self.shuffle_button), ("Quality", self.quality), ("Guidance", self.guidance)):
            if label:
                row.addWidget(QLabel(label))
            row.addWidget(widget)
        row.addStretch()
        row.addWidget(self.generate_button)
        row.addWidget(self.cancel_button)

    def _set_variants(self, value: int) -> None:
        self.model.update_settings(variants=value)

    def _set_seed(self, value: int) -> None:
        self.model.update_settings(seed=value)

    def _set_lock_seed(self, on: bool) -> None:
        self.model.update_settings(lock_seed=on)

    def _set_quality(self, _index: int) -> None:
        self.model.update_settings(quality=self.quality.currentData())

    def _set_guidance(self, value: float) -> None:
        self.model.update_settings(guidance=value)

    def _update_settings(self, settings: Settings) -> None:
        for widget, value in ((self.variants_spin, settings.variants), (self.seed_spin, settings.seed)):
            widget.blockSignals(True)
            widget.setValue(value)
            widget.blockSignals(False)
        self.lock_seed.setChecked(settings.lock_seed)
        self.guidance.setValue(settings.guidance)
        self.quality.setCurrentIndex(list(QUALITY).index(settings.quality))
