"""Client of the Foley Desk engine server, standard library only (Blender's and Resolve's Python can import it).

Find a running engine through its discovery file (`EngineClient.connect()`), or start one, submit frames or a
media range, follow progress, cancel, and download the variants.

    client = EngineClient.connect(start=True)
    job = client.submit_media("/footage/shot.mov", "12", "17.5", seeds=[1, 2])
    record = client.wait(job["id"], on_event=print)
    paths = client.download(job["id"], "/project/foley")
    client.release()  # stops the engine if this client started it and no other client has jobs on it

An engine is started with the running interpreter when it holds Foley Desk (`python -P -m ui.cli serve`, never a
`foley` looked up on PATH); from another program's Python (Blender, Resolve) with FOLEY_ENGINE_COMMAND, else the
`foley` on PATH.
"""

import http.client
import importlib.util
import json
import logging
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

API = "/v1"
DISCOVERY_FORMAT = "FoleyEngine.1"
FRAMES_FORMAT = "FoleyFrames.1"
FRAMES_CONTENT_TYPE = "application/vnd.foley.frames"
FINAL_STATES = ("done", "failed", "cancelled")


class EngineError(Exception):
    """Base class of every error the client reports."""


class EngineNotRunning(EngineError):
    """No engine answers at the discovered or given address."""


class EngineConnectionLost(EngineError):
    """The engine stopped answering while a job was being followed."""


class EngineRefused(EngineError):
    """The engine answered with an error status; `status` and `retry_after` (for 429) say why."""

    def __init__(self, message: str, status: int, retry_after: float | None = None):
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class JobFailed(EngineError):
    """The job ended with an error on the engine side."""


class JobCancelled(EngineError):
    """The job was cancelled before it finished."""


def runtime_dir() -> Path:
    """Where the engine's discovery file lives: private to the user, `FOLEY_HOME/run` when that is set."""
    home = os.environ.get("FOLEY_HOME")
    if home:
        return Path(home) / "run"
    if sys.platform == "win32":
        return Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local")) / "foley-desk" / "run"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "foley-desk" / "run"
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg:
        return Path(xdg) / "foley-desk"
    return Path(tempfile.gettempdir()) / f"foley-desk-{os.getuid()}"


def discovery_path() -> Path:
    return runtime_dir() / "engine.json"


@dataclass(frozen=True)
class EngineInfo:
    """The contents of a discovery file."""

    url: str
    token: str
    pid: int
    version: str
    device: str
    log: str | None = None  # the engine's log file, when a client started it


@dataclass(frozen=True)
class StartedEngine:
    """An engine this process launched: its process and where it logs."""

    process: subprocess.Popen
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid


def read_discovery(path: Path | None = None) -> EngineInfo | None:
    """The engine the discovery file announces, or None when there is no readable file."""
    path = path or discovery_path()
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if data.get("format") != DISCOVERY_FORMAT:
        return None
    return EngineInfo(data["url"], data["token"], data["pid"], data["version"], data["device"], data.get("log"))


def _announced(url: str) -> bool:
    """Whether the local discovery file still names the engine at `url` (it is withdrawn as a clean stop ends)."""
    info = read_discovery()
    return info is not None and info.url == url


def _error_message(status: int, body: bytes) -> str:
    try:
        detail = json.loads(body)["detail"]
    except (ValueError, KeyError, TypeError):
        detail = body.decode("utf-8", "replace")[:500] or http.client.responses.get(status, "")
    return f"engine refused the request ({status}): {detail}"


class EngineClient:
    """One engine at `url`, authenticated with `token`."""

    def __init__(self, url: str, token: str, *, timeout: float = 30.0):
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme != "http" or not parsed.hostname:
            raise EngineError(f"'{url}' is not an engine address; it looks like http://127.0.0.1:PORT")
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self._host = parsed.hostname
        self._port = parsed.port or 80
        self.started: StartedEngine | None = None  # set when this client launched the engine
        # an engine on this machine reads the user's media itself; a remote one gets decoded frames
        self.local = parsed.hostname in ("127.0.0.1", "localhost", "::1")
        self._mine: set[str] = set()  # jobs this client submitted

    @classmethod
    def connect(cls, *, start: bool = False, command: list[str] | None = None, timeout: float = 120.0) -> "EngineClient":
        """The engine named by the discovery file; with `start`, launch one when none answers (`started` says so)."""
        info = read_discovery()
        if info is not None:
            client = cls(info.url, info.token)
            if client.alive():
                return client
        if not start:
            raise EngineNotRunning(
                f"No Foley Desk engine is running (discovery file {discovery_path()}). Start one with `foley serve`."
            )
        return start_engine(command, timeout=timeout)

    # -- transport -------------------------------------------------------------------------------------------

    def _connection(self, timeout: float | None = None) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(self._host, self._port, timeout=timeout or self.timeout)

    def _send(self, method: str, path: str, body: bytes | None = None, content_type: str | None = None,
              headers: dict | None = None, timeout: float | None = None):
        conn = self._connection(timeout)
        all_headers = {"Authorization": f"Bearer {self.token}", **(headers or {})}
        if content_type:
            all_headers["Content-Type"] = content_type
        try:
            conn.request(method, API + path, body=body, headers=all_headers)
            return conn, conn.getresponse()
        except (ConnectionError, OSError, http.client.HTTPException) as exc:
            conn.close()
            raise EngineNotRunning(
                f"Cannot reach the engine at {self.url} ({exc}). Is `foley serve` running? Start it and try again."
            ) from None

    def request(self, method: str, path: str, body: bytes | None = None, content_type: str | None = None) -> bytes:
        """Send one request and return the body of a 2xx answer; raise `EngineRefused` otherwise."""
        conn, response = self._send(method, path, body, content_type)
        try:
            data = response.read()
        except (ConnectionError, OSError, http.client.HTTPException) as exc:
            raise EngineConnectionLost(f"The engine at {self.url} stopped answering mid-reply ({exc}).") from None
        finally:
            conn.close()
        if response.status >= 400:
            retry = response.getheader("Retry-After")
            raise EngineRefused(_error_message(response.status, data), response.status, float(retry) if retry else None)
        return data

    def _json(self, method: str, path: str, payload: dict | None = None) -> dict:
        body = json.dumps(payload).encode() if payload is not None else None
        data = self.request(method, path, body, "application/json" if body is not None else None)
        return json.loads(data) if data else {}

    # -- API -------------------------------------------------------------------------------------------------

    def alive(self) -> bool:
        try:
            self.health()
        except EngineError:
            return False
        return True

    def health(self) -> dict:
        return self._json("GET", "/health")

    def models(self) -> list[dict]:
        return self._json("GET", "/models")["models"]

    def submit_media(self, path: str, start: str, end: str, *, seeds: list[int], model: str | None = None,
                     steps: int | None = None, guidance: float | None = None, legacy_frames: bool = False,
                     sampler: str | None = None, spacing: str | None = None, source: str = "",
                     level: str = "normalised", prompt: str | list[str] = "", negative_prompt: str = "") -> dict:
        """A job on a media file the engine can read itself (local engines). Times are seconds as exact strings."""
        payload = {"media": str(path), "start": str(start), "end": str(end), "legacy_frames": legacy_frames,
                   "source": source, "level": level,
                   **_params(seeds, model, steps, guidance, sampler, spacing, prompt, negative_prompt)}
        return self._submitted(self._json("POST", "/jobs", payload))

    def submit_edit(self, edit: list[dict], start: str, end: str, *, seeds: list[int], source: str = "",
                    model: str | None = None, steps: int | None = None, guidance: float | None = None,
                    sampler: str | None = None, spacing: str | None = None, level: str = "normalised",
                    prompt: str | list[str] = "", negative_prompt: str = "") -> dict:
        """A job on an edited range the engine decodes itself: `edit` lists spans
        `{"media", "record_start", "record_end", "source_start"}` (seconds as exact strings) that must not overlap."""
        payload = {"edit": edit, "start": str(start), "end": str(end), "source": source, "level": level,
                   **_params(seeds, model, steps, guidance, sampler, spacing, prompt, negative_prompt)}
        return self._submitted(self._json("POST", "/jobs", payload))

    def upload_frames(self, rgb: bytes, *, count: int, width: int, height: int, frame_times: list[str],
                      upload: str | None = None) -> str:
        """Send frames ahead of their job (a window at a time keeps every request small); returns the upload id
        that the next part and finally `submit_frames(..., upload=...)` name."""
        header = {"format": FRAMES_FORMAT, "count": count, "width": width, "height": height,
                  "frame_times": [str(t) for t in frame_times], "upload": upload}
        body = json.dumps(header).encode() + b"\n" + bytes(rgb)
        return json.loads(self.request("POST", "/uploads", body, FRAMES_CONTENT_TYPE))["upload"]

    def submit_frames(self, rgb: bytes, *, count: int, width: int, height: int, fps: int, start: str, end: str,
                      frame_times: list[str], seeds: list[int], source: str = "", model: str | None = None,
                      steps: int | None = None, guidance: float | None = None, sampler: str | None = None,
                      level: str = "normalised", spacing: str | None = None, upload: str | None = None,
                      prompt: str | list[str] = "", negative_prompt: str = "") -> dict:
        """A job on decoded frames: `count` uint8 RGB pictures of `height` x `width`, sampled at `fps` from start
        (after the frames of `upload`, when given); `level` is how the WAVs are written ("normalised" or "raw",
        see engine/core/levels.py)."""
        header = {"format": FRAMES_FORMAT, "count": count, "width": width, "height": height, "fps": fps,
                  "start": str(start), "end": str(end), "frame_times": [str(t) for t in frame_times],
                  "source": source, "level": level, "upload": upload,
                  **_params(seeds, model, steps, guidance, sampler, spacing, prompt, negative_prompt)}
        body = json.dumps(header).encode() + b"\n" + bytes(rgb)
        return self._submitted(json.loads(self.request("POST", "/jobs", body, FRAMES_CONTENT_TYPE)))

    def _submitted(self, record: dict) -> dict:
        self._mine.add(record["id"])
        return record

    def job(self, job_id: str) -> dict:
        return self._json("GET", f"/jobs/{job_id}")

    def jobs(self) -> list[dict]:
        return self._json("GET", "/jobs")["jobs"]

    def cancel(self, job_id: str) -> dict:
        return self._json("POST", f"/jobs/{job_id}/cancel")

    def shutdown(self, timeout: float = 90.0) -> None:
        """Ask the engine to stop (its running job is cancelled) and wait until it has: its process has exited
        when this client started it, else it no longer answers nor is announced."""
        self._json("POST", "/shutdown")
        deadline = time.monotonic() + timeout
        if self.started is not None:
            try:
                self.started.process.wait(timeout)
                return
            except subprocess.TimeoutExpired:
                raise EngineError(f"The engine at {self.url} did not stop within {timeout:.0f} s.") from None
        while self.alive() or _announced(self.url):
            if time.monotonic() > deadline:
                raise EngineError(f"The engine at {self.url} did not stop within {timeout:.0f} s.")
            time.sleep(0.2)

    def release(self) -> bool:
        """Done with the engine: stop it if this client started it and no other client has unfinished jobs on it.

        Jobs this client left unfinished go with it. Returns whether the engine was stopped."""
        if self.started is None:
            return False
        try:
            others = [job for job in self.jobs() if job["state"] not in FINAL_STATES and job["id"] not in self._mine]
            if others:
                logger.warning("leaving the engine at %s running for %d job(s) of other clients; `foley engine stop` "
                               "stops it", self.url, len(others))
                return False
            self.shutdown()
        except EngineError as exc:
            if self.started.process.poll() is None:  # hung, not gone (`foley engine stop` ends it too): it is ours
                logger.warning("the engine at %s did not stop on request (%s); terminating pid %d", self.url, exc,
                               self.started.pid)
                self.started.process.terminate()
        self.started = None
        return True

    def delete(self, job_id: str) -> None:
        self.request("DELETE", f"/jobs/{job_id}")

    def events(self, job_id: str, after: int | None = None) -> Iterator[dict]:
        """Progress events of a job, in order, ending with its final state; replays from `after` + 1."""
        headers = {"Accept": "text/event-stream"}
        if after is not None:
            headers["Last-Event-ID"] = str(after)
        # the server sends a comment every few seconds, so a silent minute means the engine is gone
        conn, response = self._send("GET", f"/jobs/{job_id}/events", headers=headers, timeout=60.0)
        try:
            if response.status >= 400:
                raise EngineRefused(_error_message(response.status, response.read()), response.status)
            data: list[str] = []
            while True:
                line = response.readline()
                if not line:
                    return
                text = line.decode("utf-8").rstrip("\r\n")
                if text.startswith("data:"):
                    data.append(text[5:].strip())
                elif not text and data:
                    yield json.loads("\n".join(data))
                    data = []
        except (ConnectionError, OSError, http.client.HTTPException) as exc:
            raise EngineConnectionLost(f"lost the event stream ({exc})") from None
        finally:
            conn.close()

    def wait(self, job_id: str, on_event: Callable[[dict], None] | None = None) -> dict:
        """Follow a job to its end; return its record when done, raise `JobFailed`/`JobCancelled` otherwise.

        A dropped stream is resumed where it stopped while the engine answers; when the engine is gone,
        `EngineConnectionLost` says so and that the job must be submitted again.
        """
        last = None
        while True:
            try:
                for event in self.events(job_id, after=last):
                    last = event["seq"]
                    if on_event is not None:
                        on_event(event)
                    if event["event"] in FINAL_STATES:
                        return self._final(job_id, event)
            except EngineConnectionLost as exc:
                if not self.alive():
                    raise EngineConnectionLost(
                        f"The engine at {self.url} stopped while job {job_id} was running ({exc}). Its finished "
                        "jobs are kept; start it again (`foley serve`) and submit this job again."
                    ) from None
            except EngineNotRunning:
                raise EngineConnectionLost(
                    f"The engine at {self.url} stopped while job {job_id} was running. Start it again "
                    "(`foley serve`) and submit this job again."
                ) from None

    def _final(self, job_id: str, event: dict) -> dict:
        if event["event"] == "failed":
            raise JobFailed(f"job {job_id} failed: {event.get('error')}")
        if event["event"] == "cancelled":
            raise JobCancelled(f"job {job_id} was cancelled; nothing was kept.")
        return self.job(job_id)

    def variant(self, job_id: str, number: int, kind: str = "wav") -> bytes:
        """The WAV (`kind="wav"`) or sidecar JSON (`kind="json"`) of variant `number` (1-based)."""
        return self.request("GET", f"/jobs/{job_id}/variants/{number}.{kind}")

    def download(self, job_id: str, out_dir: str | Path) -> list[Path]:
        """Copy every variant's WAV and sidecar into `out_dir` (all or nothing); return the WAV paths."""
        record = self.job(job_id)
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        staged: list[tuple[Path, Path]] = []
        try:
            for item in record["variants"]:
                for kind in ("wav", "json"):
                    final = out / item[kind]
                    part = out / f".{final.name}.part"
                    staged.append((part, final))
                    part.write_bytes(self.variant(job_id, item["number"], kind))
            for part, final in staged:
                os.replace(part, final)
        finally:
            for part, _ in staged:
                part.unlink(missing_ok=True)
        return [final for _, final in staged if final.suffix == ".wav"]


def _params(seeds: list[int], model: str | None, steps: int | None, guidance: float | None,
            sampler: str | None = None, spacing: str | None = None, prompt: str | list[str] = "",
            negative_prompt: str = "") -> dict:
    """`prompt` (for models that take text, as the engine's /models says) is one prompt, or a list of them: one
    layer each, its own variants and its own stem, with `negative_prompt` for every layer."""
    params: dict = {"seeds": [int(s) for s in seeds]}
    if isinstance(prompt, list):
        params["layers"] = [{"prompt": text, "negative_prompt": negative_prompt} for text in prompt]
    elif prompt or negative_prompt:
        params["prompt"], params["negative_prompt"] = prompt, negative_prompt
    if sampler is not None:
        params["sampler"] = sampler
    if spacing is not None:  # the timesteps are part of the sound: "fast" is trailing, the reference leading
        params["spacing"] = spacing
    if model is not None:
        params["model"] = model
    if steps is not None:
        params["steps"] = int(steps)
    if guidance is not None:
        params["guidance"] = float(guidance)
    return params


def _package_root() -> Path | None:
    """The folder holding this Foley Desk's `engine` and `ui` packages, when this module is the package's own
    (a copy inside the Blender add-on is not)."""
    root = Path(__file__).resolve().parents[2]
    if __name__ == "engine.serving.client" and (root / "ui" / "cli.py").is_file():
        return root
    return None


def engine_command() -> tuple[list[str], dict[str, str]]:
    """How to start an engine, and the environment to add: `FOLEY_ENGINE_COMMAND`; else this interpreter running
    this copy of Foley Desk; else (another program's Python) the `foley` on PATH."""
    configured = os.environ.get("FOLEY_ENGINE_COMMAND")
    if configured:
        return shlex.split(configured), {}
    root = _package_root()
    if root is not None and importlib.util.find_spec("uvicorn") is not None:
        # -P: the working folder must not shadow the packages; PYTHONPATH: the engine runs the same code as we do
        path = os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")]))
        return [sys.executable, "-P", "-m", "ui.cli", "serve"], {"PYTHONPATH": path}
    foley = shutil.which("foley")
    if foley is None:
        raise EngineNotRunning(
            f"No engine is running, and this Python ({sys.executable}) does not hold Foley Desk. Start one with "
            "`foley serve`, or set FOLEY_ENGINE_COMMAND to the command that starts it (for example "
            "'/path/to/.venv/bin/foley serve')."
        )
    return [foley, "serve"], {}


def start_engine(command: list[str] | None = None, *, timeout: float = 120.0) -> EngineClient:
    """Launch an engine in the background (log in the runtime dir), wait until it answers, and say so."""
    command, env = (command, {}) if command else engine_command()
    folder = runtime_dir()
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    log_path = folder / "engine.log"
    with open(log_path, "ab") as log:
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
                                   env={**os.environ, **env, "FOLEY_ENGINE_LOG": str(log_path)})
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log_path.read_text(errors="replace")[-2000:]
            raise EngineNotRunning(f"The engine exited at start (code {process.returncode}). Its log:\n{tail}")
        info = read_discovery()
        if info is not None and info.pid == process.pid:
            client = EngineClient(info.url, info.token)
            if client.alive():
                client.started = StartedEngine(process, log_path)
                logger.info("started an engine at %s (pid %d); log %s", info.url, process.pid, log_path)
                return client
        time.sleep(0.2)
    process.terminate()
    raise EngineNotRunning(f"The engine did not start within {timeout:.0f} s; see {log_path}.")


def format_eta(seconds: float) -> str:
    """m:ss, or h:mm:ss from an hour on."""
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def progress_text(event: dict, bar: int = 0) -> str:
    """One line for a progress event (engine `StepInfo` fields): window k/n, the variants (all of a window's
    variants advance together), the stage's step k/n with a bar of `bar` characters, and the job's ETA; parts
    whose fields the event lacks are left out."""
    step, total, stage = event["step"], event["total"], event["stage"]
    if bar:
        stage = f"{stage:<7} [{'#' * int(bar * step / total if total else 0):<{bar}}]"
    parts = [f"{stage} {step}/{total}"]
    if "windows" in event:
        parts.insert(0, f"window {event['window'] + 1}/{event['windows']}")
    if "variants" in event:
        count = event["variants"]
        parts.insert(-1, "variant 1/1" if count == 1 else f"variants 1-{count}/{count}")
    if "eta" in event:
        parts.append(f"ETA {format_eta(event['eta'])}" if event["eta"] is not None else "ETA measuring")
    return " · ".join(parts)
