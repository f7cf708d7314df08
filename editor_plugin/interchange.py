"""Premiere, Final Cut Pro, Avid/Pro Tools and Resolve (free) through interchange files, via the OTIO adapters.

Reads OTIO, FCP 7 XML (Premiere, Resolve), FCPXML (Final Cut Pro), AAF (Avid, Pro Tools) and CMX 3600 EDL;
writes the same timeline back in the same format with foley tracks added (EDL cannot carry audio).
"""

import logging
import math
import re
import tempfile
from pathlib import Path

import opentimelineio as otio
from opentimelineio.opentime import RationalTime, TimeRange

from editor_plugin.contract import (
    Capabilities,
    Placement,
    Selection,
    WriteReport,
    choose_sequence,
    pack_lanes,
    requested_selection,
    unique_track_names,
)
from editor_plugin.errors import ProjectFormatError, ProjectWriteError, SelectionError
from editor_plugin.project_files import check_writable, replace_project

logger = logging.getLogger(__name__)

ADAPTERS = {".otio": "otio_json", ".fcpxml": "fcpx_xml", ".edl": "cmx_3600"}

CAPABILITIES = Capabilities(writes_live=False, needs_project_closed=True, selection=("clip", "range"))


def host_name() -> str:
    return "Interchange files (OTIO, FCP 7 XML, FCPXML, AAF, EDL)"


def _adapter(path: Path) -> str:
    adapter = ADAPTERS.get(path.suffix.lower())
    if adapter is None:
        raise ProjectFormatError(f"{path.name}: unknown timeline format; use one of {', '.join(sorted(ADAPTERS))}.")
    return adapter


def _read(path: Path, rate: float | None) -> otio.core.SerializableObject:
    """The file's top object: a Timeline, or a collection of them (OTIO bins, several sequences)."""
    adapter = _adapter(path)
    if not path.is_file():
        raise ProjectFormatError(f"No timeline file at {path}. Check the path.")
    options = {}
    if adapter == "fcpx_xml":
        _refuse_fractional_fcpxml(path)
    if adapter == "cmx_3600":
        if rate is None:
            raise ProjectFormatError(f"{path.name} is an EDL, which does not record its frame rate; give it "
                                     "(--rate 25, --rate 29.97, ...).")
        options["rate"] = rate
    try:
        return otio.adapters.read_from_file(str(path), adapter_name=adapter, **options)
    except Exception as exc:  # adapters raise their own types; the user needs the file and the reason
        raise ProjectFormatError(f"{path.name} could not be read as {adapter} ({type(exc).__name__}: {exc}). "
                                 "Export it again from your editor.") from None


def _chosen(top: otio.core.SerializableObject, sequence: str | None, path: Path) -> otio.schema.Timeline:
    """The timeline the user named in a collection, else its first; a lone timeline must match a given name."""
    if isinstance(top, otio.schema.Timeline):
        timelines = [top]
    elif isinstance(top, otio.schema.SerializableCollection):
        timelines = list(top.find_children(descended_from_type=otio.schema.Timeline))
    else:
        raise ProjectFormatError(f"{path.name} holds a {type(top).__name__}, not a timeline; export a timeline.")
    named: dict[str, otio.schema.Timeline] = {}
    for timeline in timelines:
        named.setdefault(timeline.name, timeline)  # two with one name: the first is the one a name reaches
    return choose_sequence(named, sequence, path.name)


def read_timeline(project: str | Path, *, rate: float | None = None, sequence: str | None = None) -> otio.schema.Timeline:
    """Read an interchange file (the timeline named `sequence` when it holds several); an EDL needs `rate`
    because the format does not record one."""
    path = Path(project)
    return _chosen(_read(path, rate), sequence, path)


def _refuse_fractional_fcpxml(path: Path) -> None:
    """The FCPXML reader (otio-fcpx-xml-adapter 1.0.0) truncates 29.97 fps to 29: times would be wrong."""
    for total, base in re.findall(r'frameDuration="(\d+)/(\d+)s"', path.read_text(errors="replace")):
        if int(base) % int(total):
            raise ProjectFormatError(
                f"{path.name} is an FCPXML timeline at {int(base) / int(total):.3f} fps; the FCPXML reader available "
                "here rounds that rate down and would misplace clips. Export FCP 7 XML or OTIO instead (Final Cut "
                "Pro: File > Export XML gives FCPXML only; use an OTIO export add-on), or a whole-number rate."
            )


def read_selection(project: str | Path, *, clip: str | None = None, record: TimeRange | None = None,
                   rate: float | None = None, sequence: str | None = None) -> Selection:
    """Interchange files carry no selection: name a clip or give a record range."""
    timeline = read_timeline(project, rate=rate, sequence=sequence)
    requested = requested_selection(timeline, clip, record)
    if requested is not None:
        return requested
    raise SelectionError(f"{Path(project).name} records no selection; name a clip (--clip NAME) or a range "
                         "(--in/--out).")


def _foley_clip(placement: Placement, rate: float) -> otio.schema.Clip:
    # whole frames at the timeline rate: the FCP 7 and AAF writers accept no other rate (the tail is silence)
    length = TimeRange(RationalTime(0, rate), RationalTime(math.ceil(placement.duration.value_rescaled_to(rate)), rate))
    reference = otio.schema.ExternalReference(target_url=placement.wav.resolve().as_uri(), available_range=length)
    return otio.schema.Clip(name=placement.name, media_reference=reference, source_range=length)


def add_foley_tracks(timeline: otio.schema.Timeline, placements: list[Placement], track_name: str) -> list[str]:
    """Append one audio track per lane of non-overlapping placements; return the track names."""
    lanes = pack_lanes(placements)
    names = unique_track_names({track.name for track in timeline.tracks}, track_name, len(lanes))
    for lane, name in zip(lanes, names):
        track = otio.schema.Track(name=name, kind=otio.schema.TrackKind.Audio)
        rate = lane[0].record_start.rate
        cursor = RationalTime(0, rate)
        for placement in lane:
            start = placement.record_start.rescaled_to(rate)
            if start > cursor:
                track.append(otio.schema.Gap(source_range=TimeRange(duration=start - cursor)))
            clip = _foley_clip(placement, rate)
            track.append(clip)
            cursor = start + clip.source_range.duration
        timeline.tracks.append(track)
    return names


def write_audio_clips(project: str | Path, placements: list[Placement], *, track_name: str = "Foley",
                      rate: float | None = None, sequence: str | None = None) -> WriteReport:
    """Add `placements` on new audio track(s) and write the file back in its own format (backup kept)."""
    path = Path(project)
    adapter = _adapter(path)
    if adapter == "cmx_3600":
        raise ProjectWriteError("An EDL cannot carry the foley track (the format's writer keeps video only). "
                                "Export the timeline as FCP 7 XML, AAF or OTIO and place the foley there.")
    check_writable(path)
    top = _read(path, rate)
    names = add_foley_tracks(_chosen(top, sequence, path), placements, track_name)
    with tempfile.TemporaryDirectory(dir=path.parent) as folder:
        staged = Path(folder) / path.name
        try:
            otio.adapters.write_to_file(top, str(staged), adapter_name=adapter)
        except Exception as exc:  # adapter-specific failures; nothing has been touched yet
            raise ProjectWriteError(f"The {adapter} writer failed ({type(exc).__name__}: {exc}); {path.name} was "
                                    "not changed. Try OTIO or FCP 7 XML.") from None
        data = staged.read_bytes()
    saved = replace_project(path, data)
    return WriteReport(", ".join(names), saved)
