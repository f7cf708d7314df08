"""Work off the GUI thread: the one engine worker thread (connect, run jobs in order) and preview decoding."""

import logging
from fractions import Fraction
from functools import partial
from pathlib import Path

import numpy as np
from PIL import Image
from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal, Slot

from engine.errors import InputVideoError
from engine.serving.client import EngineClient, EngineError, JobCancelled
from engine.video import EditSpan, decode_edit
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
                                           guidance=request.guidance, sampler=request.sampler,
                                           spacing=request.spacing, prompt=request.prompt.text,
                                           negative_prompt=request.prompt.negative)
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
        """Ask the engine to cancel a job from a pool thread: `run` blocks this worker's thread while the job runs,
        and the GUI must not wait on the network (each call is a plain HTTP request on its own connection)."""
        if self._client is not None:
            QThreadPool.globalInstance().start(partial(cancel_job, self._client, engine_id))


def cancel_job(client: EngineClient, engine_id: str) -> None:
    """Cancel one engine job; a job that ended meanwhile is only logged, as the worker reports its end anyway."""
    try:
        client.cancel(engine_id)
    except EngineError as exc:
        logger.warning("Could not cancel job %s: %s", engine_id, exc)


PREVIEW_FPS = 12
PREVIEW_SIZE = (320, 180)


def letterbox(image: Image.Image, width: int = PREVIEW_SIZE[0], height: int = PREVIEW_SIZE[1]) -> np.ndarray:
    """Fit a picture inside width x height on black, keeping its aspect ratio (the preview's frames)."""
    image = image.convert("RGB")
    scale = min(width / image.width, height / image.height)
    resized = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))), Image.BILINEAR)
    canvas = Image.new("RGB", (width, height))
    canvas.paste(resized, ((width - resized.width) // 2, (height - resized.height) // 2))
    return np.asarray(canvas)


def decode_preview(request: GenerateRequest) -> np.ndarray:
    """The request's range as letterboxed RGB frames at PREVIEW_FPS (blocking: call it off the GUI thread)."""
    spans = [EditSpan(Path(s["media"]), Fraction(s["record_start"]), Fraction(s["record_end"]),
                      Fraction(s["source_start"])) for s in request.edit]
    return decode_edit(spans, request.start, request.end, rate=PREVIEW_FPS, fit=letterbox).rgb


def preview_frame(frames: np.ndarray, seconds: Fraction) -> np.ndarray:
    """The preview frame showing at `seconds` into its range (the last one past its end)."""
    return frames[min(len(frames) - 1, int(seconds * PREVIEW_FPS))]


class _PreviewJob(QRunnable):
    """One decode on a pool thread; it reports through the decoder's queued signals, never touching widgets."""

    def __init__(self, decoder: "PreviewDecoder", request: GenerateRequest):
        super().__init__()
        self._decoder, self._request = decoder, request

    def run(self) -> None:
        try:
            frames = decode_preview(self._request)
        except InputVideoError as exc:  # its message names the file and the fix
            self._decoder.undecodable.emit(self._request.key, f"No preview: {exc}")
            return
        self._decoder.decoded.emit(self._request.key, frames)


class PreviewDecoder(QObject):
    """Decodes each request's preview once in a thread pool and keeps it; `ready` and `failed` are emitted on the
    decoder's (GUI) thread."""

    ready = Signal(int)  # request key: `frames` now returns its preview
    failed = Signal(int, str)  # request key, message
    decoded = Signal(int, object)  # from a pool thread: request key, frames (n, h, w, 3) uint8
    undecodable = Signal(int, str)  # from a pool thread: request key, message

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)  # one decode at a time leaves the second core to the engine
        self._frames: dict[int, np.ndarray] = {}
        self._asked: set[int] = set()
        # the decoder lives on the GUI thread, so Qt queues these pool-thread signals onto it
        self.decoded.connect(self._keep)
        self.undecodable.connect(self._give_up)

    def frames(self, request: GenerateRequest) -> np.ndarray | None:
        """The request's preview if it is decoded; else None, and decoding starts unless it is on its way."""
        frames = self._frames.get(request.key)
        if frames is None and request.key not in self._asked:
            self._asked.add(request.key)
            self._pool.start(_PreviewJob(self, request))
        return frames

    def _keep(self, key: int, frames: np.ndarray) -> None:
        self._asked.discard(key)
        self._frames[key] = frames
        self.ready.emit(key)

    def _give_up(self, key: int, message: str) -> None:
        self._asked.discard(key)  # the next frame shown asks again
        self.failed.emit(key, message)

    def wait(self) -> None:
        """Block until running decodes end (closing the window)."""
        self._pool.waitForDone()
