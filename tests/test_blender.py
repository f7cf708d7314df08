"""The Blender add-on in real headless Blender against a real engine: strips placed at the exact frame, sampled
with each model's own presets, a prompt sent only to a model that takes text and kept on the strips it made."""

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import soundfile

from editor_plugin.blender import build_addon
from engine.training.sample_video import make_demo_video
from engine.vta_ldm.checkpoint import import_snapshot
from tests.conftest import installed
from tests.engine_process import EngineProcess, install_mmaudio_tiny
from tests.published_layout import build_snapshot

SCENARIO = Path(__file__).with_name("blender_scenario.py")


def test_addon_generates_for_selected_strip_and_preview_range(tmp_path):
    home = tmp_path / "home"
    # the test-sized imported checkpoint makes audible output, unlike the untrained built-in model
    build_snapshot(tmp_path / "snap")
    import_snapshot(tmp_path / "snap", home / "models")
    text_model = install_mmaudio_tiny(home)
    engine = EngineProcess(home)
    try:
        args = {"zip": str(build_addon(tmp_path / "foley_desk.zip")),
                "video": str(make_demo_video(tmp_path / "clip.mp4", seconds=4.0)), "model": "tiny",
                "text_model": text_model,
                "out": str(tmp_path / "out"), "mix": str(tmp_path / "mix.wav"), "report": str(tmp_path / "report.json")}
        env = {**os.environ, "FOLEY_HOME": str(home), "BLENDER_USER_SCRIPTS": str(tmp_path / "scripts")}
        run = subprocess.run([installed("blender"), "-b", "--factory-startup", "--python", str(SCENARIO), "--", json.dumps(args)],
                             capture_output=True, text=True, env=env, timeout=600)
    finally:
        engine.stop()
    assert run.returncode == 0 and (tmp_path / "report.json").is_file(), run.stdout[-3000:] + run.stderr[-3000:]
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["first"] == report["second"] == ["FINISHED"]
    placed = [(s["channel"], s["start"], s["end"], s["mute"]) for s in report["sounds"]]
    # the trimmed strip shows frames 36-110; the preview range is 50-74; channels 1-2 hold the movies
    assert placed == [(3, 36, 111, False), (4, 36, 111, True), (5, 50, 75, False)]
    lengths = [soundfile.info(s["path"]).frames for s in report["sounds"]]
    assert lengths == [48000, 48000, 16000]  # 3 s and 1 s at 16 kHz

    preview = json.loads(Path(report["sounds"][2]["path"]).with_suffix(".json").read_text())
    # 2 fps over record 1.96-2.96 s: at 1.96 s the movie shows source 1.56 s, at 2.46 s the insert on top shows 0.10 s
    assert preview["source"]["frame_times"] == ["39/25", "2/25"]

    mix, rate = soundfile.read(tmp_path / "mix.wav")
    mono = mix.mean(axis=1)
    onset = int(np.argmax(np.abs(mono) > 0.005))
    assert abs(onset - 35 * 48000 // 25) <= 48  # frame 36 of a scene starting at frame 1, within 1 ms
    level = np.abs(mono)
    expected = 49 * 48000 // 25  # the preview-range strip joins at frame 50
    plateau = level[expected - 4800 : expected - 48].mean()
    change = expected - 4800 + int(np.argmax(np.abs(level[expected - 4800 :] - plateau) > 0.005))
    assert abs(change - expected) <= 48

    # VTA-LDM's own fast preset at the panel's 1 step; the prompt typed for it was not sent (the engine refuses it)
    made = json.loads(Path(report["sounds"][0]["path"]).with_suffix(".json").read_text())
    assert (made["sampler"], made["spacing"], made["steps"], made["guidance"]) == ("dpmpp_2m", "trailing", 1, 3.0)
    assert made["prompt"] == "" and report["sounds"][0]["made"] == {
        "foley_model": "tiny", "foley_seed": 5, "foley_prompt": "", "foley_negative_prompt": ""}
    assert report["sounds"][1]["made"]["foley_seed"] == 6
    states = report["prompt_state"]
    assert states["unknown"] == [True, ""]  # not fetched yet: the fields are shown, and checked at Generate
    assert states["tiny"] == [False, "tiny takes no text prompt: the picture alone decides the sound"]
    assert states["mmaudio-tiny"] == [True, ""]

    # MMAudio: its own Euler preset and guidance (never VTA-LDM's sampler), the prompts in the job and on the strip
    assert report["text"] == ["FINISHED"]
    params, note = report["text_params"]
    assert params == {"seeds": [3], "model": "mmaudio-tiny", "sampler": "euler", "spacing": "leading", "steps": 2,
                      "guidance": 4.5, "prompt": "footsteps on gravel", "negative_prompt": "music"} and note == ""
    assert report["text_recipe"] == "euler, 2 steps, guidance 4.5"
    (strip,) = report["text_sounds"]
    assert (strip["start"], strip["end"]) == (50, 75) and strip["made"] == {
        "foley_model": "mmaudio-tiny", "foley_seed": 3, "foley_prompt": "footsteps on gravel",
        "foley_negative_prompt": "music"}
    made = json.loads(Path(strip["path"]).with_suffix(".json").read_text())
    assert (made["model"]["family"], made["sampler"], made["steps"], made["guidance"]) == ("mmaudio", "euler", 2, 4.5)
    assert (made["prompt"], made["negative_prompt"]) == ("footsteps on gravel", "music")


def test_the_addon_starts_engines_with_the_python_foley_desk_is_installed_in(tmp_path):
    import sys
    import zipfile

    with zipfile.ZipFile(build_addon(tmp_path / "foley_desk.zip")) as archive:
        command = json.loads(archive.read("foley_desk/engine_command.json"))
    assert command == [sys.executable, "-P", "-m", "ui.cli", "serve"]  # not a `foley` looked up on PATH
    help_run = subprocess.run([*command[:-1], "--help"], capture_output=True, text=True, cwd=tmp_path,
                              env={"PATH": "/usr/bin:/bin"})
    assert help_run.returncode == 0 and "serve" in help_run.stdout
