"""The host bridge contract: timeline in OpenTimelineIO terms, the user's selection, and foley placements.

A bridge is a module with these functions (capabilities = which ones exist, see `has_feature`):

    host_name() -> str
    read_timeline(project, *, sequence=None) -> otio.schema.Timeline   # rational time, from the timeline start
    read_selection(project, *, clip=None, record=None, sequence=None) -> Selection
    write_audio_clips(project, placements, *, track_name="Foley", sequence=None) -> WriteReport

`sequence` names one timeline of a file that holds several (Kdenlive sequences, FCPXML projects, AAF
compositions, an OTIO collection); without it a bridge uses the file's active one, else the only or first.

Times never pass through float seconds: `RationalTime`/`TimeRange` at the timeline's rate here, exact
`Fraction` seconds towards the engine (`Selection.edit()`).
"""

import inspect
import math
import os
import re
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from types import ModuleType
from typing import Protocol, TypeVar

import opentimelineio as otio
from opentimelineio.opentime import RationalTime, TimeRange

from editor_plugin.edit import Layered, visible
from editor_plugin.errors import MissingMediaError, SelectionError, UnsupportedClipError
from engine.video import EditSpan

T = TypeVar("T")
WINDOWS_PATH = re.compile(r"^[A-Za-z]:[\\/]")  # E:/Media/a.mov as Resolve on Windows writes it
RATE_DENOMINATOR_LIMIT = 10_000  # NTSC rates are n/1001; OTIO keeps rates as floats
NTSC_TOLERANCE = Fraction(1, 200)  # Resolve writes 23.976 and 29.97 rounded: 0.024 fps from 24000/1001


def exact_rate(rate: float) -> Fraction:
    """The rational frame rate behind OTIO's float (29.97002997… -> 30000/1001; the rounded 23.976, 29.97 and
    59.94 that DaVinci Resolve writes are the NTSC rates too)."""
    exact = Fraction(rate).limit_denominator(RATE_DENOMINATOR_LIMIT)
    base = round(exact * Fraction(1001, 1000))
    ntsc = Fraction(base * 1000, 1001)
    return ntsc if exact != base and abs(exact - ntsc) < NTSC_TOLERANCE else exact


def seconds(time: RationalTime) -> Fraction:
    """A RationalTime as exact seconds (frame counts are whole numbers; sub-frame values keep their binary value)."""
    return Fraction(time.value) / exact_rate(time.rate)


@dataclass(frozen=True)
class SourceSpan:
    """A piece of picture under the selection: which media, which part of it, and where it sits on the timeline."""

    clip: str
    media: Path
    source: TimeRange  # in the media's own time
    record: TimeRange  # on the timeline, counted from the timeline start


@dataclass(frozen=True)
class Selection:
    """What the user picked: a record range and the video spans on top inside it (gaps are allowed)."""

    record: TimeRange
    spans: tuple[SourceSpan, ...]
    label: str

    def range_seconds(self) -> tuple[Fraction, Fraction]:
        start = seconds(self.record.start_time)
        return start, start + seconds(self.record.duration)

    def edit(self) -> list[EditSpan]:
        """The spans as the engine's edit list, in exact seconds."""
        return [
            EditSpan(span.media, seconds(span.record.start_time), seconds(span.record.end_time_exclusive()),
                     seconds(span.source.start_time))
            for span in self.spans
        ]


@dataclass(frozen=True)
class Placement:
    """One generated sound to put on the timeline."""

    wav: Path
    record_start: RationalTime  # from the timeline start, at the timeline rate
    duration: RationalTime  # the WAV's exact length (samples at the sample rate)
    name: str


@dataclass(frozen=True)
class WriteReport:
    """What a write changed: the track used, where the original was backed up, and warnings for the user."""

    track: str
    backup: Path | None
    warnings: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class Capabilities:
    """What a host allows, declared by each bridge as `CAPABILITIES`."""

    writes_live: bool  # placed clips appear in the running host at once
    needs_project_closed: bool  # the file must not be open in the editor while we write it
    selection: tuple[str, ...]  # how the user's pick is read: "zone", "marks", "playhead clip", "clip", "range"


class HostBridge(Protocol):
    """The functions a host bridge module provides; bridges are plain modules, checked against this by
    `contract_gaps` (the contract test runs it on every bridge)."""

    def host_name(self) -> str: ...

    def read_timeline(self, project, *, sequence: str | None = None) -> otio.schema.Timeline: ...

    def read_selection(self, project, *, clip: str | None = None, record: TimeRange | None = None,
                       sequence: str | None = None) -> Selection: ...

    def write_audio_clips(self, project, placements: list[Placement], *, track_name: str = "Foley",
                          sequence: str | None = None) -> WriteReport: ...


CONTRACT = tuple(name for name in vars(HostBridge) if not name.startswith("_"))


def contract_gaps(bridge: ModuleType) -> list[str]:
    """What `bridge` lacks of `HostBridge`: a missing function, or a keyword the protocol's function takes that the
    bridge's does not."""
    gaps = []
    for name in CONTRACT:
        function = getattr(bridge, name, None)
        if not callable(function):
            gaps.append(f"{name}()")
            continue
        wanted = [p for p in inspect.signature(getattr(HostBridge, name)).parameters.values() if p.kind == p.KEYWORD_ONLY]
        offered = inspect.signature(function).parameters
        gaps += [f"{name}(..., {p.name}=)" for p in wanted if p.name not in offered]
    return gaps


def choose_sequence(sequences: dict[str, T], wanted: str | None, where: str, default: str | None = None) -> T:
    """The timeline called `wanted`, else `default` (the active one), else the first; refuse an unknown name."""
    if not sequences:
        raise SelectionError(f"{where} holds no timeline (sequence); save one with clips in the editor.")
    if wanted is None:
        return sequences[default] if default in sequences else next(iter(sequences.values()))
    if wanted not in sequences:
        raise SelectionError(f"{where} has no sequence named '{wanted}'. Sequences: "
                             f"{', '.join(repr(name) for name in sequences)}.")
    return sequences[wanted]


def has_feature(bridge: ModuleType, name: str) -> bool:
    """Capabilities are the contract functions a bridge defines (OTIO's adapter convention)."""
    return callable(getattr(bridge, name, None))


def _time_effect(clip: otio.schema.Clip) -> str | None:
    for effect in clip.effects:
        if isinstance(effect, otio.schema.FreezeFrame):
            return "a freeze frame"
        if isinstance(effect, otio.schema.LinearTimeWarp):
            if effect.time_scalar != 1.0:
                return f"a speed change ({effect.time_scalar:g}x)"
        elif isinstance(effect, otio.schema.TimeEffect):  # speed ramps (Resolve writes TimeEffect.1)
            return f"a time effect ({effect.effect_name or effect.name or 'speed ramp'})"
    return None


def _media_path(clip: otio.schema.Clip) -> Path:
    reference = clip.media_reference
    url = getattr(reference, "target_url", None)
    if not url:
        raise SelectionError(f"Clip '{clip.name}' has no media file (generator, title or missing reference); "
                             "foley needs filmed pictures. Select a range without it.")
    path = Path(otio.url_utils.filepath_from_url(url)) if "://" in url else Path(url)
    if not path.is_file():
        if WINDOWS_PATH.match(url) and os.name != "nt":
            raise MissingMediaError(f"Clip '{clip.name}' points at {url}, a Windows path this machine cannot open. "
                                    "Relink the media to a path here (or export the timeline on the machine that "
                                    "holds the media), export again, then try again.")
        raise MissingMediaError(f"Clip '{clip.name}' points at {path}, which does not exist. Relink the clip in "
                                "your editor (or restore the file) and save the project, then try again.")
    return path


def _compound_clip_error(stack: otio.schema.Stack) -> UnsupportedClipError:
    return UnsupportedClipError(
        f"'{stack.name}' is a compound clip (a timeline nested in the timeline); foley reads only clips placed on "
        "the timeline itself. Select a range without it, or decompose it in the editor (Resolve: Decompose in Place; "
        "Final Cut Pro: Break Apart Clip Items) and export again."
    )


def _outermost_stack(item: otio.core.Item, track: otio.schema.Track) -> otio.schema.Stack:
    """The compound clip placed on `track` that holds `item`."""
    while item.parent() is not track:
        item = item.parent()
    return item


def top_video_spans(timeline: otio.schema.Timeline, record: TimeRange) -> list[SourceSpan]:
    """The video the viewer shows over `record`: per stretch of time, the topmost video track's clip."""
    rate = record.start_time.rate
    pieces = []
    for layer, track in enumerate(timeline.video_tracks()):  # the last video track is on top
        if not track.enabled:
            continue
        for clip in track.find_children(search_range=record, shallow_search=True):
            if isinstance(clip, otio.schema.Stack):
                raise _compound_clip_error(clip)
            if isinstance(clip, otio.schema.Clip) and clip.enabled and isinstance(clip.media_reference,
                                                                                  otio.schema.ExternalReference):
                place = clip.range_in_parent()
                pieces.append(Layered(layer, seconds(place.start_time), seconds(place.end_time_exclusive()),
                                      seconds(clip.source_range.start_time), clip))
    start = seconds(record.start_time)
    spans = []
    for piece in visible(pieces, start, start + seconds(record.duration)):
        clip = piece.item
        effect = _time_effect(clip)
        if effect:
            raise UnsupportedClipError(
                f"Clip '{clip.name}' plays with {effect}; the generated sound would drift from the picture. "
                "Remove the effect for the foley pass (or render the range to a file and use that)."
            )
        length = _at_rate(piece.record_end - piece.record_start, rate)
        spans.append(SourceSpan(clip.name, _media_path(clip),
                                TimeRange(_at_rate(piece.source_start, clip.source_range.start_time.rate), length),
                                TimeRange(_at_rate(piece.record_start, rate), length)))
    return spans


def _at_rate(time: Fraction, rate: float) -> RationalTime:
    return RationalTime(float(time * exact_rate(rate)), rate)


def selection_for(timeline: otio.schema.Timeline, record: TimeRange, label: str) -> Selection:
    """Resolve a record range to the video spans under it, or refuse clearly."""
    if record.duration.value <= 0:
        raise SelectionError(f"The selection '{label}' is empty; mark an in point before the out point.")
    duration = timeline.duration()
    if record.start_time >= duration:
        raise SelectionError(f"The selection '{label}' starts after the end of the timeline "
                             f"({float(seconds(duration)):.3f} s long); select a range on the timeline.")
    spans = top_video_spans(timeline, record)
    if not spans:
        raise SelectionError(f"There is no video in the selection '{label}'; foley is generated from pictures. "
                             "Select a range that contains video clips.")
    return Selection(record, tuple(spans), label)


def clip_selection(timeline: otio.schema.Timeline, name: str) -> Selection:
    """The record range of the video clip called `name` (the first one, counting from the top track)."""
    for track in reversed(timeline.video_tracks()):
        for clip in track.find_clips():
            if clip.name == name:
                if clip.parent() is not track:  # its range_in_parent is inside the compound, not on the timeline
                    raise _compound_clip_error(_outermost_stack(clip, track))
                return selection_for(timeline, clip.range_in_parent(), name)
    names = sorted({clip.name for track in timeline.video_tracks() for clip in track.find_clips()})
    raise SelectionError(f"No video clip named '{name}' on the timeline. Clips: {', '.join(names) or 'none'}.")


def requested_selection(timeline: otio.schema.Timeline, clip: str | None, record: TimeRange | None) -> Selection | None:
    """What the user asked for by name (`clip`) or by range (`record`); None when they asked for neither."""
    if clip is not None:
        return clip_selection(timeline, clip)
    if record is not None:
        return selection_for(timeline, record, "in/out")
    return None


def timeline_rate(timeline: otio.schema.Timeline) -> float:
    """The timeline's frame rate: its start timecode's, else its first clip's (clips may be at their media's rate)."""
    if timeline.global_start_time is not None:
        return timeline.global_start_time.rate
    for clip in timeline.find_clips():
        return clip.source_range.start_time.rate
    raise SelectionError(f"The timeline '{timeline.name}' has no clips, so it has no frame rate to place by.")


def frame_span(placement: Placement, rate: Fraction, warnings: list[str]) -> tuple[int, int]:
    """A placement on the timeline's frame grid: its record start frame (the nearest; a warning says when it moved)
    and its length in whole frames (rounded up: the WAV's tail is silence). A start before the timeline's is refused."""
    exact = seconds(placement.record_start) * rate
    start = math.floor(exact + Fraction(1, 2))
    if start != exact:
        warnings.append(f"{placement.name}: start {float(exact):.3f} frames rounded to frame {start}.")
    if start < 0:
        raise SelectionError(f"{placement.name} would start {-start} frame(s) before the timeline starts; place it "
                             "at or after the timeline's start timecode.")
    return start, max(1, math.ceil(seconds(placement.duration) * rate))


def pack_lanes(placements: list[Placement]) -> list[list[Placement]]:
    """Spread placements over as few tracks as possible without overlaps (variants at one spot stack up)."""
    lanes: list[list[Placement]] = []
    for item in sorted(placements, key=lambda p: seconds(p.record_start)):
        for lane in lanes:
            last = lane[-1]
            if seconds(last.record_start) + seconds(last.duration) <= seconds(item.record_start):
                lane.append(item)
                break
        else:
            lanes.append([item])
    return lanes


def unique_track_names(taken: set[str], wanted: str, count: int) -> list[str]:
    """`wanted`, then "wanted 2", "wanted 3"... skipping names already on the timeline."""
    names, number = [], 1
    while len(names) < count:
        name = wanted if number == 1 else f"{wanted} {number}"
        if name not in taken:
            names.append(name)
        number += 1
    return names
