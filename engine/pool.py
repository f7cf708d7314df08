"""The engine pool: `foley serve`'s /v1 API on Ray Serve, in front of engine replicas that each keep a model warm.

    foley pool --shared /mnt/foley-pool --replicas 2              # or, on a running Ray cluster:
    serve run engine.pool:app shared=/mnt/foley-pool replicas=2

Two deployments:
- `EngineReplica`, one per GPU (`num_gpus=1`; CPU replicas on a cluster without GPUs, as in the tests), runs the
  existing job code (`LocalEngine`) one job at a time and streams the job's events back while it runs.
- `PoolIngress`, one replica, serves the very app `foley serve` serves (`create_app`: routes, token, request limits)
  over a `JobRunner` whose engine is the replicas: the same queue, 429 + Retry-After when it is full, job index.

Where results live: a job's progress events, its record and the list of its variants are small and travel as Ray
objects (the items streamed back from the replica). The WAVs and sidecars are written by the replica straight into
the shared folder, where the ingress serves them from and keeps its job index: audio can be hundreds of MB per job,
more than the object store (memory) should hold, and an object lives only as long as the process that owns it,
while a finished result must outlive a replica, the ingress and the whole cluster. Every node mounts the shared
folder at the same path.

Routing: the ingress runs as many jobs at once as there are replicas, and Serve's router sends each run to a replica
with a free slot (`max_ongoing_requests=1`), so every job goes to an idle replica: the least loaded.

Faults: a replica that dies mid-job (its process, its node) has the job run once more on another replica — a seed
is one sound, so the retry writes the same WAVs — and a second loss fails the job with "submit it again". A restarted
ingress reloads its index from the shared folder: finished results are kept, unfinished jobs report "submit it
again", as `foley serve` does after a restart.
"""

import asyncio
import contextlib
import logging
import os
import secrets
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import ray
from ray import serve
from ray.exceptions import RayActorError
from ray.serve.exceptions import ReplicaUnavailableError

from engine.core.generate import JobCancelled
from engine.core.job import JobSpec
from engine.errors import FoleyError
from engine.models import best_installed
from engine.serving.jobs import Job, JobRunner, LocalEngine
from engine.serving.server import create_app

logger = logging.getLogger(__name__)

APP = "foley-pool"
HEARTBEAT_SECONDS = 0.25  # a running replica sends its new events this often; the ingress checks for a cancel then
LOST = (RayActorError, ReplicaUnavailableError)  # the replica's process or node went away mid-run


@dataclass(frozen=True)
class PoolSettings:
    """What a pool is: its shared folder, how many replicas and GPUs each, the limits of `foley serve`."""

    shared: Path
    replicas: int = 1
    gpus: int = 0  # per replica: 1 (one replica per GPU) or 0 (CPU replicas)
    max_queue: int = 8
    max_request_bytes: int = 256 << 20
    model: str | None = None  # the model each replica loads at start; default: the best one installed there
    precision: str = "auto"

    @property
    def token_file(self) -> Path:
        return self.shared / "token"

    @property
    def ingress_file(self) -> Path:
        """Names the ingress now serving: a replica stops the jobs of one that is gone (restarted)."""
        return self.shared / "ingress"

    @property
    def device(self) -> str:
        return "cuda" if self.gpus else "cpu"


def _whole(args: dict, key: str, default: int, low: int) -> int:
    value = default if args.get(key) is None else args[key]
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = low - 1
    if number < low:
        raise FoleyError(f"pool setting '{key}' must be a whole number from {low}; got {value!r}.")
    return number


def cluster_gpus() -> int:
    """GPUs of the Ray cluster this process is connected to; of this machine when it is not connected."""
    if ray.is_initialized():
        return int(ray.cluster_resources().get("GPU", 0))
    import torch

    return torch.cuda.device_count()


def settings_from_args(args: dict) -> PoolSettings:
    """Settings from `serve run engine.pool:app key=value ...` or a Serve config's `args` (values may be text).
    `gpus`: auto (1 per replica when the cluster has GPUs), 1 or 0; `replicas`: default one per GPU, else 1."""
    if not args.get("shared"):
        raise FoleyError("the pool needs 'shared': a folder every node mounts at the same path (results, job "
                         "index and token live there), e.g. shared=/mnt/foley-pool.")
    gpus = args.get("gpus", "auto")
    gpus = (1 if cluster_gpus() else 0) if gpus == "auto" else _whole(args, "gpus", 0, 0)
    if gpus > 1:
        raise FoleyError(f"pool setting 'gpus' is per replica: 1 (one replica per GPU) or 0 (CPU); got {gpus}.")
    replicas = _whole(args, "replicas", max(1, cluster_gpus()) if gpus else 1, 1)
    return PoolSettings(Path(args["shared"]), replicas, gpus, _whole(args, "max_queue", 8, 1),
                        _whole(args, "max_request_mb", 256, 1) << 20, args.get("model") or None,
                        str(args.get("precision", "auto")))


def ensure_token(path: Path) -> str:
    """The pool's token: read from `path`, written there first (0600, random) when there is none yet."""
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        # hex, not base64url: a token must never start with "-", or `foley generate --token X` cannot parse it
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(32) + "\n")
    token = path.read_text().strip()
    if len(token) < 16:
        raise FoleyError(f"the pool token in {path} is shorter than 16 characters; put a long random one there "
                         "(`python -c 'import secrets; print(secrets.token_hex(32))'`).")
    return token


@serve.deployment(max_ongoing_requests=1)
class EngineReplica:
    """One engine: a model kept warm, running one job at a time with the code `foley serve` runs."""

    def __init__(self, settings: PoolSettings):
        self.name = serve.get_replica_context().replica_id.unique_id
        self.ingress_file = settings.ingress_file
        self.engine = LocalEngine(settings.device, settings.precision)
        self.engine.warm(settings.model or best_installed())

    async def run(self, job_id: str, spec: JobSpec, staging: str, ingress: str):
        """Stream {"replica"}, then {"events"} every heartbeat, then the outcome ({"variants", "model"} or
        {"failed"}). A run cancelled by the ingress, or asked for by an ingress that has been replaced since (its
        job is reported interrupted there), stops at the job's next step and leaves no files."""
        job = Job(job_id, {}, time.time())
        yield {"replica": self.name}
        work = asyncio.ensure_future(asyncio.to_thread(self._outcome, job, spec, Path(staging)))
        sent = 0
        try:
            while not work.done() and self._serving(ingress):
                await asyncio.wait({work}, timeout=HEARTBEAT_SECONDS)
                count = len(job.events)
                yield {"events": job.events[sent:count]}
                sent = count
        finally:
            if not work.done() or not self._serving(ingress):
                job.cancel.set()
                await asyncio.wait({work})
                shutil.rmtree(staging, ignore_errors=True)
        if self._serving(ingress):
            yield work.result()

    def _serving(self, ingress: str) -> bool:
        try:
            return self.ingress_file.read_text() == ingress
        except OSError:
            return False

    def _outcome(self, job: Job, spec: JobSpec, staging: Path) -> dict:
        """The run's result as plain data (exceptions do not cross to the ingress as the user should read them)."""
        try:
            return {"variants": self.engine.run(job, spec, staging), "model": self.engine.loaded}
        except JobCancelled:
            return {"cancelled": True}
        except (FoleyError, ValueError) as exc:
            return {"failed": str(exc)}
        except Exception as exc:  # the replica must outlive any one job; the client gets the reason
            logger.exception("job %s crashed on replica %s", job.id, self.name)
            return {"failed": f"internal error: {exc!r}"}


class PoolEngine:
    """The ingress's engine: runs each job on a replica Serve picks, relays its events, retries once elsewhere
    when the replica is lost mid-job."""

    def __init__(self, replicas, settings: PoolSettings, ingress: str):
        self._replicas = replicas.options(stream=True)
        self.device = f"{settings.device} pool of {settings.replicas}"
        self.ingress = ingress
        self.loaded: str | None = None

    def run(self, job: Job, spec: JobSpec, staging: Path) -> list[dict]:
        try:
            return self._attempt(job, spec, staging)
        except LOST:
            first, job.replica = job.replica, None
            shutil.rmtree(staging, ignore_errors=True)
        job.emit("state", state="running", retry=1,
                 error=f"replica {first} stopped mid-job; running the job again on another replica")
        try:
            return self._attempt(job, spec, staging)
        except LOST:
            raise FoleyError(f"Replicas {first} and {job.replica or 'the next one'} both stopped while running this "
                             "job; submit it again.") from None

    def _attempt(self, job: Job, spec: JobSpec, staging: Path) -> list[dict]:
        stream = self._replicas.run.remote(job.id, spec, str(staging), self.ingress)
        for item in stream:
            if job.cancel.is_set():
                stream.cancel()
                raise JobCancelled("cancelled")
            if "replica" in item:
                job.replica = item["replica"]
                job.emit("state", state="running", replica=job.replica)
            for event in item.get("events", ()):
                job.emit(event["event"], **{key: value for key, value in event.items() if key not in ("seq", "event")})
            if "failed" in item:
                raise FoleyError(item["failed"])
            if "cancelled" in item:
                raise JobCancelled("cancelled")
            if "variants" in item:
                self.loaded = item["model"]
                return item["variants"]
        raise FoleyError(f"replica {job.replica} ended the job without a result; submit it again.")


@serve.deployment(num_replicas=1, ray_actor_options={"num_cpus": 0})
@serve.ingress()
class PoolIngress:
    """The single engine's app, with the replicas as its engine; its job index lives in the shared folder."""

    def __init__(self, replicas, settings: PoolSettings):
        self.settings = settings
        ingress = secrets.token_hex(8)
        settings.shared.mkdir(parents=True, exist_ok=True)
        part = settings.ingress_file.with_name(f".{settings.ingress_file.name}.{ingress}")
        part.write_text(ingress)
        os.replace(part, settings.ingress_file)  # from now on, runs the previous ingress asked for stop
        self.runner = JobRunner(settings.shared, PoolEngine(replicas, settings, ingress),
                                max_queue=settings.max_queue, workers=settings.replicas)

    def __serve_build_asgi_app__(self):
        runner = self.runner

        @contextlib.asynccontextmanager
        async def lifespan(app):
            runner.start()
            yield
            await asyncio.to_thread(runner.stop)

        return create_app(runner, ensure_token(self.settings.token_file),
                          max_request_bytes=self.settings.max_request_bytes, lifespan=lifespan)


def build(settings: PoolSettings):
    """The Serve application of `settings` (token created in the shared folder when there is none)."""
    ensure_token(settings.token_file)
    replica = EngineReplica.options(num_replicas=settings.replicas,
                                    ray_actor_options={"num_cpus": 1, "num_gpus": settings.gpus})
    return PoolIngress.bind(replica.bind(settings), settings)


def app(args: dict):
    """`serve run engine.pool:app shared=DIR [replicas=N] [gpus=auto|1|0] [max_queue=8] [max_request_mb=256]
    [model=NAME] [precision=auto]`: the Serve application builder."""
    return build(settings_from_args(args))


def start_pool(settings: PoolSettings, *, host: str = "127.0.0.1", port: int = 8000) -> str:
    """Deploy the pool on the Ray cluster this process is connected to, wait until it answers; its address."""
    serve.start(http_options={"host": host, "port": port})
    serve.run(build(settings), name=APP, route_prefix="/")
    local = "127.0.0.1" if host in ("0.0.0.0", "localhost") else host
    return f"http://{local}:{port}"
