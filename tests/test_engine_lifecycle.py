"""The engine's lifecycle on real processes: started with the running interpreter (the venv is not on PATH),
announced, stopped by the command or panel that started it, left alone when it was already running or others
use it, and `foley engine status|stop`."""

import os
import subprocess
from pathlib import Path

import pytest

from engine.serving.client import EngineClient, read_discovery
from engine.training.sample_video import make_demo_video
from tests.engine_process import FOLEY, EngineProcess, foley_env


def running(pid: int) -> bool:
    """Whether `pid` is a live process (a zombie waiting for its parent is not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def foley(home: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([FOLEY, *args], capture_output=True, text=True, env=foley_env(home), timeout=600)


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return make_demo_video(tmp_path_factory.mktemp("media") / "ball.mp4", seconds=2.0)


def test_engine_auto_starts_with_the_interpreter_says_so_and_stops_after(foley_home, clip, tmp_path):
    run = foley(foley_home, "generate", str(clip), "--end", "1", "--steps", "1", "--seed", "1", "--engine", "auto",
                "-o", str(tmp_path / "out"))
    assert run.returncode == 0, run.stderr
    started = next(line for line in run.stderr.splitlines() if line.startswith("started an engine at http://127.0.0.1:"))
    log = foley_home / "run" / "engine.log"
    assert f"log {log})" in started and "stops when this command ends" in started
    pid = int(started.split("(pid ")[1].split(";")[0])
    assert "Foley Desk engine" in log.read_text()  # the engine wrote its banner where we said
    assert len(list((tmp_path / "out").glob("*.wav"))) == 1
    assert not running(pid) and read_discovery() is None  # stopped cleanly: the announcement is withdrawn


def test_an_engine_already_running_is_left_running_then_status_and_stop(foley_home, clip, tmp_path):
    engine = EngineProcess(foley_home)
    try:
        run = foley(foley_home, "generate", str(clip), "--end", "1", "--steps", "1", "--seed", "1",
                    "--engine", "auto", "-o", str(tmp_path / "out"))
        assert run.returncode == 0, run.stderr
        assert "started an engine" not in run.stderr and engine.process.poll() is None
        status = foley(foley_home, "engine", "status")
        assert status.returncode == 0, status.stderr
        assert f"at {engine.url} (pid {engine.process.pid}, device cpu); 0 unfinished job(s)" in status.stdout
        assert "log: the terminal that ran `foley serve`" in status.stdout
        stop = foley(foley_home, "engine", "stop")
        assert stop.returncode == 0 and f"stopped the engine at {engine.url} (pid {engine.process.pid})" in stop.stdout
        assert engine.process.wait(timeout=60) == 0  # the server's own clean stop, not a kill
        assert read_discovery() is None
    finally:
        if engine.process.poll() is None:
            engine.kill()
    gone = foley(foley_home, "engine", "status")
    assert gone.returncode == 1 and "no engine is running" in gone.stdout
    assert foley(foley_home, "engine", "stop").stdout.strip() == "no engine is running"


def test_the_starter_leaves_the_engine_to_other_clients_jobs(foley_home, clip, monkeypatch):
    monkeypatch.setenv("PATH", "/usr/bin:/bin")  # no `foley` to find: the engine must come from this interpreter
    monkeypatch.delenv("FOLEY_ENGINE_COMMAND", raising=False)
    starter = EngineClient.connect(start=True, timeout=120)
    pid = starter.started.pid
    try:
        assert read_discovery().pid == pid and starter.started.log == foley_home / "run" / "engine.log"
        other = EngineClient.connect()  # a second client finds it and did not start it
        assert other.started is None and other.release() is False
        long_job = other.submit_media(str(clip), "0", "1", seeds=[1], steps=1000)
        assert starter.release() is False and starter.alive()  # another client's job is not finished
        other.cancel(long_job["id"])
        with pytest.raises(Exception):
            other.wait(long_job["id"])
        assert starter.release() is True
        assert not running(pid) and read_discovery() is None
    finally:
        if running(pid):
            os.kill(pid, 9)
