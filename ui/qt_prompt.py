"""The model row: which of the engine's models generates, and the selected range's prompt and negative prompt
(enabled only for a model that takes text; otherwise the fields say why)."""

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QLineEdit, QWidget

from ui.panel_model import EngineStatus, PanelModel, Settings
from ui.qt_theme import compact

PROMPT_HINT = "Describe the sound, e.g. footsteps on gravel"
NEGATIVE_HINT = "Steer away from, e.g. music, speech"
MAX_PROMPT = 1000  # characters, as the engine accepts


class QtPrompt(QWidget):
    """Shows the engine's models and `model.prompt`; edits go to `model.choose_model` and `model.set_prompt`."""

    def __init__(self, model: PanelModel):
        super().__init__()
        self.model = model
        self.model_box = QComboBox()
        self.model_box.setMinimumContentsLength(18)
        self.model_box.setSizeAdjustPolicy(QComboBox.AdjustToMinimumContentsLengthWithIcon)
        self.prompt_edit = QLineEdit()
        self.negative_edit = QLineEdit()
        for edit in (self.prompt_edit, self.negative_edit):
            edit.setMaxLength(MAX_PROMPT)
            edit.setClearButtonEnabled(True)
        self._lay_out()
        self.model_box.activated.connect(self._on_model_chosen)
        self.prompt_edit.textEdited.connect(self._on_prompt_edited)
        self.negative_edit.textEdited.connect(self._on_negative_edited)
        model.events.engine.connect(self._update_engine)
        model.events.settings.connect(self._update_settings)
        model.events.selection.connect(self._update_prompt)
        model.events.prompt.connect(self._update_prompt)
        self._update_engine(model.engine)

    def _lay_out(self) -> None:
        row = compact(QHBoxLayout(self))
        row.addWidget(QLabel("Model"))
        row.addWidget(self.model_box)
        row.addWidget(QLabel("Prompt"))
        row.addWidget(self.prompt_edit, 3)
        row.addWidget(QLabel("Negative"))
        row.addWidget(self.negative_edit, 2)

    # -- view -> model ----------------------------------------------------------------------------------------

    def _on_model_chosen(self, index: int) -> None:
        self.model.choose_model(self.model_box.itemData(index))

    def _on_prompt_edited(self, text: str) -> None:
        self.model.set_prompt(text=text)

    def _on_negative_edited(self, text: str) -> None:
        self.model.set_prompt(negative=text)

    # -- model -> view ----------------------------------------------------------------------------------------

    def _update_engine(self, engine: EngineStatus) -> None:
        self.model_box.clear()
        for info in engine.models:
            text = "takes a text prompt" if info.takes_text else "takes no text: the picture alone"
            self.model_box.addItem(f"{info.name} · {info.family}", info.name)
            self.model_box.setItemData(self.model_box.count() - 1, f"{text}\n{'; '.join(info.licences)}",
                                       Qt.ToolTipRole)
        self.model_box.setEnabled(bool(engine.models))
        self._update_settings(self.model.settings)

    def _update_settings(self, _settings: Settings) -> None:
        info = self.model.model_info
        index = self.model_box.findData(info.name) if info is not None else -1
        self.model_box.setCurrentIndex(index)
        self.model_box.setToolTip(self.model_box.itemData(index, Qt.ToolTipRole) if index >= 0 else
                                  "Connect the engine to choose one of its models")
        self._update_prompt()

    def _update_prompt(self, _=None) -> None:
        """The range's prompt when the fields take text; else empty fields, the first saying why (once is enough)."""
        field, prompt = self.model.prompt_field(), self.model.prompt
        shown = ((self.prompt_edit, PROMPT_HINT, field.reason, prompt.text),
                 (self.negative_edit, NEGATIVE_HINT, "", prompt.negative))
        for edit, hint, reason, text in shown:
            edit.setEnabled(field.enabled)
            edit.setToolTip(hint if field.enabled else field.reason)
            edit.setPlaceholderText(hint if field.enabled else reason)
            text = text if field.enabled else ""
            if edit.text() != text:  # the user's own typing comes back unchanged: keep the cursor where it is
                edit.setText(text)
