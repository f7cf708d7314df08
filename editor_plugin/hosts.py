"""Which bridge handles which project: by file suffix, or the running DaVinci Resolve."""

from pathlib import Path
from types import ModuleType

from editor_plugin import fcpxml, interchange, mlt
from editor_plugin.errors import ProjectFormatError

RESOLVE = "resolve"
BRIDGES: dict[str, ModuleType] = {".kdenlive": mlt, ".mlt": mlt, **{suffix: interchange for suffix in interchange.ADAPTERS},
                                  ".fcpxml": fcpxml, ".fcpxmld": fcpxml}


def bridge_for(project: Path) -> ModuleType:
    bridge = BRIDGES.get(project.suffix.lower())
    if bridge is None:
        raise ProjectFormatError(f"{project.name}: no bridge for '{project.suffix}' projects; supported: "
                                 f"{', '.join(sorted(BRIDGES))}, or '{RESOLVE}' for the running DaVinci Resolve "
                                 "(Blender: use the add-on).")
    return bridge
