"""Every host bridge fulfils the contract; the open-in-editor check finds a real running process."""

import inspect
import os
import subprocess
import sys
import time
from fractions import Fraction

import pytest
from opentimelineio.opentime import RationalTime

from editor_plugin import mlt, resolve
from editor_plugin.contract import CONTRACT, Capabilities, Placement, contract_gaps, has_feature
from editor_plugin.hosts import BRIDGES
from tests.projects import burst, kdenlive_project

BRIDGE_MODULES = sorted({*BRIDGES.values(), resolve}, key=lambda module: module.__name__)


@pytest.mark.parametrize("bridge", BRIDGE_MODULES, ids=[module.__name__.split(".")[-1] for module in BRIDGE_MODULES])
def test_bridges_fulfil_the_contract(bridge):
    assert all(has_feature(bridge, name) for name in CONTRACT)
    assert isinstance(bridge.CAPABILITIES, Capabilities) and bridge.host_name()
    for name in ("read_timeline", "read_selection", "write_audio_clips"):  # every bridge takes a named sequence
        assert "sequence" in inspect.signature(getattr(bridge, name)).parameters, (bridge.__name__, name)
    assert contract_gaps(bridge) == []  # the HostBridge protocol, keyword by keyword


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
