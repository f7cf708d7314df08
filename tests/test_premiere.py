"""The Premiere Pro UXP panel: its logic under node against a fake `premierepro` that follows Adobe's reference
(tests/premiere/*.test.js), driven end to end against a real `foley serve` with the test-sized model, and the
.ccx that `foley premiere-plugin` builds. Premiere itself cannot run here."""

import json
import random
import re
import subprocess
import zipfile
from fractions import Fraction
from pathlib import Path

import soundfile

from editor_plugin.edit import Layered, visible
from editor_plugin.premiere import PLUGIN
from engine.training.sample_video import make_demo_video
from tests.conftest import installed
from tests.engine_process import ROOT, engine_with_test_model
from ui.cli import main

NODE_TESTS = ROOT / "tests" / "premiere"
TPS = 254016000000


def node(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([installed("node"), *args], capture_output=True, text=True, cwd=ROOT, timeout=timeout)


def test_the_panel_logic_passes_its_node_tests():
    run = node("--test", *sorted(str(p) for p in NODE_TESTS.glob("*.test.js")))
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert "# fail 0" in run.stdout and "# pass 0" not in run.stdout


def test_the_panel_follows_the_same_on_screen_rule_as_the_python_bridges():
    rng = random.Random(7)
    cases = []
    for _ in range(40):
        pieces = []
        for n in range(rng.randint(0, 5)):
            start = rng.randint(0, 40)
            pieces.append((rng.randint(0, 2), start, start + rng.randint(1, 20), rng.randint(0, 30), n))
        cases.append({"pieces": pieces, "start": rng.randint(0, 30), "end": rng.randint(31, 60)})
    script = ("const {visible} = require('./editor_plugin/premiere_uxp/lib/visible.js');"
              "const cases = JSON.parse(process.argv[1]);"
              "console.log(JSON.stringify(cases.map((c) => visible(c.pieces.map(([layer, s, e, src, id]) => ({layer,"
              " recordStart: BigInt(s), recordEnd: BigInt(e), sourceStart: BigInt(src), item: id})), BigInt(c.start),"
              " BigInt(c.end)).map((p) => [p.item, Number(p.recordStart), Number(p.recordEnd), Number(p.sourceStart)]))));")
    run = node("-e", script, json.dumps(cases))
    assert run.returncode == 0, run.stderr
    expected = []
    for case in cases:
        ids = {n: object() for *_, n in case["pieces"]}
        pieces = [Layered(layer, Fraction(s), Fraction(e), Fraction(src), ids[n]) for layer, s, e, src, n in case["pieces"]]
        names = {id(obj): n for n, obj in ids.items()}
        expected.append([[names[id(p.item)], int(p.record_start), int(p.record_end), int(p.source_start)]
                         for p in visible(pieces, Fraction(case["start"]), Fraction(case["end"]))])
    assert json.loads(run.stdout) == expected


def test_the_panel_generates_plays_and_places_with_a_real_engine(tmp_path):
    home = tmp_path / "home"
    engine = engine_with_test_model(home)
    try:
        args = {"video": str(make_demo_video(tmp_path / "ball.mp4", seconds=4.0)), "project": str(tmp_path / "cut.prproj"),
                "discovery": str(home / "run" / "engine.json"), "url": engine.url, "token": engine.token}
        run = node(str(NODE_TESTS / "e2e_drive.js"), json.dumps(args))
    finally:
        engine.stop()
    assert run.returncode == 0, run.stderr[-4000:] + engine.log_text()[-2000:]
    report = json.loads(run.stdout)
    first = report["first"]
    assert first["url"] == engine.url and first["state"] == "done"
    states = [line.split("|") for line in first["seen"]]  # what the panel showed, in order
    assert any(state == "running" and re.fullmatch(r"window 1/1 · sample 1/1 · ETA \d+:\d\d", progress)
               for state, progress in states), states
    assert states[-1][0] == "done"
    # record 1-3 s (frames 25-75 at 25 fps) showing the file from 0.4 s (its in-point, 10 frames)
    assert first["request"]["edit"] == [{"media": args["video"], "record_start": "1", "record_end": "3",
                                         "source_start": "2/5"}]
    assert (first["request"]["startTicks"], first["request"]["endTicks"]) == (str(TPS), str(3 * TPS))

    folder = tmp_path / "Foley Desk"
    wavs = [Path(v["path"]) for v in first["variants"]]
    assert [w.parent for w in wavs] == [folder, folder] and not list(folder.glob(".*"))
    for variant, wav in zip(first["variants"], wavs):
        info = soundfile.info(str(wav))
        assert (info.samplerate, info.frames) == (16000, 32000)  # exactly the 2 s range
        assert variant["lengthTicks"] == str(2 * TPS)
        sidecar = json.loads(wav.with_suffix(".json").read_text())
        assert sidecar["seed"] == variant["seed"] and sidecar["sync_score"] == variant["sync_score"]
        # 2 fps over record 1-3 s shows source 0.4, 0.9, 1.4, 1.9 s: the 25 fps frames on screen then
        assert sidecar["source"]["frame_times"] == ["2/5", "22/25", "7/5", "47/25"]
    assert [v["seed"] for v in first["variants"]] == [3, 4]
    assert first["sourceMonitor"] == {"path": str(wavs[1]), "playing": 1}

    # A1 holds dialogue over the range, so variant 1 went on A2 at tick 254016000000 (1 s) for exactly 2 s
    assert first["placed"] == {"track": "A2", "isNew": False}
    assert first["track"] == [{"name": wavs[0].name, "start": str(TPS), "end": str(3 * TPS)}]
    assert first["dialogue"] == [f"dialogue 0-{4 * TPS}"]
    assert first["undo"] == ["Foley Desk: make the Foley bin", f"Foley Desk: place {wavs[0].name}"]

    cancel = report["cancel"]
    assert cancel["state"] == "cancelled" and cancel["variants"] == 0, cancel


def test_premiere_plugin_builds_an_installable_ccx(tmp_path, capsys):
    out = tmp_path / "foley_desk.ccx"
    assert main(["premiere-plugin", "-o", str(out)]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    with zipfile.ZipFile(out) as archive:
        names = set(archive.namelist())
        manifest = json.loads(archive.read("manifest.json"))
        index = archive.read("index.js").decode()
    assert names == {p.relative_to(PLUGIN).as_posix() for p in PLUGIN.rglob("*") if p.is_file()}
    assert {"manifest.json", "index.html", "index.js", "lib/panel_model.js", "lib/place.js"} <= names
    assert manifest["manifestVersion"] == 5 and manifest["main"] in names
    assert manifest["host"]["app"] == "premierepro"
    assert tuple(int(n) for n in manifest["host"]["minVersion"].split(".")) >= (25, 6, 0)
    assert [e["type"] for e in manifest["entrypoints"]] == ["panel"]
    assert manifest["requiredPermissions"]["network"]["domains"] == ["http://127.0.0.1", "http://localhost",
                                                                     "http://[::1]"]
    for required in (line.split('"')[1] for line in index.splitlines() if "require(\"./" in line):
        assert required.removeprefix("./") in names  # every module the panel loads ships in the package


def test_premiere_plugin_refuses_a_bad_output_path_in_one_line(tmp_path, capsys):
    for bad in (tmp_path / "missing" / "foley.ccx", tmp_path / "foley.zip", tmp_path):
        assert main(["premiere-plugin", "-o", str(bad)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith(f"error: {bad}")
    assert not list(tmp_path.iterdir())
