"""Which bridge handles which project (by file suffix, or the running DaVinci Resolve), and the one way to call it.

Commands and the panel call bridges only through `Project`, which passes the user's options (the named
sequence, an EDL's rate) to every call and turns a fault inside a bridge, on a file it did not expect, into one
line that names the file and the cause instead of a traceback.
"""

import logging
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import opentimelineio as otio
from opentimelineio.opentime import TimeRange

from editor_plugin import aaf, fcpxml, interchange, mlt, resolve, xmeml
from editor_plugin.contract import Placement, Selection, WriteReport
from editor_plugin.errors import HostError, ProjectFormatError

logger = logging.getLogger(__name__)

RESOLVE = "resolve"
FOLEY_FOLDER = "Foley Desk"
BRIDGES: dict[str, ModuleType] = {".kdenlive": mlt, ".mlt": mlt, ".xml": xmeml, ".aaf": aaf, ".fcpxml": fcpxml,
                                  ".fcpxmld": fcpxml, **{suffix: interchange for suffix in interchange.ADAPTERS}}


def bridge_for(project: Path) -> ModuleType:
    bridge = BRIDGES.get(project.suffix.lower())
    if bridge is None:
        raise ProjectFormatError(f"{project.name}: no bridge for '{project.suffix}' projects; supported: "
                                 f"{', '.join(sorted(BRIDGES))}, or '{RESOLVE}' for the running DaVinci Resolve "
                                 "(Blender: use the add-on).")
    return bridge


@dataclass(frozen=True)
class Project:
    """An opened project: its bridge, the handle the bridge takes (a path or a live host) and the user's options."""

    bridge: ModuleType
    handle: object
    name: str
    options: dict = field(default_factory=dict)

    @property
    def foley_folder(self) -> Path | None:
        """Where foley for this project goes unless the user says otherwise: `Foley Desk` beside the project file,
        so it travels with the project (None for a live host such as Resolve)."""
        return self.handle.resolve().parent / FOLEY_FOLDER if isinstance(self.handle, Path) else None

    def read_timeline(self) -> otio.schema.Timeline:
        return self._call(self.bridge.read_timeline)

    def read_selection(self, *, clip: str | None = None, record: TimeRange | None = None) -> Selection:
        return self._call(self.bridge.read_selection, clip=clip, record=record)

    def write_audio_clips(self, placements: list[Placement], *, track_name: str = "Foley") -> WriteReport:
        return self._call(self.bridge.write_audio_clips, placements, track_name=track_name)

    def _call(self, function, *args, **kwargs):
        try:
            return function(self.handle, *args, **kwargs, **self.options)
        except HostError:
            raise
        except Exception as exc:  # a bridge fault on an unexpected file: one line for the user, details in the log
            logger.debug("%s failed on %s", function.__name__, self.name, exc_info=True)
            raise ProjectFormatError(
                f"{self.name}: the {self.bridge.host_name()} bridge cannot handle this timeline "
                f"({type(exc).__name__}: {exc}); nothing was written. Export it again from the editor, and please "
                "report the file so it can be supported."
            ) from None


def open_project(name: str | Path, *, sequence: str | None = None, rate: float | None = None,
                 resolve_module=None) -> Project:
    """A project file, or "resolve" for the timeline open in DaVinci Resolve (`resolve_module` stands in for its
    scripting module in tests); `sequence` names one of several timelines, `rate` is an EDL's frame rate."""
    options = {"sequence": sequence} if sequence is not None else {}
    if str(name) == RESOLVE:
        return Project(resolve, resolve.get_resolve(resolve_module), "DaVinci Resolve", options)
    path = Path(name)
    bridge = bridge_for(path)
    if rate is not None and bridge is interchange:
        options["rate"] = rate
    return Project(bridge, path, path.name, options)
