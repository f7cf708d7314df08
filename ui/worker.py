"""The one worker thread that talks to the engine: connect, run jobs in order, report back with signals."""

import logging

from PySide6.QtCore import QObject, Signal, Slot

from engine.client import EngineClient, EngineError, JobCancelled
from ui.panel_model import GenerateRequest

logger = logging.getLogger(__name__)


class EngineWorker(QObject):
    """Lives in a QThread; its slots block that thread, never the GUI."""

    status = Signal(dict)  # {"health": ..., "models": ...} or {"error": message}
    submitted = Signal(int, str)  # job key, engine job id
    event = Signal(int, dict)  # job key, engine event
    finished = Signal(int, object, list)  # job key, request, WAV paths
    failed = Signal(int, str, str)  # job key, message, state

    def __init__(self, connect):
        super().__init__()
        self._connect = connect  # () -> EngineClient
        self._client: EngineClient | None = None

    @Slot()
    def connect_engine(self) -> None:
        try:
            self._client = self._connect()
            self.status.emit({"health": self._client.health(), "models": self._client.models()})
        except EngineError as exc:
            self._client = None
            self.status.emit({"error": str(exc)})

    @Slot(object)
    def run(self, request: GenerateRequest) -> None:
        if self._client is None:
            self.failed.emit(request.key, "The engine is not connected; press Reconnect.", "failed")
            return
        try:
            job = self._client.submit_edit(request.edit, str(request.start), str(request.end), seeds=request.seeds,
                                           source=request.source, model=request.model, steps=request.steps,
                                           guidance=request.guidance, sampler=request.sampler)
            self.submitted.emit(request.key, job["id"])
            self._client.wait(job["id"], on_event=lambda event: self.event.emit(request.key, event))
            paths = self._client.download(job["id"], request.output)
        except JobCancelled as exc:
            self.failed.emit(request.key, str(exc), "cancelled")
            return
        except EngineError as exc:
            self.failed.emit(request.key, str(exc), "failed")
            return
        self.finished.emit(request.key, request, paths)

    def cancel(self, engine_id: str) -> None:
        """Called from the GUI thread while `run` waits; a plain HTTP call on its own connection."""
        if self._client is not None:
            self._client.cancel(engine_id)
