"""The generation row: variants, seed (locked or shuffled), quality and guidance as the chosen model samples them,
with Generate and Cancel."""

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QCheckBox, QComboBox, QDoubleSpinBox, QHBoxLayout, QLabel, QPushButton, QSpinBox, QWidget

from ui.panel_model import QUALITIES, EngineStatus, PanelModel, Settings, recipe
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
        self.quality = QComboBox()
        self.quality.setSizeAdjustPolicy(QComboBox.AdjustToContents)  # "(slow)" comes and goes with the model
        for name in QUALITIES:
            self.quality.addItem(name, name)
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
        model.events.engine.connect(self._update_engine)
        self._update_settings(model.settings)

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

    def _update_engine(self, _engine: EngineStatus) -> None:
        self._update_settings(self.model.settings)

    def _update_qualities(self) -> None:
        """The qualities named and explained for the chosen model: its own samplers, steps and guidance."""
        info = self.model.model_info
        if info is None:
            self.quality.setToolTip("Connect the engine to see how its model samples each quality")
            return
        qualities = info.qualities()
        for index, name in enumerate(QUALITIES):
            self.quality.setItemText(index, info.quality_label(name))
            self.quality.setItemData(index, recipe(qualities[name]), Qt.ToolTipRole)
        self.quality.setToolTip(f"{info.name}:\n" + "\n".join(f"{name}: {recipe(qualities[name])}"
                                                                 for name in QUALITIES))

    def _update_settings(self, settings: Settings) -> None:
        sampling = self.model.sampling
        shown = (self.variants_spin, self.seed_spin, self.guidance, self.quality)
        for widget in shown:
            widget.blockSignals(True)  # showing the model's values is not the user changing them
        self.variants_spin.setValue(settings.variants)
        self.seed_spin.setValue(settings.seed)
        if sampling is not None:
            self.guidance.setValue(sampling.guidance)
        self.quality.setCurrentIndex(QUALITIES.index(settings.quality))
        for widget in shown:
            widget.blockSignals(False)
        self.lock_seed.setChecked(settings.lock_seed)
        self._update_qualities()
        self.guidance.setEnabled(sampling is not None)
        if sampling is None:
            self.guidance.setToolTip("Connect the engine: each model has its own guidance")
        elif settings.guidance is None:
            self.guidance.setToolTip(f"{self.model.model_info.name}'s own guidance; change it to use yours")
        else:
            self.guidance.setToolTip("Your guidance (choosing a model again restores its own)")
