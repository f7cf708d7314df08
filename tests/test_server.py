"""The engine server as a real `foley serve` process on loopback, driven by the stdlib client, tiny model."""

import http.client
import json
import stat
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, replace
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import soundfile

from engine.config import SAMPLING_PRESETS
from engine.core.generate import generate, range_samples
from engine.core.levels import apply_gain, variant_level
from engine.core.output import to_pcm16
from engine.models import load_model, place
from engine.serving.client import (
    FRAMES_CONTENT_TYPE,
    EngineClient,
    EngineConnectionLost,
    EngineRefused,
    JobCancelled,
    read_discovery,
)
from engine.training.sample_video import make_demo_video
from engine.video import decode_frames
from tests.engine_process import FOLEY, EngineProcess, engine_with_test_model, raw_request
from ui.cli import main

JOB_TIMEOUT = 120  # seconds; every wait in these tests is bounded


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    # the test-sized published-layout model (2 fps, 224x224) is the default; the built-in starter is listed too
    process = engine_with_test_model(tmp_path_factory.mktemp("engine") / "home", "--max-queue", "3",
                                     "--max-request-mb", "8")
    yield process
    process.stop()


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return make_demo_video(tmp_path_factory.mktemp("media") / "ball.mp4", seconds=4.0)


def frames_body(header: dict, pixels: bytes) -> bytes:
    return json.dumps(header).encode() + b"\n" + pixels


def good_header(**changes) -> dict:
    header = {"format": "FoleyFrames.1", "count": 4, "width": 64, "height": 48, "fps": 2, "start": "0", "end": "2",
              "frame_times": ["0", "1/2", "1", "3/2"], "seeds": [3], "steps": 1, "source": "/shots/a.mov"}
    return {**header, **changes}


def picture_stack(count: int, height: int = 48, width: int = 64) -> np.ndarray:
    rng = np.random.default_rng(count)
    return rng.integers(0, 256, (count, height, width, 3), dtype=np.uint8)


ROUTES = [
    ("GET", "/v1/models"),
    ("GET", "/v1/jobs"),
    ("POST", "/v1/jobs"),
    ("GET", "/v1/jobs/abc"),
    ("GET", "/v1/jobs/abc/events"),
    ("POST", "/v1/jobs/abc/cancel"),
    ("DELETE", "/v1/jobs/abc"),
    ("GET", "/v1/jobs/abc/variants/1.wav"),
    ("GET", "/v1/jobs/abc/variants/1.json"),
    ("GET", "/v1/no-such-route"),
    ("GET", "/docs"),
]


@pytest.mark.parametrize("authorization", [None, "Bearer wrong-token", "Basic abc", "Bearer "])
def test_every_route_but_health_needs_the_token(engine, authorization):
    headers = {"Authorization": authorization} if authorization else {}
    for method, path in ROUTES:
        response, data = raw_request(engine, method, path, b"{}" if method == "POST" else None, headers)
        assert response.status == 401, (method, path, data)
        assert "engine token" in json.loads(data)["detail"]
    response, data = raw_request(engine, "GET", "/v1/health", headers=headers)
    health = json.loads(data)
    assert response.status == 200 and health["device"] == "cpu" and health["max_queue"] == 3
    assert health["free_memory_bytes"] > 0 and "token" not in data.decode()


def test_discovery_file_is_private_and_complete(engine):
    path = engine.home / "run" / "engine.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    info = json.loads(path.read_text())
    assert info["url"].startswith("http://127.0.0.1:") and len(info["token"]) >= 32
    assert info["pid"] == engine.process.pid and info["version"] and info["device"] == "cpu"


def test_oversized_requests_are_refused_with_413(engine):
    auth = {"Authorization": f"Bearer {engine.token}", "Content-Type": FRAMES_CONTENT_TYPE}
    big = b"\0" * (9 << 20)
    response, data = raw_request(engine, "POST", "/v1/jobs", big, auth)
    assert response.status == 413 and "at most" in json.loads(data)["detail"]

    # without a Content-Length (chunked), the body is cut off while it is read
    conn = http.client.HTTPConnection("127.0.0.1", int(engine.url.rsplit(":", 1)[1]), timeout=30)
    chunks = (b"\0" * (1 << 20) for _ in range(9))
    conn.request("POST", "/v1/jobs", body=chunks, headers=auth, encode_chunked=True)
    response = conn.getresponse()
    assert response.status == 413 and "larger than this engine accepts" in json.loads(response.read())["detail"]
    conn.close()


MALFORMED = [
    (b"no header line", "one-line JSON header"),
    (b"{not json\n", "header is not valid JSON"),
    (frames_body({"format": "Other.1"}, b""), '"format": "FoleyFrames.1"'),
    (frames_body(good_header(width=0), b""), "count, width and height"),
    (frames_body(good_header(), picture_stack(4).tobytes()[:-5]), "send the frames as packed RGB24"),
    (frames_body(good_header(count=3, frame_times=["0", "1/2", "1"]), picture_stack(3).tobytes()), "needs 4 frames"),
    (frames_body(good_header(frame_times=["0"]), picture_stack(4).tobytes()), "one source time per frame"),
    (frames_body(good_header(fps=25), picture_stack(4).tobytes()), "sampled at 2 fps"),
    (frames_body(good_header(model="nope"), picture_stack(4).tobytes()), "Model 'nope' is not installed"),
    (frames_body(good_header(steps=0), picture_stack(4).tobytes()), "steps=0 is out of range"),
    (frames_body(good_header(seeds=list(range(17))), picture_stack(4).tobytes()), "17 variants requested"),
    (frames_body(good_header(seeds="3"), picture_stack(4).tobytes()), "'seeds' must be a list"),
    (frames_body(good_header(end="x"), picture_stack(4).tobytes()), "'end' must be a time in seconds"),
    (frames_body(good_header(sampler="euler"), picture_stack(4).tobytes()), "sampler 'euler' is not available"),
]


@pytest.mark.parametrize(("body", "message"), MALFORMED)
def test_malformed_frame_uploads_get_422_with_a_message(engine, body, message):
    with pytest.raises(EngineRefused) as caught:
        engine.client.request("POST", "/jobs", body, FRAMES_CONTENT_TYPE)
    assert caught.value.status == 422
    assert message in str(caught.value)


def test_bad_media_jobs_get_422(engine, tmp_path):
    with pytest.raises(EngineRefused, match="No such video file") as caught:
        engine.client.submit_media(str(tmp_path / "missing.mp4"), "0", "1", seeds=[1])
    assert caught.value.status == 422
    with pytest.raises(EngineRefused, match="unsupported Content-Type 'text/plain'"):
        engine.client.request("POST", "/jobs", b"hello", "text/plain")


def test_frames_job_streams_ordered_progress_and_serves_its_variants(engine, tmp_path):
    pixels = picture_stack(4)  # 64x48: the engine fits them to the model's 224x224 itself
    job = engine.client.submit_frames(pixels.tobytes(), count=4, width=64, height=48, fps=2, start="0", end="2",
                                      frame_times=["0", "1/2", "1", "3/2"], seeds=[11, 12], steps=3,
                                      source="/shots/a.mov")
    assert job["state"] in ("queued", "running") and job["params"]["input"] == "frames"
    events = []
    record = engine.client.wait(job["id"], on_event=events.append)
    assert [e["seq"] for e in events] == list(range(len(events)))
    assert events[0] == {"seq": 0, "event": "state", "state": "queued", "position": 1}
    assert events[-1]["event"] == "done" and record["state"] == "done"
    sample_steps = [(e["variant"], e["step"]) for e in events if e.get("stage") == "sample"]
    assert sample_steps == [(0, s) for s in range(4)]  # both variants sample in one batch
    # replay after a given event id resumes exactly there
    assert list(engine.client.events(job["id"], after=events[-3]["seq"])) == events[-2:]

    paths = engine.client.download(job["id"], tmp_path / "out")
    assert [p.name for p in paths] == ["a_0.000-2.000_v1_seed11.wav", "a_0.000-2.000_v2_seed12.wav"]
    for path, seed in zip(paths, (11, 12)):
        info = soundfile.info(path)
        assert (info.frames, info.samplerate) == (range_samples(Fraction(0), Fraction(2), 16000), 16000)
        meta = json.loads(path.with_suffix(".json").read_text())
        assert meta["seed"] == seed and meta["source"]["path"] == "/shots/a.mov" and meta["steps"] == 3
    assert not list((tmp_path / "out").glob(".*"))
    with pytest.raises(EngineRefused, match="no variant 3") as caught:
        engine.client.variant(job["id"], 3)
    assert caught.value.status == 404
    engine.client.delete(job["id"])
    assert not (engine.home / "cache" / "jobs" / job["id"]).exists()
    with pytest.raises(EngineRefused, match="No job") as caught:
        engine.client.job(job["id"])
    assert caught.value.status == 404


def test_edit_jobs_decode_each_span_from_its_source_in_point(engine, clip):
    edit = [{"media": str(clip), "record_start": "0", "record_end": "1", "source_start": "2"},
            {"media": str(clip), "record_start": "1", "record_end": "2", "source_start": "1/2"}]
    job = engine.client.submit_edit(edit, "0", "2", seeds=[4], steps=1, source="/projects/cut.kdenlive")
    assert engine.client.wait(job["id"])["params"]["input"] == "edit"
    sidecar = json.loads(engine.client.variant(job["id"], 1, "json"))
    # record 0, 0.5, 1, 1.5 s show source 2, 2.5, 0.5, 1 s: the 25 fps frames on screen then
    assert sidecar["source"]["frame_times"] == ["2", "62/25", "12/25", "1"]
    assert sidecar["source"]["path"] == "/projects/cut.kdenlive"
    with pytest.raises(EngineRefused, match="goes past the end of ball.mp4"):
        engine.client.submit_edit([{**edit[0], "source_start": "3.5"}], "0", "1", seeds=[1])


def test_models_route_lists_licences_and_input_format(engine):
    builtin, tiny = engine.client.models()
    assert builtin["name"] == "builtin" and not builtin["default"] and builtin["trained"] is True
    assert (builtin["frame_rate"], builtin["image_size"], builtin["window_seconds"]) == (25, 64, "4")
    assert tiny["name"] == "tiny" and tiny["default"]
    assert (tiny["frame_rate"], tiny["image_size"], tiny["window_seconds"]) == (2, 224, "256/25")
    assert builtin["licences"][0]["licence"] and tiny["licences"][0]["licence"]


def test_twenty_concurrent_clients_none_lost_none_duplicated(engine):
    pixels = picture_stack(2, 224, 224).tobytes()

    def submit_and_wait(seed: int):
        client = EngineClient(engine.url, engine.token)
        try:
            job = client.submit_frames(pixels, count=2, width=224, height=224, fps=2, start="0", end="1",
                                       frame_times=["0", "1/2"], seeds=[seed], steps=1)
        except EngineRefused as exc:
            assert exc.status == 429 and exc.retry_after >= 1, exc
            return seed, None, None
        record = client.wait(job["id"])
        sidecar = json.loads(client.variant(job["id"], 1, "json"))
        return seed, record, sidecar

    with ThreadPoolExecutor(max_workers=20) as pool:
        futures = [pool.submit(submit_and_wait, 1000 + i) for i in range(20)]
        results = [future.result(timeout=JOB_TIMEOUT) for future in futures]
    done = [(seed, record, sidecar) for seed, record, sidecar in results if record is not None]
    refused = [seed for seed, record, _ in results if record is None]
    assert len(done) + len(refused) == 20 and done and refused
    ids = [record["id"] for _, record, _ in done]
    assert len(set(ids)) == len(ids)
    for seed, record, sidecar in done:
        assert record["state"] == "done" and record["params"]["seeds"] == [seed] and sidecar["seed"] == seed
    listed = [job["id"] for job in engine.client.jobs()]
    assert all(listed.count(job_id) == 1 for job_id in ids)


def test_cancel_mid_job_leaves_no_files(engine):
    job = engine.client.submit_frames(picture_stack(2, 224, 224).tobytes(), count=2, width=224, height=224, fps=2,
                                      start="0", end="1", frame_times=["0", "1/2"], seeds=[5], steps=900)
    seen = []

    def cancel_once_sampling(event):
        seen.append(event)
        if event.get("stage") == "sample" and event["step"] == 2:
            engine.client.cancel(job["id"])

    with pytest.raises(JobCancelled, match="nothing was kept"):
        engine.client.wait(job["id"], on_event=cancel_once_sampling)
    assert max(e["step"] for e in seen if e.get("stage") == "sample") < 900
    assert engine.client.job(job["id"])["state"] == "cancelled"
    results = engine.home / "cache" / "jobs"
    assert not (results / job["id"]).exists() and not list(results.glob(".*"))
    with pytest.raises(EngineRefused, match="cancelled; its variants exist only once it is done"):
        engine.client.variant(job["id"], 1)


def test_cli_generate_on_the_engine_matches_the_in_process_run(engine, clip, tmp_path, capsys):
    common = ["generate", str(clip), "--start", "1", "--end", "5/2", "--seed", "9", "--steps", "2", "--model", "builtin",
              "--preset", "fast"]
    assert main([*common, "--engine", engine.url, "--token", engine.token, "-o", str(tmp_path / "remote")]) == 0
    assert "window 1/1" in capsys.readouterr().err
    assert main([*common, "-o", str(tmp_path / "here")]) == 0
    (remote,), (here,) = sorted((tmp_path / "remote").glob("*.wav")), sorted((tmp_path / "here").glob("*.wav"))
    assert remote.name == here.name == "ball_1.000-2.500_v1_seed9.wav"
    a, b = soundfile.read(remote, dtype="int16")[0], soundfile.read(here, dtype="int16")[0]
    assert len(a) == len(b) == 24_000 and np.array_equal(a, b)


@pytest.mark.parametrize("preset", ["reference", "fast"])
def test_one_seed_one_sound_through_the_engine_and_in_process(engine, clip, tmp_path, monkeypatch, preset):
    # the fast preset's trailing timesteps once stayed behind in the client, so the engine sampled leading ones
    sampling = replace(SAMPLING_PRESETS[preset], steps=3)
    seeds = [5, 6]
    monkeypatch.setenv("FOLEY_HOME", str(engine.home))  # the engine's own test-sized model, loaded here too
    components = place(load_model("tiny"), "cpu", "auto")
    config = components.config
    start, end = Fraction(1), Fraction(5, 2)
    frames = decode_frames(clip, start, end, rate=config.frame_rate, size=config.vision.image_size)
    here = generate(frames, components=components, sampling=sampling, seeds=tuple(seeds))
    params = {"seeds": seeds, "model": "tiny", "steps": sampling.steps, "sampler": sampling.sampler,
              "spacing": sampling.spacing}
    size = config.vision.image_size
    uploaded = engine.client.submit_frames(frames.rgb.tobytes(), count=len(frames.rgb), width=size, height=size,
                                           fps=config.frame_rate, start="1", end="5/2",
                                           frame_times=[str(t) for t in frames.times], **params)
    decoded = engine.client.submit_media(str(clip), "1", "5/2", **params)
    for name, job in (("uploaded", uploaded), ("decoded", decoded)):
        engine.client.wait(job["id"])
        wavs = engine.client.download(job["id"], tmp_path / name)
        sidecars = [json.loads(wav.with_suffix(".json").read_text()) for wav in wavs]
        for wav, variant, sidecar in zip(wavs, here.variants, sidecars, strict=True):
            # the same samples as here, written at the same level (the gain is a function of the samples)
            assert sidecar["level"] == asdict(variant_level(variant.audio, here.sample_rate)), (name, wav.name)
            expected = to_pcm16(apply_gain(variant.audio, sidecar["level"]["gain_db"]))
            assert np.array_equal(soundfile.read(wav, dtype="int16")[0], expected), (name, wav.name)
        assert all(sidecar["spacing"] == sampling.spacing for sidecar in sidecars)
        # the job's result carries each variant's sync score, as its sidecar does
        scores = [item["sync_score"] for item in engine.client.job(job["id"])["variants"]]
        assert scores == [sidecar["sync_score"] for sidecar in sidecars] and all(0 <= s <= 1 for s in scores)


def test_cli_engine_errors_are_clear(engine, clip, tmp_path, capsys):
    args = ["generate", str(clip), "--end", "1", "--steps", "1", "-o", str(tmp_path / "out")]
    assert main([*args, "--engine", engine.url, "--token", "wrong"]) == 2
    assert "engine token" in capsys.readouterr().err
    assert main([*args, "--engine", "http://127.0.0.1:9"]) == 2
    assert "needs its token" in capsys.readouterr().err
    assert main([*args, "--engine", "http://127.0.0.1:9", "--token", "x"]) == 2
    assert "Cannot reach the engine" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_kill_mid_job_is_a_clear_error_and_restart_keeps_finished_results(tmp_path):
    home = tmp_path / "home"
    first = engine_with_test_model(home)
    stack = picture_stack(2, 224, 224).tobytes()
    submit = dict(count=2, width=224, height=224, fps=2, start="0", end="1", frame_times=["0", "1/2"])
    finished = first.client.submit_frames(stack, seeds=[1], steps=1, **submit)
    first.client.wait(finished["id"])
    audio = first.client.variant(finished["id"], 1)
    doomed = first.client.submit_frames(stack, seeds=[2], steps=900, **submit)

    def kill_once_sampling(event):
        if event.get("stage") == "sample" and event["step"] == 1:
            first.kill()

    with pytest.raises(EngineConnectionLost, match="stopped while job .* was running.*submit this job again"):
        first.client.wait(doomed["id"], on_event=kill_once_sampling)

    second = EngineProcess(home)
    try:
        assert second.client.variant(finished["id"], 1) == audio
        record = second.client.job(doomed["id"])
        assert record["state"] == "failed" and "submit it again" in record["error"]
        events = list(second.client.events(doomed["id"]))
        assert [e["event"] for e in events] == ["failed"]
        assert not list((home / "cache" / "jobs").glob(".*"))
        again = second.client.submit_frames(stack, seeds=[2], steps=1, **submit)
        assert second.client.wait(again["id"])["state"] == "done"
    finally:
        second.stop()
    assert not (home / "run" / "engine.json").exists()  # a clean stop withdraws the announcement


def test_client_starts_an_engine_when_none_runs(foley_home):
    assert read_discovery() is None
    client = EngineClient.connect(start=True, command=[FOLEY, "serve"], timeout=60)
    info = read_discovery()
    try:
        assert client.url == info.url and client.health()["status"] == "ok"
        assert EngineClient.connect().url == client.url  # a second client finds the same engine
        run = subprocess.run([FOLEY, "serve"], capture_output=True, text=True, timeout=60)
        assert run.returncode == 2 and "already running" in run.stderr
    finally:
        subprocess.run(["kill", "-TERM", str(info.pid)], check=True)
    for _ in range(100):
        if not (foley_home / "run" / "engine.json").exists():
            break
        time.sleep(0.1)
    assert not (foley_home / "run" / "engine.json").exists()


def test_binding_beyond_loopback_needs_a_flag(tmp_path):
    run = subprocess.run([FOLEY, "serve", "--host", "0.0.0.0"], capture_output=True, text=True, timeout=60,
                         env={"FOLEY_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert run.returncode == 2 and "--allow-remote" in run.stderr


def test_client_imports_with_the_standard_library_only():
    root = Path(__file__).parents[1]
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import engine.serving.client; "
            "print(sorted(m for m in ('numpy', 'torch', 'fastapi') if m in sys.modules))")
    run = subprocess.run([sys.executable, "-I", "-S", "-c", code, str(root)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "[]"


def test_a_job_says_how_its_wavs_are_levelled_and_an_unknown_level_is_refused():
    from engine.serving.server import parse_media_job

    job = {"media": "/shots/a.mov", "start": "0", "end": "1", "seeds": [1]}
    assert parse_media_job(json.dumps(job).encode()).level == "normalised"
    assert parse_media_job(json.dumps({**job, "level": "raw"}).encode()).level == "raw"
    with pytest.raises(ValueError, match="'level' must be one of normalised, raw; got 'loud'"):
        parse_media_job(json.dumps({**job, "level": "loud"}).encode())


def test_a_remote_engine_gets_the_frames_a_window_at_a_time(engine, tmp_path, monkeypatch):
    """`foley generate --engine` to another machine streams the decoded frames a model window per request (so any
    length fits the request limit); the engine puts them together into the same sound as decoding the file."""
    from argparse import Namespace

    from engine.core.job import JobSpec
    from engine.serving.client import EngineClient
    from engine.video import EditSpan
    from ui.commands.generate import _run_on_engine

    long_clip = make_demo_video(tmp_path / "long.mp4", seconds=12.0)  # two windows of the 2 fps test model
    remote = EngineClient(engine.url, engine.client.token)
    remote.local = False  # as for an engine on another machine
    parts = []
    monkeypatch.setattr(remote, "upload_frames", lambda *a, **k: parts.append(k["count"]) or
                        EngineClient.upload_frames(remote, *a, **k))
    sampling = replace(SAMPLING_PRESETS["fast"], steps=1)
    spec = JobSpec(model="tiny", sampling=sampling, seeds=(7,), start=Fraction(0), end=Fraction(12), source="long",
                   edit=(EditSpan(long_clip, Fraction(0), Fraction(12), Fraction(0)),))
    args = Namespace(model="tiny", output=str(tmp_path / "streamed"), preset="fast", sampler=None, steps=1,
                     guidance=None)
    (streamed,) = _run_on_engine(remote, spec, args)
    assert parts == [20]  # the first 10 s window went ahead; the last 2 s came with the job
    decoded = engine.client.submit_media(str(long_clip), "0", "12", seeds=[7], model="tiny", steps=1,
                                         sampler=sampling.sampler, spacing=sampling.spacing, source="long")
    engine.client.wait(decoded["id"])
    (reference,) = engine.client.download(decoded["id"], tmp_path / "decoded")
    assert np.array_equal(soundfile.read(streamed, dtype="int16")[0], soundfile.read(reference, dtype="int16")[0])
