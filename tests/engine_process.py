"""A real `foley serve` process for tests: started on a free loopback port in its own FOLEY_HOME."""

import http.client
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from engine.serving.client import EngineClient

FOLEY = str(Path(sys.executable).with_name("foley"))
ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT = 180.0  # torch loads slowly when the machine is busy


def foley_env(home: Path) -> dict[str, str]:
    """The environment of a `foley` process under test: its own FOLEY_HOME, the venv NOT on PATH (as after
    `python3 -m venv .venv && .venv/bin/pip install -e .`), and this tree's code ahead of the installed one."""
    return {"FOLEY_HOME": str(home), "PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT),
            "HOME": os.environ.get("HOME", "/tmp")}


class EngineProcess:
    def __init__(self, home: Path, *args: str):
        self.home = home
        env = {**os.environ, **foley_env(home)}
        self.log = open(home.parent / f"{home.name}-engine.log", "ab")
        # the running interpreter with -m, so the engine runs the code under test (the checkout, not an install)
        self.process = subprocess.Popen([sys.executable, "-m", "ui.cli", "-v", "serve", *args], env=env,
                                        stdout=self.log, stderr=self.log)
        discovery = home / "run" / "engine.json"
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log_text()
            if discovery.is_file():
                info = json.loads(discovery.read_text())
                if info["pid"] == self.process.pid:
                    self.info = info
                    self.client = EngineClient(info["url"], info["token"])
                    if self.client.alive():
                        return
            time.sleep(0.1)
        self.kill()
        raise AssertionError(f"engine did not start in {START_TIMEOUT} s:\n{self.log_text()}")

    @property
    def url(self) -> str:
        return self.info["url"]

    @property
    def token(self) -> str:
        return self.info["token"]

    def log_text(self) -> str:
        return (self.home.parent / f"{self.home.name}-engine.log").read_text(errors="replace")

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=60)
        self.log.close()

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(timeout=60)
        self.log.close()


def install_test_model(home: Path) -> None:
    """Put the test-sized imported checkpoint ("tiny": the published layout at 2 fps, 224x224) into FOLEY_HOME
    `home`, where it is then the default model."""
    from engine.vta_ldm.checkpoint import import_snapshot
    from tests.published_layout import build_snapshot

    build_snapshot(home.parent / f"{home.name}-snapshot")
    import_snapshot(home.parent / f"{home.name}-snapshot", home / "models")


def engine_with_test_model(home: Path, *args: str) -> EngineProcess:
    """An engine whose FOLEY_HOME holds the test-sized model, its default."""
    install_test_model(home)
    return EngineProcess(home, *args)


def install_mmaudio_tiny(home: Path) -> str:
    """Put the test-sized MMAudio model (it takes text prompts) into FOLEY_HOME `home`; its name."""
    from engine.mmaudio.checkpoint import import_folder
    from tests.mmaudio_layout import write_published

    return import_folder(write_published(home.parent / f"{home.name}-mmaudio", "tiny"), home / "models")["name"]


def raw_request(server, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
    """One HTTP request to an engine or pool on this machine (`server.url`), below the client: (response, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", int(server.url.rsplit(":", 1)[1]), timeout=30)
    conn.request(method, path, body=body, headers=headers or {})
    response = conn.getresponse()
    data = response.read()
    conn.close()
    return response, data
