"""Every host bridge fulfils the contract; the open-in-editor check finds a real running process."""

import os
import subprocess
import sys
import time
from fractions import Fraction

import pytest
from opentimelineio.opentime import RationalTime

from editor_plugin import interchange, mlt, resolve
from editor_plugin.contract import CONTRACT, Capabilities, Placement, has_feature
from tests.projects import burst, kdenlive_project


@pytest.mark.parametrize("bridge", [mlt, interchange, resolve], ids=["mlt", "interchange", "resolve"])
def test_bridges_fulfil_the_contract(bridge):
    assert all(has_feature(bridge, name) for name in CONTRACT)
    assert isinstance(bridge.CAPABILITIES, Capabilities) and bridge.host_name()


def test_writing_a_project_open_in_kdenlive_warns(tmp_path):
    project = kdenlive_project(tmp_path, Fraction(25))
    fake_editor = tmp_path / "bin" / "kdenlive"  # a real process whose program name is kdenlive
    fake_editor.parent.mkdir()
    os.symlink(sys.executable, fake_editor)
    editor = subprocess.Popen([str(fake_editor), "-c", "import time; time.sleep(60)", str(project)])
    try:
        time.sleep(0.2)
        report = mlt.write_audio_clips(project, [Placement(burst(tmp_path / "f.wav"), RationalTime(10, 25),
                                                           RationalTime(16000, 16000), "f")])
    finally:
        editor.kill()
        editor.wait()
    (warning,) = report.warnings
    assert f"kdenlive (pid {editor.pid})" in warning and "reload it there" in warning
