"""Package the Blender add-on: the add-on module plus the engine's stdlib-only client and edit rule, and the
command that starts an engine with the Python this Foley Desk is installed in (Blender's own Python has none)."""

import json
import sys
import zipfile
from pathlib import Path

import editor_plugin.edit
import engine.serving.client

ADDON = Path(__file__).with_name("blender_addon") / "__init__.py"
PACKAGE = "foley_desk"
ENGINE_COMMAND = "engine_command.json"


def build_addon(out: Path) -> Path:
    """Write the installable zip (Blender: Preferences > Add-ons > Install...); return its path."""
    out.parent.mkdir(parents=True, exist_ok=True)
    part = out.with_name(f".{out.name}.part")
    with zipfile.ZipFile(part, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.write(ADDON, f"{PACKAGE}/__init__.py")
        archive.write(engine.serving.client.__file__, f"{PACKAGE}/foley_client.py")
        archive.write(editor_plugin.edit.__file__, f"{PACKAGE}/foley_edit.py")
        # -P: the folder Blender runs in must not shadow the installed packages
        archive.writestr(f"{PACKAGE}/{ENGINE_COMMAND}", json.dumps([sys.executable, "-P", "-m", "ui.cli", "serve"]))
    part.replace(out)
    return out
