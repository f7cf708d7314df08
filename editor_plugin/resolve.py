"""DaVinci Resolve through its scripting API (`DaVinciResolveScript`): read the timeline and the In/Out marks,
import the foley into the media pool and append it on new audio tracks at absolute record frames.

Version facts (Resolve's README per release): `AppendToTimeline` with `trackIndex`/`recordFrame`, `AddTrack`
and `DeleteClips` from 18.5; `GetSourceStartFrame` from 19.0.2; `GetMarkInOut` from 19.1. Quirks handled:
the timeline starts at frame 86400 (01:00:00:00) and `recordFrame` is absolute; `endFrame` is exclusive; a WAV's
frames are counted at the clip's own FPS property (24), not the timeline's; marks are relative to the timeline
start; calls fail by returning None/False, never by raising; importing a file already in the current bin
returns the existing item (so each batch goes into a new bin).
"""

import importlib
import logging
import math
import os
import sys
import time
from fractions import Fraction
from pathlib import Path

import opentimelineio as otio
from opentimelineio.opentime import RationalTime, TimeRange

from editor_plugin.contract import (
    Capabilities,
    Placement,
    Selection,
    WriteReport,
    choose_sequence,
    frame_span,
    pack_lanes,
    requested_selection,
    seconds,
    selection_for,
    unique_track_names,
)
from editor_plugin.errors import HostError, HostNotRunningError, HostVersionError, SelectionError

logger = logging.getLogger(__name__)

MINIMUM = (18, 5)  # AppendToTimeline with trackIndex and recordFrame
SOURCE_FRAMES = (19, 0, 2)
MARKS = (19, 1)
NTSC = {"23.976": Fraction(24000, 1001), "29.97": Fraction(30000, 1001), "47.952": Fraction(48000, 1001),
        "59.94": Fraction(60000, 1001), "119.88": Fraction(120000, 1001)}
SCRIPT_PATHS = {"linux": "/opt/resolve/Developer/Scripting/Modules",
                "darwin": "/Library/Application Support/Blackmagic Design/DaVinci Resolve/Developer/Scripting/Modules",
                "win32": r"C:\ProgramData\Blackmagic Design\DaVinci Resolve\Support\Developer\Scripting\Modules"}

CAPABILITIES = Capabilities(writes_live=True, needs_project_closed=False,
                            selection=("marks", "playhead clip", "clip", "range"))


def host_name() -> str:
    return "DaVinci Resolve"


def get_resolve(module=None):
    """The running Resolve's scripting object (`module` stands in for DaVinciResolveScript in tests)."""
    if module is None:
        api = os.environ.get("RESOLVE_SCRIPT_API")
        folder = str(Path(api) / "Modules") if api else SCRIPT_PATHS.get(sys.platform, "")
        if folder and folder not in sys.path:
            sys.path.append(folder)
        try:
            module = importlib.import_module("DaVinciResolveScript")
        except ImportError:
            raise HostNotRunningError(
                "DaVinci Resolve's scripting module was not found. Install Resolve, and set RESOLVE_SCRIPT_API and "
                "RESOLVE_SCRIPT_LIB as its Developer/Scripting/README.txt describes."
            ) from None
    resolve = module.scriptapp("Resolve")
    if resolve is None:
        raise HostNotRunningError(
            "Resolve is not running or refuses external scripts. Start Resolve, set Preferences > System > General > "
            "External scripting using: Local. External scripting needs DaVinci Resolve Studio (and since 21.1 so "
            "does Python scripting from the Workspace > Scripts menu)."
        )
    version = tuple(resolve.GetVersion()[:3])
    if version[:2] < MINIMUM:
        raise HostVersionError(f"Resolve {'.'.join(map(str, version))} cannot place clips at a record frame; "
                               "Foley Desk needs Resolve 18.5 or newer.")
    return resolve


def _version(resolve) -> tuple[int, ...]:
    return tuple(resolve.GetVersion()[:3])


def _timeline(resolve, sequence: str | None = None):
    """The project and the timeline named `sequence` (default: the current one)."""
    project = resolve.GetProjectManager().GetCurrentProject()
    current = project.GetCurrentTimeline() if project else None
    if current is None:
        raise SelectionError("Resolve has no open timeline. Open the timeline to work on and try again.")
    if sequence is None:
        return project, current
    timelines = {}
    for index in range(1, project.GetTimelineCount() + 1):  # 1-based, like every Resolve index
        timeline = project.GetTimelineByIndex(index)
        timelines.setdefault(timeline.GetName(), timeline)
    return project, choose_sequence(timelines, sequence, f"The Resolve project '{project.GetName()}'")


def rate_of(text) -> Fraction:
    """Resolve writes rates as text ("29.97", "23.976", "25", "25.000"); NTSC ones mean n/1001 exactly."""
    cleaned = str(text).strip()
    cleaned = cleaned.rstrip("0").rstrip(".") if "." in cleaned else cleaned
    return NTSC.get(cleaned, Fraction(cleaned).limit_denominator(1001))


def _item_clip(resolve, item, rate: Fraction, record_start: int) -> otio.schema.Clip:
    """A timeline item as an OTIO clip: length in timeline frames, source start converted from media frames."""
    pool_item = item.GetMediaPoolItem()
    path = pool_item.GetClipProperty("File Path") if pool_item else ""
    media_rate = rate_of(pool_item.GetClipProperty("FPS")) if pool_item else rate
    if _version(resolve) >= SOURCE_FRAMES:
        first, last = item.GetSourceStartFrame(), item.GetSourceEndFrame()
    else:  # before 19.0.2 only the trim offset is known; the speed cannot be checked
        first = item.GetLeftOffset()
        last = first + item.GetDuration() * media_rate / rate
    source_seconds, record_seconds = Fraction(last - first) / media_rate, Fraction(item.GetDuration()) / rate
    effects = []
    if abs(source_seconds - record_seconds) * rate > 1:  # more than a frame apart: the clip is retimed
        effects.append(otio.schema.LinearTimeWarp(time_scalar=float(source_seconds / record_seconds)))
    reference = otio.schema.ExternalReference(target_url=Path(path).as_uri()) if path else \
        otio.schema.MissingReference()
    frames = float(rate)
    return otio.schema.Clip(
        name=item.GetName(), media_reference=reference, effects=effects,
        source_range=TimeRange(RationalTime(float(Fraction(first) / media_rate * rate), frames),
                               RationalTime(item.GetDuration(), frames)),
        metadata={"resolve": {"record_start": record_start}},
    )


def read_timeline(resolve, *, sequence: str | None = None) -> otio.schema.Timeline:
    """The current timeline (or the one named `sequence`); record times count from its start (Resolve's frame
    86400 is 0 here)."""
    _, timeline = _timeline(resolve, sequence)
    rate = rate_of(timeline.GetSetting("timelineFrameRate"))
    origin = timeline.GetStartFrame()
    result = otio.schema.Timeline(name=timeline.GetName(), global_start_time=RationalTime(origin, float(rate)))
    for kind, otio_kind in (("video", otio.schema.TrackKind.Video), ("audio", otio.schema.TrackKind.Audio)):
        for index in range(1, timeline.GetTrackCount(kind) + 1):
            name = timeline.GetTrackName(kind, index) or f"{kind[0].upper()}{index}"
            track = otio.schema.Track(name=name, kind=otio_kind)
            cursor = 0
            for item in sorted(timeline.GetItemListInTrack(kind, index) or [], key=_start):
                start = item.GetStart() - origin
                if start > cursor:
                    gap = RationalTime(start - cursor, float(rate))
                    track.append(otio.schema.Gap(source_range=TimeRange(duration=gap)))
                track.append(_item_clip(resolve, item, rate, start))
                cursor = start + item.GetDuration()
            result.tracks.append(track)
    return result


def _start(item) -> int:
    return item.GetStart()


def read_selection(resolve, *, clip: str | None = None, record: TimeRange | None = None,
                   sequence: str | None = None) -> Selection:
    """A named clip, a record range, else the timeline's In/Out marks (19.1+), else the clip under the playhead."""
    _, timeline = _timeline(resolve, sequence)
    model = read_timeline(resolve, sequence=sequence)
    rate = float(rate_of(timeline.GetSetting("timelineFrameRate")))
    requested = requested_selection(model, clip, record)
    if requested is not None:
        return requested
    if _version(resolve) >= MARKS:
        marks = (timeline.GetMarkInOut() or {}).get("video") or {}
        if "in" in marks and "out" in marks:  # relative to the timeline start, out inclusive
            return selection_for(model, TimeRange(RationalTime(marks["in"], rate),
                                                  RationalTime(marks["out"] - marks["in"] + 1, rate)), "In/Out marks")
    item = timeline.GetCurrentVideoItem()
    if item is None:
        raise SelectionError("Set In and Out marks on the timeline (Resolve 19.1+), or park the playhead on a clip.")
    start = item.GetStart() - timeline.GetStartFrame()
    return selection_for(model, TimeRange(RationalTime(start, rate), RationalTime(item.GetDuration(), rate)),
                         item.GetName())


def _import(media_pool, placements: list[Placement]) -> list:
    """Import the WAVs into a new bin (re-importing into the same bin would return stale items)."""
    root = media_pool.GetRootFolder()
    folder = media_pool.AddSubFolder(root, f"Foley {time.strftime('%Y-%m-%d %H.%M.%S')}")
    if not folder or not media_pool.SetCurrentFolder(folder):
        raise HostError("Resolve refused to create a 'Foley' bin in the media pool; check the project is writable.")
    items = media_pool.ImportMedia([str(p.wav.resolve()) for p in placements]) or []
    if len(items) != len(placements):
        raise HostError(f"Resolve imported {len(items)} of {len(placements)} WAV files; check they exist and are "
                        "readable WAV, then try again.")
    return items


def write_audio_clips(resolve, placements: list[Placement], *, track_name: str = "Foley",
                      sequence: str | None = None) -> WriteReport:
    """Append `placements` on new audio tracks at their exact record frames; verify where Resolve put them."""
    project, timeline = _timeline(resolve, sequence)
    warnings = []
    if timeline.GetName() != project.GetCurrentTimeline().GetName():  # AppendToTimeline adds to the current one
        if not project.SetCurrentTimeline(timeline):
            raise HostError(f"Resolve refused to open the timeline '{timeline.GetName()}'; open it and try again.")
        warnings.append(f"Resolve now shows the timeline '{timeline.GetName()}', where the foley was placed.")
    media_pool = project.GetMediaPool()
    rate = rate_of(timeline.GetSetting("timelineFrameRate"))
    origin = timeline.GetStartFrame()
    lanes = pack_lanes(placements)
    taken = {timeline.GetTrackName("audio", i) for i in range(1, timeline.GetTrackCount("audio") + 1)}
    names = unique_track_names(taken, track_name, len(lanes))
    items = dict(zip([id(p) for p in placements], _import(media_pool, placements)))
    for lane, name in zip(lanes, names):
        if not timeline.AddTrack("audio", "mono"):
            raise HostError("Resolve refused to add an audio track; unlock the timeline and try again.")
        index = timeline.GetTrackCount("audio")
        timeline.SetTrackName("audio", index, name)
        for placement in lane:
            record = origin + frame_span(placement, rate, warnings)[0]
            item = items[id(placement)]
            clip_rate = rate_of(item.GetClipProperty("FPS"))  # 24 for WAV files, whatever the timeline rate
            end = math.ceil(seconds(placement.duration) * clip_rate)
            placed = media_pool.AppendToTimeline([{"mediaPoolItem": item, "startFrame": 0, "endFrame": end,
                                                   "mediaType": 2, "trackIndex": index, "recordFrame": record}])
            if not placed or placed[0].GetStart() != record:
                where = placed[0].GetStart() if placed else "nowhere"
                raise HostError(f"Resolve put '{placement.name}' at frame {where} instead of {record}; undo in Resolve "
                                "(Ctrl+Z) and report this with your Resolve version.")
    return WriteReport(", ".join(names), None, tuple(warnings))
