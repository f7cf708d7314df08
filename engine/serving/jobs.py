"""The engine's job queue: worker threads run jobs in order on an engine that keeps its model warm (one
`LocalEngine` thread for `foley serve`, one per replica for the pool in `engine.pool`); results live in a cache
directory whose index survives restarts. No HTTP here (see `engine.serving.server`)."""

import json
import logging
import math
import os
import shutil
import threading
import time
import uuid
from collections import deque
from dataclasses import asdict
from pathlib import Path
from typing import Protocol

from engine.core.generate import JobCancelled
from engine.core.job import JobSpec, check_spec, run_job
from engine.errors import FoleyError
from engine.models import Components, open_model, resolve_device
from engine.progress import StepInfo
from engine.serving.client import FINAL_STATES

logger = logging.getLogger(__name__)

INDEX_FORMAT = "FoleyJobIndex.1"
INTERRUPTED = "The engine stopped before this job finished; submit it again."


class QueueFull(FoleyError):
    """The queue holds as many jobs as it may; try again after `retry_after` seconds."""

    def __init__(self, message: str, retry_after: int):
        super().__init__(message)
        self.retry_after = retry_after


class UnknownJob(FoleyError):
    """No job with that id exists (it was never submitted, or its results were deleted)."""


class JobNotDone(FoleyError):
    """The job's results were asked for before it finished."""


class Job:
    """One job's state. The worker thread writes it; request handlers read it."""

    def __init__(self, job_id: str, params: dict, created: float, spec: JobSpec | None = None):
        self.id = job_id
        self.params = params
        self.created = created
        self.spec = spec  # dropped once the job has run, so frames do not stay in memory
        self.state = "queued"
        self.error: str | None = None
        self.started: float | None = None
        self.finished: float | None = None
        self.replica: str | None = None  # which pool replica ran it (None on a single engine)
        self.variants: list[dict] = []
        self.events: list[dict] = []
        self.cancel = threading.Event()

    def emit(self, event: str, **fields) -> None:
        """Append an event; `seq` numbers them from 0 so a reader can resume after the last one it saw."""
        self.events.append({"seq": len(self.events), "event": event, **fields})

    def record(self) -> dict:
        return {
            "id": self.id,
            "state": self.state,
            "error": self.error,
            "params": self.params,
            "created": self.created,
            "started": self.started,
            "finished": self.finished,
            "variants": self.variants,
            "replica": self.replica,
        }

    @classmethod
    def from_record(cls, record: dict) -> "Job":
        job = cls(record["id"], record["params"], record["created"])
        job.state, job.error = record["state"], record["error"]
        job.started, job.finished, job.variants = record["started"], record["finished"], record["variants"]
        job.replica = record.get("replica")
        if job.state not in FINAL_STATES:
            job.state, job.error = "failed", INTERRUPTED
        job.emit(job.state, error=job.error)
        return job


class Engine(Protocol):
    """What runs a job for a `JobRunner`: writes its WAVs and sidecars into `staging`, reports progress with
    `job.emit("progress", ...)`, stops at `job.cancel` (raising `JobCancelled`) and returns the variants' records."""

    device: str

    @property
    def loaded(self) -> str | None: ...

    def run(self, job: Job, spec: JobSpec, staging: Path) -> list[dict]: ...


class LocalEngine:
    """Runs jobs in this process and keeps one model warm; loading another releases the previous one first
    (bounded memory). One job at a time."""

    def __init__(self, device: str = "auto", precision: str = "auto"):
        self.device, self.precision = resolve_device(device), precision
        self._loaded: Components | None = None

    @property
    def loaded(self) -> str | None:
        return self._loaded.name if self._loaded else None

    def run(self, job: Job, spec: JobSpec, staging: Path) -> list[dict]:
        def report(info: StepInfo) -> None:
            job.emit("progress", **asdict(info))

        components = self.warm(spec.model, report, len(spec.seeds))
        result = run_job(spec, components, staging, report=report, cancel=job.cancel)
        scores = [json.loads(path.with_suffix(".json").read_text())["sync_score"] for path in result.wavs]
        made = [(layer, generation, variant) for layer, generation in enumerate(result.generations, start=1)
                for variant in generation.variants]
        return [
            {"number": n, "seed": variant.seed, "wav": path.name, "json": path.with_suffix(".json").name,
             "samples": len(variant.audio), "sample_rate": generation.sample_rate, "sync_score": score,
             "layer": layer, "prompt": generation.prompt.text}
            for n, ((layer, generation, variant), path, score) in enumerate(zip(made, result.wavs, scores), start=1)
        ]

    def warm(self, name: str, report=None, variants: int = 1) -> Components:
        """The model `name`, loaded once and kept."""
        if self._loaded is None or self._loaded.name != name:
            if report is not None:
                report(StepInfo("load", 0, 1, 0, variants))
            self._loaded = None
            self._loaded = open_model(name, self.device, self.precision)
            if report is not None:
                report(StepInfo("load", 1, 1, 0, variants))
        return self._loaded


class JobRunner:
    """A bounded queue of jobs and the worker threads that run them on `engine`, `workers` at a time."""

    def __init__(self, cache_dir: Path, engine: Engine, *, max_queue: int = 8, keep: int = 200, workers: int = 1):
        self.engine = engine
        self.cache_dir = cache_dir
        self.results = cache_dir / "jobs"
        self.index_path = cache_dir / "index.json"
        self.max_queue = max_queue
        self.keep = keep
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._queue: deque[Job] = deque()
        self._jobs: dict[str, Job] = {}
        self._running: list[Job] = []
        self._durations: deque[float] = deque(maxlen=10)
        self._stopping = False
        self._restore()
        self._threads = [threading.Thread(target=self._work, name=f"foley-worker-{n}", daemon=True)
                         for n in range(workers)]

    # -- requests (any thread) ------------------------------------------------------------------------------

    @property
    def device(self) -> str:
        return self.engine.device

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        """Cancel the running jobs, stop the workers, and mark queued jobs as interrupted."""
        with self._wake:
            self._stopping = True
            for job in self._running:
                job.cancel.set()
            self._wake.notify_all()
        for thread in self._threads:
            thread.join(timeout=60)

    def submit(self, spec: JobSpec) -> Job:
        """Validate and queue a job, or raise `QueueFull` / a clear input error."""
        check_spec(spec)
        with self._wake:
            if len(self._queue) >= self.max_queue:
                raise QueueFull(
                    f"The engine queue is full ({self.max_queue} jobs waiting); try again in a moment.",
                    self._retry_after(),
                )
            job = Job(uuid.uuid4().hex, spec.params(), time.time(), spec)
            job.emit("state", state="queued", position=len(self._queue) + 1)
            self._queue.append(job)
            self._jobs[job.id] = job
            self._save_index()
            self._wake.notify_all()
        logger.info("queued job %s (%s)", job.id, job.params["input"])
        return job

    def get(self, job_id: str) -> Job:
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None:
            raise UnknownJob(f"No job '{job_id}' on this engine (never submitted, or its results were deleted).")
        return job

    def jobs(self) -> list[Job]:
        with self._lock:
            return list(self._jobs.values())

    def cancel(self, job_id: str) -> Job:
        """Cancel a queued job at once, or a running one at its next step; finished jobs are left as they are."""
        job = self.get(job_id)
        with self._wake:
            if job.state == "queued":
                self._queue.remove(job)
                self._finish(job, "cancelled")
            elif job.state == "running":
                job.cancel.set()
        return job

    def delete(self, job_id: str) -> None:
        """Cancel the job if needed and remove it and its files."""
        job = self.cancel(job_id)
        with self._lock:
            if job.state == "running":
                raise JobNotDone(f"Job {job_id} is stopping; delete it once its state is 'cancelled'.")
            self._jobs.pop(job_id, None)
            shutil.rmtree(self.results / job_id, ignore_errors=True)
            self._save_index()

    def result_file(self, job_id: str, number: int, kind: str) -> Path:
        job = self.get(job_id)
        if job.state != "done":
            raise JobNotDone(f"Job {job_id} is {job.state}; its variants exist only once it is done.")
        for item in job.variants:
            if item["number"] == number:
                return self.results / job_id / item[kind]
        raise UnknownJob(f"Job {job_id} has variants 1 to {len(job.variants)}; there is no variant {number}.")

    def status(self) -> dict:
        with self._lock:
            return {
                "queued": len(self._queue),
                "max_queue": self.max_queue,
                "running": self._running[0].id if self._running else None,
                "running_jobs": len(self._running),
                "workers": len(self._threads),
                "model_loaded": self.engine.loaded,
            }

    # -- worker thread --------------------------------------------------------------------------------------

    def _work(self) -> None:
        while True:
            with self._wake:
                while not self._queue and not self._stopping:
                    self._wake.wait()
                if self._stopping:
                    return
                job = self._queue.popleft()
                self._running.append(job)
                job.state, job.started = "running", time.time()
                job.emit("state", state="running")
                self._save_index()
            try:
                self._run(job)
            finally:
                with self._lock:
                    self._running.remove(job)

    def _run(self, job: Job) -> None:
        spec, job.spec = job.spec, None
        staging = self.results / f".{job.id}.part"
        try:
            job.variants = self.engine.run(job, spec, staging)
            os.replace(staging, self.results / job.id)
            state, error = "done", None
        except JobCancelled:
            state, error = "cancelled", None
        except (FoleyError, ValueError) as exc:
            state, error = "failed", str(exc)
        except Exception as exc:  # the worker must outlive any one job; the client gets the reason
            logger.exception("job %s crashed", job.id)
            state, error = "failed", f"internal error: {exc!r}"
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        with self._lock:
            self._finish(job, state, error)

    # -- bookkeeping (call with the lock held) --------------------------------------------------------------

    def _finish(self, job: Job, state: str, error: str | None = None) -> None:
        job.state, job.error, job.finished = state, error, time.time()
        if state == "done" and job.started is not None:
            self._durations.append(job.finished - job.started)
        job.emit(state, error=error)
        self._prune()
        self._save_index()
        logger.info("job %s %s%s", job.id, state, f": {error}" if error else "")

    def _retry_after(self) -> int:
        """Seconds until a place frees up: the recent time per job times the rounds of `workers` jobs ahead."""
        per_job = sum(self._durations) / len(self._durations) if self._durations else 5.0
        return max(1, math.ceil(per_job * math.ceil((len(self._queue) + 1) / len(self._threads))))

    def _prune(self) -> None:
        finished = [job for job in self._jobs.values() if job.state in FINAL_STATES]
        for job in finished[: max(0, len(finished) - self.keep)]:
            del self._jobs[job.id]
            shutil.rmtree(self.results / job.id, ignore_errors=True)

    def _save_index(self) -> None:
        """Write the index atomically: a crash leaves the previous index or the new one, never half of one."""
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        data = {"format": INDEX_FORMAT, "jobs": [job.record() for job in self._jobs.values()]}
        tmp = self.index_path.with_name(f".{self.index_path.name}.part")
        with open(tmp, "w") as handle:
            json.dump(data, handle, indent=1)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.index_path)

    def _restore(self) -> None:
        """Reload finished jobs; jobs that were queued or running when the engine stopped become failed."""
        self.results.mkdir(parents=True, exist_ok=True)
        for leftover in self.results.glob(".*.part"):
            shutil.rmtree(leftover, ignore_errors=True)
        if not self.index_path.is_file():
            return
        try:
            data = json.loads(self.index_path.read_text())
            records = data["jobs"] if data.get("format") == INDEX_FORMAT else []
        except (OSError, ValueError, KeyError) as exc:
            backup = self.index_path.with_name(f"index.unreadable-{int(time.time())}.json")
            os.replace(self.index_path, backup)
            logger.warning("job index unreadable (%s); kept it as %s and started a new one", exc, backup)
            return
        for record in records:
            job = Job.from_record(record)
            if job.state == "done" and not (self.results / job.id).is_dir():
                continue
            self._jobs[job.id] = job
        self._save_index()
