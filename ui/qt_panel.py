"""The Foley Desk window: the top bar, timeline, transport, model and prompt, settings, variants, jobs and audition
composed over one `PanelModel`, with the engine worker on its own thread, dark like the editors it sits next to."""

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Qt, QThread, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import QApplication, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from engine.serving.client import EngineClient
from ui.panel_model import GenerateRequest, PanelModel
from ui.player import Player
from ui.qt_audition import QtAudition
from ui.qt_compat import keep_none_alive
from ui.qt_jobs import QtJobs
from ui.qt_prompt import QtPrompt
from ui.qt_settings import QtSettings
from ui.qt_theme import SPACING, apply_dark_theme
from ui.qt_timeline import QtTimeline
from ui.qt_top_bar import QtTopBar
from ui.qt_transport import QtTransport
from ui.qt_variants import QtVariants
from ui.worker import EngineWorker


def with_key(text: str, keys: QKeySequence) -> str:
    """A tooltip that names its shortcut the way the platform writes it."""
    return f"{text} ({keys.toString(QKeySequence.NativeText)})"


def section(title: str) -> QLabel:
    """A column's small upper-case heading."""
    label = QLabel(title)
    label.setObjectName("section")
    return label


class QtFoleyPanel(QWidget):
    """The Foley Desk panel: one widget per part of the window, each a view of `model`.

    Args:
        model: the panel's state; every widget connects to its events.
        connect: makes the engine client, called on the worker thread (at start and on Reconnect).
        player_factory: makes the audition player on the first Play (it may raise `AudioUnavailable`).
    """

    request_job = Signal(object)
    request_connect = Signal()

    def __init__(self, model: PanelModel, connect: Callable[[], EngineClient], player_factory: Callable[[], Player]):
        super().__init__()
        keep_none_alive()
        apply_dark_theme(QApplication.instance())
        self.model = model
        self.setWindowTitle("Foley Desk")
        self.top_bar = QtTopBar(model)
        self.timeline = QtTimeline(model)
        self.transport = QtTransport(model)
        self.prompt = QtPrompt(model)
        self.settings = QtSettings(model)
        self.variants = QtVariants(model)
        self.jobs = QtJobs(model)
        self.audition = QtAudition(model, player_factory)
        self.message = QLabel("")
        self.message.setWordWrap(True)
        self.hints = QLabel("")
        self.hints.setObjectName("hint")
        self._lay_out()
        self._name_controls()
        self._start_worker(connect)
        model.events.message.connect(self._show_message)
        model.events.generate_requested.connect(self.request_job.emit)
        model.events.cancel_requested.connect(self.worker.cancel)
        self.top_bar.reconnect.connect(self.request_connect)
        self._shortcuts()
        self.request_connect.emit()

    # -- construction -----------------------------------------------------------------------------------------

    def _lay_out(self) -> None:
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 8, 6)
        layout.setSpacing(SPACING)
        layout.addWidget(self.top_bar)
        layout.addWidget(self.timeline)
        layout.addWidget(self.transport)
        layout.addWidget(self.prompt)
        layout.addWidget(self.settings)
        lists = QVBoxLayout()
        for title, widget, stretch in (("Variants", self.variants, 1), ("Jobs", self.jobs, 0)):
            lists.addWidget(section(title))
            lists.addWidget(widget, stretch)
        lower = QHBoxLayout()
        lower.addLayout(lists, 1)
        lower.addWidget(self.audition)
        layout.addLayout(lower, 1)
        layout.addWidget(self.message)
        layout.addWidget(self.hints)
        self.resize(1180, 760)

    def _name_controls(self) -> None:
        """The controls scripts and tests drive, under the panel's own names (as when it was one class)."""
        self.open_button, self.engine_label = self.top_bar.open_button, self.top_bar.engine_label
        self.timecode_label, self.selection_label = self.transport.timecode_label, self.transport.selection_label
        self.model_box, self.prompt_edit = self.prompt.model_box, self.prompt.prompt_edit
        self.negative_edit = self.prompt.negative_edit
        self.variants_spin, self.quality_box = self.settings.variants_spin, self.settings.quality
        self.generate_button, self.cancel_button = self.settings.generate_button, self.settings.cancel_button
        self.picture, self.play_button = self.audition.picture, self.audition.play_button
        self.place_button, self.undo_button = self.audition.place_button, self.audition.undo_button

    def _start_worker(self, connect: Callable[[], EngineClient]) -> None:
        """The engine worker on its own thread; requests reach it queued, its answers reach the model queued."""
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

    def _shortcuts(self) -> None:
        """Each key once: it makes the shortcut, names itself in its button's tooltip and in the hint line."""
        audition = self.audition
        table = (
            (Qt.Key_Space, audition.toggle_play, "play/stop", self.play_button, "Play or stop the chosen variant"),
            (Qt.Key_Up, self._choose_previous, "previous", None, None),
            (Qt.Key_Down, self._choose_next, "next (A/B)", None, None),
            (Qt.Key_L, audition.loop_box.toggle, "loop", audition.loop_box, "Loop the range"),
            (Qt.Key_Return, self.model.place, "place", self.place_button,
             "Place the chosen variant at the range it was made for"),
            (Qt.Key_Enter, self.model.place, None, None, None),
            (QKeySequence.Undo, self.model.undo_place, "undo place", self.undo_button,
             "Restore the project from the backup the last placement made"),
            (Qt.CTRL | Qt.Key_G, self.model.generate, "generate", self.generate_button,
             "Generate variants for the selection"),
            (Qt.Key_Escape, self.model.cancel, "cancel", self.cancel_button, "Cancel the running job"),
            (QKeySequence.Open, self.top_bar.open_project, "open", self.open_button, "Open an editor's project file"),
            (Qt.CTRL | Qt.Key_E, audition.export_stems, "export", audition.export_button,
             "Export stems at a loudness target"),
        )
        hints = []
        for keys, slot, hint, button, tooltip in table:
            sequence = QKeySequence(keys)
            shortcut = QShortcut(sequence, self)
            shortcut.setContext(Qt.WidgetWithChildrenShortcut)
            shortcut.activated.connect(slot)
            if button is not None:
                button.setToolTip(with_key(tooltip, sequence))
            if hint:
                hints.append(f"{sequence.toString(QKeySequence.NativeText)} {hint}")
        self.hints.setText("   ·   ".join(hints))

    def toggle_play(self) -> None:
        """Play or stop the chosen variant (Space)."""
        self.audition.toggle_play()

    def _choose_previous(self) -> None:
        self.model.choose_next(-1)

    def _choose_next(self) -> None:
        self.model.choose_next(1)

    # -- worker -> model (GUI thread) ---------------------------------------------------------------------------

    def _on_status(self, status: dict) -> None:
        self.model.set_engine(status)

    def _on_submitted(self, key: int, engine_id: str) -> None:
        self.model.job_submitted(key, engine_id)

    def _on_event(self, key: int, event: dict) -> None:
        self.model.job_event(key, event)

    def _on_finished(self, key: int, request: GenerateRequest, paths: list[Path]) -> None:
        self.model.job_finished(key, request, paths)

    def _on_failed(self, key: int, message: str, state: str) -> None:
        self.model.job_failed(key, message, state)

    # -- model -> view ----------------------------------------------------------------------------------------

    def _show_message(self, text: str | None) -> None:
        self.message.setText(text or "")

    def closeEvent(self, event) -> None:
        self.audition.shut_down()
        self._thread.quit()
        self._thread.wait(5000)
        super().closeEvent(event)
