"""The engine server: a token-protected HTTP API on loopback in front of one `JobRunner`.

Routes (all under /v1; every route but /v1/health needs `Authorization: Bearer <token>`):
  GET  /health                         device, free memory, queue length (no token)
  GET  /models                         installed models with frame rate, window and licences
  POST /jobs                           JSON {media, start, end, seeds, ...} (local clients), or
                                       application/vnd.foley.frames: one JSON header line, then uint8 RGB frames
  POST /uploads                        frames sent ahead of their job, a window at a time (the header's
                                       "upload" continues one; the job's header names it): any length fits
  GET  /jobs, /jobs/{id}               job records
  GET  /jobs/{id}/events               Server-Sent Events: state, progress, then done | failed | cancelled
  POST /jobs/{id}/cancel               cancel; DELETE /jobs/{id} removes a job and its files
  GET  /jobs/{id}/variants/{n}.wav     a variant's audio; .json its sidecar
  POST /shutdown                       stop the engine cleanly (the running job is cancelled), as Ctrl+C does
"""

import asyncio
import contextlib
import hmac
import ipaddress
import json
import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, replace
from fractions import Fraction
from pathlib import Path

import numpy as np
import platformdirs
import torch
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from engine import __version__
from engine.config import LEVEL_MODES, LevelMode, Prompt, SamplingConfig
from engine.core.job import JobSpec
from engine.errors import FoleyError
from engine.models import EMBEDDED, best_installed, family_name, list_models, model_config, model_family, model_manifest
from engine.serving.client import (
    API,
    DISCOVERY_FORMAT,
    FINAL_STATES,
    FRAMES_CONTENT_TYPE,
    FRAMES_FORMAT,
    EngineClient,
    discovery_path,
    read_discovery,
)
from engine.serving.jobs import JobNotDone, JobRunner, LocalEngine, QueueFull, UnknownJob
from engine.video import EditSpan, Frames, fit_frames

logger = logging.getLogger(__name__)

MAX_SIDE = 8192
MAX_PROMPT = 1000  # characters
EVENT_POLL_SECONDS = 0.05
HEARTBEAT_SECONDS = 10.0
HEADER_LIMIT = 1 << 20


class RequestTooLarge(FoleyError):
    """The request body is larger than the engine accepts."""


def default_cache_dir() -> Path:
    home = os.environ.get("FOLEY_HOME")
    return Path(home) / "cache" if home else Path(platformdirs.user_cache_dir("foley-desk"))


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _fraction(value, name: str) -> Fraction:
    try:
        return Fraction(str(value))
    except (ValueError, ZeroDivisionError):
        raise ValueError(f"'{name}' must be a time in seconds such as \"12\", \"9.5\" or \"1001/30000\"; got {value!r}.") from None


def _sampling(payload: dict, model: str) -> SamplingConfig:
    """The model family's preset with the payload's overrides (the job check refuses a sampler the family lacks)."""
    presets = model_family(model).SAMPLING_PRESETS
    preset = payload.get("preset", "reference")
    if preset not in presets:
        raise ValueError(f"preset '{preset}' is unknown; use one of {', '.join(presets)}.")
    sampling = presets[preset]
    sampler, spacing = payload.get("sampler", sampling.sampler), payload.get("spacing", sampling.spacing)
    steps, guidance = payload.get("steps", sampling.steps), payload.get("guidance", sampling.guidance)
    if not isinstance(steps, int) or isinstance(steps, bool):
        raise ValueError(f"'steps' must be a whole number; got {steps!r}.")
    if not isinstance(guidance, (int, float)) or isinstance(guidance, bool):
        raise ValueError(f"'guidance' must be a number; got {guidance!r}.")
    return replace(sampling, sampler=str(sampler), steps=steps, guidance=float(guidance), spacing=str(spacing))


def _prompt(item: dict) -> Prompt:
    text, negative = item.get("prompt", ""), item.get("negative_prompt", "")
    if not isinstance(text, str) or not isinstance(negative, str):
        raise ValueError("'prompt' and 'negative_prompt' must be strings.")
    if len(text) > MAX_PROMPT or len(negative) > MAX_PROMPT:
        raise ValueError(f"a prompt is at most {MAX_PROMPT} characters (the text encoder reads 77 tokens).")
    return Prompt(text, negative)


def _prompts(payload: dict) -> tuple[Prompt, ...]:
    """'layers': [{"prompt", "negative_prompt"}, ...] (one layer each), or one 'prompt' / 'negative_prompt'."""
    if "layers" not in payload:
        return (_prompt(payload),)
    layers = payload["layers"]
    if not isinstance(layers, list) or not layers or not all(isinstance(item, dict) for item in layers):
        raise ValueError("'layers' must be a list of {\"prompt\", \"negative_prompt\"} objects, one per layer.")
    return tuple(_prompt(item) for item in layers)


def _seeds(payload: dict) -> tuple[int, ...]:
    seeds = payload.get("seeds")
    if not isinstance(seeds, list) or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds):
        raise ValueError(f"'seeds' must be a list of whole numbers, one per variant; got {seeds!r}.")
    return tuple(seeds)


def _level(payload: dict) -> LevelMode:
    level = payload.get("level", "normalised")
    if level not in LEVEL_MODES:
        raise ValueError(f"'level' must be one of {', '.join(LEVEL_MODES)}; got {level!r}.")
    return level


def _spec(payload: dict, **inputs) -> JobSpec:
    """The fields both kinds of submission share."""
    model = str(payload.get("model") or best_installed())
    return JobSpec(
        model=model,
        sampling=_sampling(payload, model),
        prompts=_prompts(payload),
        seeds=_seeds(payload),
        start=_fraction(payload.get("start"), "start"),
        end=_fraction(payload.get("end"), "end"),
        level=_level(payload),
        **inputs,
    )


def _edit_span(item) -> EditSpan:
    if not isinstance(item, dict) or not isinstance(item.get("media"), str):
        raise ValueError(f"each 'edit' item needs 'media', 'record_start', 'record_end', 'source_start'; got {item!r}.")
    times = (_fraction(item.get(key), f"edit.{key}") for key in ("record_start", "record_end", "source_start"))
    return EditSpan(Path(item["media"]), *times)


def parse_media_job(body: bytes) -> JobSpec:
    """JSON: `media` (one file, source time = record time) or `edit` (spans of several files), with the range."""
    try:
        payload = json.loads(body)
    except ValueError as exc:
        raise ValueError(f"the job is not valid JSON ({exc}).") from None
    if not isinstance(payload, dict) or not (isinstance(payload.get("media"), str) or "edit" in payload):
        raise ValueError("a JSON job needs 'media' (a path the engine can read) or 'edit' (a list of spans), "
                         "plus 'start', 'end' and 'seeds'.")
    spec = _spec(payload, source=str(payload.get("source") or payload.get("media") or "edit"),
                 legacy_frames=bool(payload.get("legacy_frames", False)))
    if "edit" in payload:
        if not isinstance(payload["edit"], list):
            raise ValueError("'edit' must be a list of spans.")
        return replace(spec, edit=tuple(_edit_span(item) for item in payload["edit"]))
    return replace(spec, edit=(EditSpan(Path(payload["media"]), spec.start, spec.end, spec.start),))


def parse_frames_part(body: bytes) -> tuple[dict, np.ndarray, list]:
    """Split `header-json \\n frames` and check the header against the bytes: (header, frames, frame times)."""
    cut = body.find(b"\n", 0, HEADER_LIMIT)
    if cut < 0:
        raise ValueError("frames upload: the body must start with a one-line JSON header ended by a newline.")
    try:
        header = json.loads(body[:cut])
    except ValueError as exc:
        raise ValueError(f"frames upload: the header is not valid JSON ({exc}).") from None
    if not isinstance(header, dict) or header.get("format") != FRAMES_FORMAT:
        raise ValueError(f"frames upload: the header must be a JSON object with \"format\": \"{FRAMES_FORMAT}\".")
    count, width, height = (header.get(key) for key in ("count", "width", "height"))
    if not all(isinstance(v, int) and 0 < v <= MAX_SIDE for v in (count, width, height)):
        raise ValueError(f"frames upload: count, width and height must be whole numbers from 1 to {MAX_SIDE}; "
                         f"got count={count!r}, width={width!r}, height={height!r}.")
    pixels = memoryview(body)[cut + 1 :]
    expected = count * width * height * 3
    if len(pixels) != expected:
        raise ValueError(f"frames upload: {len(pixels)} bytes of pixels follow the header, but {count} uint8 RGB "
                         f"frames of {width}x{height} are {expected} bytes; send the frames as packed RGB24.")
    times = header.get("frame_times")
    if not isinstance(times, list) or len(times) != count:
        raise ValueError(f"frames upload: 'frame_times' must list one source time per frame ({count}).")
    rgb = np.frombuffer(pixels, np.uint8).reshape(count, height, width, 3)
    return header, rgb, times


def parse_frames_job(body: bytes, uploads: "Uploads | None" = None) -> JobSpec:
    """A frames job: its header and frames, after the frames uploaded ahead under the header's "upload" id."""
    header, rgb, times = parse_frames_part(body)
    if header.get("upload") is not None:
        if uploads is None:
            raise ValueError("frames upload: this engine keeps no uploads.")
        earlier, earlier_times = uploads.take(str(header["upload"]), rgb.shape[1:])
        rgb, times = np.concatenate([earlier, rgb]), earlier_times + times
    spec = _spec(header, source=str(header.get("source") or "frames"))
    config = model_config(spec.model)
    if upload_size(config) is None:
        raise ValueError(f"frames upload: model '{spec.model}' conditions on pictures at two rates and sizes (CLIP "
                         "and Synchformer); send it the media ('media' or 'edit' jobs) instead of frames.")
    if header.get("fps") != config.frame_rate:
        raise ValueError(f"frames upload: frames must be sampled at {config.frame_rate} fps for model "
                         f"'{spec.model}'; the header says fps={header.get('fps')!r}.")
    frame_times = tuple(_fraction(t, "frame_times") for t in times)
    frames = Frames(fit_frames(rgb, upload_size(config)), frame_times, spec.start, spec.end, config.frame_rate)
    return replace(spec, frames=frames)


class Uploads:
    """Frames sent ahead of their job, window by window, so a range of any length fits the request limit. At most
    `max_bytes` are held in all; an upload not taken by a job within `ttl` seconds is dropped."""

    def __init__(self, max_bytes: int, ttl: float = 600.0):
        self.max_bytes, self.ttl = max_bytes, ttl
        self._held: dict[str, tuple[float, list[np.ndarray], list]] = {}
        self._lock = threading.Lock()

    def add(self, upload: str | None, rgb: np.ndarray, times: list) -> tuple[str, int]:
        """Append frames to `upload` (a new one when None); return its id and how many frames it holds."""
        with self._lock:
            now = time.monotonic()
            for key in [k for k, (seen, _, _) in self._held.items() if now - seen > self.ttl]:
                del self._held[key]
            if upload is not None and upload not in self._held:
                raise ValueError(f"frames upload: no upload '{upload}' (it expired after {self.ttl:.0f} s, or was "
                                 "used); start again without 'upload'.")
            held = sum(part.nbytes for _, parts, _ in self._held.values() for part in parts)
            if held + rgb.nbytes > self.max_bytes:
                raise RequestTooLarge(f"the engine holds {held} bytes of uploaded frames and accepts at most "
                                      f"{self.max_bytes}; submit the job that uses them first.")
            upload = upload or secrets.token_hex(8)
            _, parts, upload_times = self._held.get(upload, (now, [], []))
            if parts and parts[0].shape[1:] != rgb.shape[1:]:
                raise ValueError(f"frames upload: every part must be {parts[0].shape[2]}x{parts[0].shape[1]}.")
            self._held[upload] = (now, [*parts, rgb.copy()], upload_times + list(times))
            return upload, len(self._held[upload][2])

    def take(self, upload: str, shape: tuple) -> tuple[np.ndarray, list]:
        """Remove and return an upload's frames and times."""
        with self._lock:
            if upload not in self._held:
                raise ValueError(f"frames upload: no upload '{upload}' (it expired, or a job used it already).")
            _, parts, times = self._held.pop(upload)
        if parts[0].shape[1:] != shape:
            raise ValueError("frames upload: the job's frames differ in size from the uploaded ones.")
        return np.concatenate(parts), times


def upload_size(config) -> int | None:
    """The picture size hosts may upload frames at: a model of one picture stream (VTA-LDM) has one; a model of
    several (MMAudio) reads the media itself (None)."""
    return config.vision.image_size if hasattr(config, "vision") else None


def _model_entry(name: str, licences, trained: bool, default: str) -> dict:
    config, family = model_config(name), model_family(name)
    return {
        "name": name,
        "family": family_name(model_manifest(name)),
        "preset": config.name,
        "takes_text": family.TAKES_TEXT,
        "sampling_presets": {preset: asdict(sampling) for preset, sampling in family.SAMPLING_PRESETS.items()},
        "frame_rate": config.frame_rate,
        "image_size": upload_size(config),
        "window_seconds": str(config.window_seconds),
        "sample_rate": config.sample_rate,
        "licences": list(licences),
        "trained": trained,
        "default": name == default,
    }


def _free_memory() -> int | None:
    if torch.cuda.is_available():
        return torch.cuda.mem_get_info()[0]
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _error(status: int, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"detail": message}, status_code=status, headers=headers)


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with `RequestTooLarge` as soon as it passes `limit` (also when chunked)."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise RequestTooLarge(f"the request is larger than this engine accepts ({limit // (1 << 20)} MiB).")
        chunks.append(chunk)
    return b"".join(chunks)


def create_app(runner: JobRunner, token: str, *, max_request_bytes: int, lifespan=None,
               shutdown: Callable[[], None] | None = None) -> FastAPI:
    """The /v1 API over `runner`, guarded by `token`; `lifespan` wraps the server's start and stop, `shutdown`
    ends the server (POST /v1/shutdown)."""
    app = FastAPI(title="Foley Desk engine", version=__version__, docs_url=None, redoc_url=None, openapi_url=None,
                  lifespan=lifespan)
    expected = f"Bearer {token}".encode()
    uploads = Uploads(max_bytes=4 * max_request_bytes)

    @app.middleware("http")
    async def guard(request: Request, call_next):
        if request.url.path != f"{API}/health":
            supplied = request.headers.get("authorization", "").encode()
            if not hmac.compare_digest(supplied, expected):
                return _error(401, "missing or wrong engine token: send 'Authorization: Bearer <token>' with the "
                                   f"token from the engine's discovery file ({discovery_path()}).",
                              {"WWW-Authenticate": "Bearer"})
        length = request.headers.get("content-length", "0")
        if not length.isdigit():
            return _error(400, f"Content-Length '{length}' is not a number.")
        if int(length) > max_request_bytes:
            return _error(413, f"the request has {int(length)} bytes; this engine accepts at most "
                               f"{max_request_bytes} (send frames at the model's input size, e.g. 224x224).")
        return await call_next(request)

    @app.exception_handler(QueueFull)
    async def queue_full(request, exc: QueueFull):
        return _error(429, str(exc), {"Retry-After": str(exc.retry_after)})

    @app.exception_handler(UnknownJob)
    async def unknown_job(request, exc):
        return _error(404, str(exc))

    @app.exception_handler(JobNotDone)
    async def not_done(request, exc):
        return _error(409, str(exc))

    @app.exception_handler(RequestTooLarge)
    async def too_large(request, exc):
        return _error(413, str(exc))

    @app.exception_handler(FoleyError)
    @app.exception_handler(ValueError)
    async def bad_input(request, exc):
        return _error(422, str(exc))

    @app.get(f"{API}/health")
    def health():
        return {"status": "ok", "version": __version__, "api": 1, "device": runner.device,
                "cuda_available": torch.cuda.is_available(), "free_memory_bytes": _free_memory(),
                **runner.status()}

    @app.get(f"{API}/models")
    def models():
        default = best_installed()
        builtin = model_manifest(EMBEDDED)
        entries = [_model_entry(EMBEDDED, builtin["licences"], builtin["trained"], default)]
        entries += [_model_entry(m["name"], m["licences"], m["trained"], default) for m in list_models()]
        return {"models": entries}

    @app.post(f"{API}/jobs", status_code=202)
    async def submit(request: Request):
        body = await read_body(request, max_request_bytes)
        kind = request.headers.get("content-type", "").split(";")[0].strip()
        if kind == FRAMES_CONTENT_TYPE:
            spec = await run_in_threadpool(parse_frames_job, body, uploads)
        elif kind == "application/json":
            if not is_loopback(request.client.host if request.client else ""):
                raise ValueError("media-path jobs are accepted only from this machine; send decoded frames "
                                 f"({FRAMES_CONTENT_TYPE}) from other machines.")
            spec = parse_media_job(body)
        else:
            raise ValueError(f"unsupported Content-Type '{kind}'; send application/json (media path) or "
                             f"{FRAMES_CONTENT_TYPE} (decoded frames).")
        job = await run_in_threadpool(runner.submit, spec)
        return JSONResponse(job.record(), status_code=202)

    @app.post(f"{API}/uploads", status_code=201)
    async def upload(request: Request):
        if request.headers.get("content-type", "").split(";")[0].strip() != FRAMES_CONTENT_TYPE:
            raise ValueError(f"uploads take {FRAMES_CONTENT_TYPE} bodies (one JSON header line, then frames).")
        header, rgb, times = await run_in_threadpool(parse_frames_part, await read_body(request, max_request_bytes))
        name, count = uploads.add(header.get("upload"), rgb, times)
        return JSONResponse({"upload": name, "frames": count}, status_code=201)

    @app.get(f"{API}/jobs")
    def jobs():
        return {"jobs": [job.record() for job in runner.jobs()]}

    @app.get(f"{API}/jobs/{{job_id}}")
    def job(job_id: str):
        return runner.get(job_id).record()

    @app.post(f"{API}/jobs/{{job_id}}/cancel")
    def cancel(job_id: str):
        return runner.cancel(job_id).record()

    @app.delete(f"{API}/jobs/{{job_id}}", status_code=204)
    def delete(job_id: str):
        runner.delete(job_id)
        return Response(status_code=204)

    @app.get(f"{API}/jobs/{{job_id}}/events")
    async def events(job_id: str, request: Request):
        job = runner.get(job_id)
        last = request.headers.get("last-event-id", "-1")
        start = int(last) + 1 if last.lstrip("-").isdigit() else 0

        async def stream():
            sent, quiet = start, 0.0
            while True:
                log = job.events
                while sent < len(log):
                    event = log[sent]
                    sent += 1
                    yield f"id: {event['seq']}\nevent: {event['event']}\ndata: {json.dumps(event)}\n\n"
                    quiet = 0.0
                    if event["event"] in FINAL_STATES:
                        return
                if job.state in FINAL_STATES and sent >= len(job.events):
                    return
                await asyncio.sleep(EVENT_POLL_SECONDS)
                quiet += EVENT_POLL_SECONDS
                if quiet >= HEARTBEAT_SECONDS:
                    yield ": keep-alive\n\n"
                    quiet = 0.0

        return StreamingResponse(stream(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})

    @app.post(f"{API}/shutdown", status_code=202)
    def stop():
        if shutdown is None:
            raise ValueError("this engine cannot be stopped over the API; stop its process.")
        shutdown()
        return {"stopping": True, "pid": os.getpid()}

    @app.get(f"{API}/jobs/{{job_id}}/variants/{{number}}.{{kind}}")
    def variant(job_id: str, number: int, kind: str):
        if kind not in ("wav", "json"):
            raise UnknownJob(f"variants are served as .wav or .json, not .{kind}.")
        path = runner.result_file(job_id, number, kind)
        return FileResponse(path, media_type="audio/wav" if kind == "wav" else "application/json", filename=path.name)

    return app


def write_discovery(url: str, token: str, device: str) -> Path:
    """Announce the engine to local clients in a file only this user can read (0600, written atomically)."""
    path = discovery_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
    data = {"format": DISCOVERY_FORMAT, "url": url, "token": token, "pid": os.getpid(), "version": __version__,
            "device": device, "log": os.environ.get("FOLEY_ENGINE_LOG")}  # set by a client that starts the engine
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle)
    os.replace(tmp, path)
    return path


def remove_discovery() -> None:
    info = read_discovery()
    if info is not None and info.pid == os.getpid():
        discovery_path().unlink(missing_ok=True)


def check_bind(host: str, allow_remote: bool) -> None:
    """Refuse an address other machines can reach unless that is asked for."""
    if not is_loopback(host) and not allow_remote:
        raise FoleyError(f"Binding {host} would expose the engine to your network. Pass --allow-remote to do that "
                         "on purpose (the token still protects it), or use the default 127.0.0.1.")


def serve(*, host: str = "127.0.0.1", port: int = 0, allow_remote: bool = False, cache_dir: Path | None = None,
          max_queue: int = 8, max_request_bytes: int = 256 << 20, token: str | None = None, device: str = "auto",
          precision: str = "auto") -> None:
    """Run the engine until interrupted: bind, announce, serve, then clean up the announcement."""
    check_bind(host, allow_remote)
    running = read_discovery()
    if running is not None and EngineClient(running.url, running.token).alive():
        raise FoleyError(f"An engine is already running at {running.url} (pid {running.pid}); use it, or stop it "
                         "first.")
    # hex, not base64url: a token must never start with "-", or `foley generate --token X` cannot parse it
    token = token or os.environ.get("FOLEY_ENGINE_TOKEN") or secrets.token_hex(32)
    sock = socket.create_server((host, port), family=socket.AF_INET6 if ":" in host else socket.AF_INET)
    bound = sock.getsockname()[1]
    local = "127.0.0.1" if host in ("0.0.0.0", "localhost") else "::1" if host == "::" else host
    url = f"http://[{local}]:{bound}" if ":" in local else f"http://{local}:{bound}"
    if not is_loopback(host):
        logger.warning("the engine listens on %s:%d and is reachable from other machines", host, bound)
    runner = JobRunner(cache_dir or default_cache_dir(), LocalEngine(device, precision), max_queue=max_queue)

    # uvicorn re-raises SIGTERM/SIGINT once it has stopped, so cleanup belongs to the app's shutdown, not a finally
    @contextlib.asynccontextmanager
    async def lifespan(app):
        runner.start()
        path = write_discovery(url, token, runner.device)
        print(f"Foley Desk engine {__version__} at {url} (pid {os.getpid()}, device {runner.device}); "
              f"discovery file {path}; results in {runner.cache_dir}", flush=True)
        yield
        remove_discovery()
        await asyncio.to_thread(runner.stop)

    def shutdown() -> None:
        server.should_exit = True  # uvicorn's own clean stop, as on SIGTERM: the lifespan's cleanup runs

    app = create_app(runner, token, max_request_bytes=max_request_bytes, lifespan=lifespan, shutdown=shutdown)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, timeout_graceful_shutdown=5))
    with sock:
        server.run(sockets=[sock])
