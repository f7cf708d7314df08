"""The engine pool on a local Ray cluster started in this process: two CPU replicas of the test-sized model behind
`foley serve`'s /v1 API, driven by the stdlib client. Everything is started and stopped here; every wait is bounded."""

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import ray
from ray import serve

from engine.errors import FoleyError
from engine.pool import APP, PoolSettings, app, ensure_token, settings_from_args, start_pool
from engine.serving.client import FRAMES_CONTENT_TYPE, EngineClient, EngineRefused, JobCancelled, JobFailed
from engine.training.sample_video import make_demo_video
from tests.engine_process import START_TIMEOUT, foley_env, install_test_model, raw_request
from ui.cli import main

JOB_TIMEOUT = 120  # seconds
RECOVERY_TIMEOUT = 90  # Serve replaces a dead replica (a new process that loads the model) well within this
PIXELS = np.random.default_rng(0).integers(0, 256, (2, 224, 224, 3), dtype=np.uint8).tobytes()
FRAMES = dict(count=2, width=224, height=224, fps=2, start="0", end="1", frame_times=["0", "1/2"])


@dataclass
class Pool:
    url: str
    token: str
    shared: Path
    root: Path

    def client(self) -> EngineClient:
        return EngineClient(self.url, self.token)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def pool(tmp_path_factory):
    root = tmp_path_factory.mktemp("pool")
    install_test_model(root / "home")
    settings = PoolSettings(root / "shared", replicas=2, max_queue=3, max_request_bytes=8 << 20)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("FOLEY_HOME", str(root / "home"))  # the raylet's workers (the replicas) inherit it
        env.setenv("OMP_NUM_THREADS", "1")
        ray.init(address="local", num_cpus=2, object_store_memory=200 << 20, include_dashboard=False,
                 log_to_driver=False)
        try:
            url = start_pool(settings, port=free_port())
            yield Pool(url, ensure_token(settings.token_file), settings.shared, root)
        finally:
            serve.shutdown()
            ray.shutdown()


def replica_actors(deployment: str) -> dict[str, str]:
    """Tag -> actor name of the live replicas of `deployment`."""
    prefix = f"SERVE_REPLICA::{APP}#{deployment}#"
    return {a["name"][len(prefix):]: a["name"] for a in ray.util.list_named_actors(all_namespaces=True)
            if a["name"].startswith(prefix)}


def kill_replica(deployment: str, tag: str) -> None:
    ray.kill(ray.get_actor(replica_actors(deployment)[tag], namespace="serve"), no_restart=True)


def wait_for_replicas(count: int = 2) -> None:
    """Until Serve runs `count` healthy engine replicas again."""
    deadline = time.monotonic() + RECOVERY_TIMEOUT
    while time.monotonic() < deadline:
        deployment = serve.status().applications[APP].deployments["EngineReplica"]
        if deployment.status == "HEALTHY" and deployment.replica_states.get("RUNNING", 0) == count:
            return
        time.sleep(0.5)
    raise AssertionError(f"the pool did not get {count} engine replicas back in {RECOVERY_TIMEOUT} s")


def finish(client: EngineClient, job_id: str, on_event=None) -> dict:
    """`client.wait` within JOB_TIMEOUT: a pool that hangs fails the test instead of stalling CI."""
    outcome: dict = {}

    def follow() -> None:
        try:
            outcome["record"] = client.wait(job_id, on_event=on_event)
        except BaseException as exc:  # handed to the test's thread below
            outcome["error"] = exc

    thread = threading.Thread(target=follow, daemon=True)
    thread.start()
    thread.join(JOB_TIMEOUT)
    assert not thread.is_alive(), f"job {job_id} did not end within {JOB_TIMEOUT} s"
    if "error" in outcome:
        raise outcome["error"]
    return outcome["record"]


def submit(client: EngineClient, seed: int, steps: int) -> dict:
    return client.submit_frames(PIXELS, seeds=[seed], steps=steps, **FRAMES)


def test_serve_run_arguments_become_settings_and_bad_ones_are_named(tmp_path):
    """`serve run engine.pool:app shared=DIR replicas=2 ...` hands the builder text; GPUs are asked for per replica."""
    settings = settings_from_args({"shared": str(tmp_path), "replicas": "2", "max_queue": "5", "gpus": "auto"})
    assert (settings.replicas, settings.gpus, settings.max_queue, settings.device) == (2, 0, 5, "cpu")  # no GPU here
    assert settings_from_args({"shared": str(tmp_path), "gpus": "1", "replicas": "4"}).device == "cuda"
    application = app({"shared": str(tmp_path / "new"), "replicas": "2"})
    assert type(application).__name__ == "Application"
    token = (tmp_path / "new" / "token").read_text().strip()
    assert len(token) == 64 and stat.S_IMODE((tmp_path / "new" / "token").stat().st_mode) == 0o600
    assert ensure_token(tmp_path / "new" / "token") == token  # kept across restarts: editors keep working
    for args, message in [({}, "needs 'shared'"), ({"shared": "x", "replicas": "0"}, "'replicas' must be a whole"),
                          ({"shared": "x", "gpus": "2"}, "'gpus' is per replica"),
                          ({"shared": "x", "max_queue": "many"}, "'max_queue' must be a whole number")]:
        with pytest.raises(FoleyError, match=message):
            settings_from_args(args)


def test_foley_pool_starts_ray_serves_jobs_and_stops_cleanly_on_sigterm(tmp_path):
    """The command an operator runs (its own Ray on this machine, one CPU replica), before the module's cluster."""
    install_test_model(tmp_path / "home")
    shared, port = tmp_path / "shared", free_port()
    env = {**os.environ, **foley_env(tmp_path / "home"), "OMP_NUM_THREADS": "1"}
    log = open(tmp_path / "pool.log", "w+")
    process = subprocess.Popen([sys.executable, "-m", "ui.cli", "pool", "--shared", str(shared), "--port", str(port),
                                "--replicas", "1", "--gpus", "0"], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while "Foley Desk pool at" not in (tmp_path / "pool.log").read_text():
            assert process.poll() is None and time.monotonic() < deadline, (tmp_path / "pool.log").read_text()
            time.sleep(0.5)
        client = EngineClient(f"http://127.0.0.1:{port}", (shared / "token").read_text().strip())
        record = finish(client, submit(client, 1, steps=1)["id"])
        assert record["state"] == "done" and (shared / "jobs" / record["id"]).is_dir()
        assert client.health()["device"] == "cpu pool of 1"
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=60)
        log.close()
    assert code == 0, (tmp_path / "pool.log").read_text()[-3000:]
    assert not client.alive()


def test_foley_pool_without_ray_names_the_extra_to_install(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # as in a single editor's install, which has no Ray
    assert main(["pool", "--shared", str(tmp_path)]) == 2
    assert "install the pool extra: pip install -e '.[pool]'" in capsys.readouterr().err


def test_foley_pool_refuses_a_reachable_address_without_the_flag(tmp_path):
    run = subprocess.run([sys.executable, "-m", "ui.cli", "pool", "--shared", str(tmp_path), "--host", "0.0.0.0"],
                         capture_output=True, text=True, timeout=60, env={**os.environ, **foley_env(tmp_path)})
    assert run.returncode == 2 and "--allow-remote" in run.stderr


def test_the_pool_answers_the_single_engines_api_with_its_token_and_limits(pool, tmp_path):
    response, data = raw_request(pool, "GET", "/v1/health")
    health = json.loads(data)
    assert response.status == 200 and health["device"] == "cpu pool of 2" and health["workers"] == 2
    assert health["max_queue"] == 3 and "token" not in data.decode()
    for method, path in [("GET", "/v1/jobs"), ("GET", "/v1/models"), ("POST", "/v1/jobs"), ("GET", "/v1/jobs/x")]:
        response, data = raw_request(pool, method, path, b"{}" if method == "POST" else None,
                                     {"Authorization": "Bearer wrong"})
        assert response.status == 401 and "engine token" in json.loads(data)["detail"], (method, path)
    auth = {"Authorization": f"Bearer {pool.token}", "Content-Type": FRAMES_CONTENT_TYPE}
    response, data = raw_request(pool, "POST", "/v1/jobs", b"\0" * (9 << 20), auth)
    assert response.status == 413 and "at most" in json.loads(data)["detail"]
    client = pool.client()
    with pytest.raises(EngineRefused, match="sampled at 2 fps") as caught:
        client.submit_frames(PIXELS, seeds=[1], **{**FRAMES, "fps": 25})
    assert caught.value.status == 422
    assert [m["name"] for m in client.models()] == ["builtin", "tiny"]
    # a media-path job from this machine: a replica decodes the file itself, as `foley serve` does
    clip = make_demo_video(tmp_path / "ball.mp4", seconds=2.0)
    record = finish(client, client.submit_media(str(clip), "0", "1", seeds=[3], steps=1)["id"])
    assert record["state"] == "done" and record["replica"] in replica_actors("EngineReplica")
    assert json.loads(client.variant(record["id"], 1, "json"))["seed"] == 3


def test_eight_concurrent_clients_are_all_served_or_refused_and_both_replicas_work(pool):
    def submit_and_wait(seed: int):
        client = pool.client()
        try:
            job = submit(client, seed, steps=15)
        except EngineRefused as exc:
            assert exc.status == 429 and exc.retry_after >= 1 and "queue is full" in str(exc), exc
            return seed, None
        record = finish(client, job["id"])
        assert json.loads(client.variant(job["id"], 1, "json"))["seed"] == seed
        return seed, record

    with ThreadPoolExecutor(max_workers=8) as threads:
        futures = [threads.submit(submit_and_wait, 100 + n) for n in range(8)]
        results = [future.result(timeout=JOB_TIMEOUT) for future in futures]
    done = [record for _, record in results if record is not None]
    refused = [seed for seed, record in results if record is None]
    assert len(done) + len(refused) == 8 and refused and len(done) >= 2
    assert all(record["state"] == "done" for record in done)
    assert {record["replica"] for record in done} == set(replica_actors("EngineReplica"))  # both, by name
    ids = [record["id"] for record in done]
    listed = [job["id"] for job in pool.client().jobs()]
    assert len(set(ids)) == len(ids) and all(listed.count(job_id) == 1 for job_id in ids)


def test_cancel_reaches_the_replica_and_leaves_no_files(pool):
    client = pool.client()
    job = submit(client, 5, steps=900)

    def cancel_once_sampling(event):
        if event.get("stage") == "sample" and event["step"] == 2:
            client.cancel(job["id"])

    started = time.monotonic()
    with pytest.raises(JobCancelled):
        finish(client, job["id"], cancel_once_sampling)
    assert time.monotonic() - started < 60 and client.job(job["id"])["state"] == "cancelled"
    assert not (pool.shared / "jobs" / job["id"]).exists()
    # the replica stopped sampling: the next job gets a free replica and finishes
    assert finish(client, submit(client, 6, steps=1)["id"])["state"] == "done"
    assert not list((pool.shared / "jobs").glob(".*"))


def test_a_replica_killed_mid_job_has_the_job_run_again_on_the_other(pool):
    client = pool.client()
    job = submit(client, 7, steps=40)
    killed = []

    def kill_its_replica_once_sampling(event):
        if event.get("replica") and not killed:
            killed.append(event["replica"])
        if event.get("stage") == "sample" and event["step"] == 2 and len(killed) == 1:
            kill_replica("EngineReplica", killed[0])
            killed.append("done")

    events = []
    record = finish(client, job["id"], lambda e: (events.append(e), kill_its_replica_once_sampling(e)))
    assert record["state"] == "done" and record["replica"] != killed[0]
    retry = [e for e in events if e.get("retry") == 1]
    assert len(retry) == 1 and killed[0] in retry[0]["error"]
    sampled = [e["step"] for e in events if e.get("stage") == "sample"]
    assert sampled.count(0) == 2 and sampled[-1] == 40  # started over, ran to the end once
    assert json.loads(client.variant(job["id"], 1, "json"))["seed"] == 7
    assert not list((pool.shared / "jobs").glob(".*"))
    wait_for_replicas()


def test_losing_the_retry_too_fails_the_job_with_submit_it_again(pool):
    client = pool.client()
    job = submit(client, 8, steps=400)
    killed = []

    def kill_every_replica_it_reaches(event):
        if event.get("replica"):
            killed.append(event["replica"])
            kill_replica("EngineReplica", event["replica"])

    with pytest.raises(JobFailed, match="both stopped while running this job; submit it again"):
        finish(client, job["id"], kill_every_replica_it_reaches)
    record = client.job(job["id"])
    assert len(killed) == 2 and killed[0] != killed[1] and all(tag in record["error"] for tag in killed)
    assert not (pool.shared / "jobs" / job["id"]).exists() and not list((pool.shared / "jobs").glob(".*"))
    wait_for_replicas()
    assert finish(client, submit(client, 8, steps=1)["id"])["state"] == "done"


def test_a_restarted_ingress_keeps_every_finished_result(pool):
    client = pool.client()
    finished = finish(client, submit(client, 9, steps=1)["id"])
    audio = client.variant(finished["id"], 1)
    running = submit(client, 11, steps=400)
    for event in client.events(running["id"]):
        if event.get("stage") == "sample":
            break
    (old,) = replica_actors("PoolIngress")
    kill_replica("PoolIngress", old)
    deadline = time.monotonic() + RECOVERY_TIMEOUT
    while not (set(replica_actors("PoolIngress")) - {old} and client.alive()):
        assert time.monotonic() < deadline, "Serve did not restart the ingress"
        time.sleep(0.5)
    # the same address, a new ingress: the result comes back from the shared folder
    assert client.variant(finished["id"], 1) == audio
    assert client.job(finished["id"]) == finished
    interrupted = client.job(running["id"])
    assert interrupted["state"] == "failed" and "submit it again" in interrupted["error"]
    # the run that ingress asked for stopped: both replicas take new jobs, no half-written files stay behind
    with ThreadPoolExecutor(2) as threads:
        both = list(threads.map(lambda seed: finish(client, submit(client, seed, steps=10)["id"]), (12, 13)))
    assert {record["replica"] for record in both} == set(replica_actors("EngineReplica"))
    assert not list((pool.shared / "jobs").glob(".*"))
