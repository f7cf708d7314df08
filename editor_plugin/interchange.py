"""OpenTimelineIO files (Resolve 18.5+, Kdenlive 25.04+, other tools) and CMX 3600 EDLs, via the OTIO adapters.

FCP 7 XML, FCPXML and AAF have bridges of their own (`xmeml`, `fcpxml`, `aaf`) that edit the user's file in
place. Here an OTIO file is read (a collection: the timeline the user names) and written back with foley tracks
added; an EDL is read only (the format cannot carry the foley's audio). An OTIO file
that DaVinci Resolve exported gets its foley tracks in Resolve's own dialect, inserted into the JSON so every other
item keeps its bytes (docs/resolve-without-scripting.md).
"""

import json
import logging
import math
import tempfile
from collections.abc import Callable
from functools import partial
from pathlib import Path

import opentimelineio as otio
import soundfile
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

ADAPTERS = {".otio": "otio_json", ".edl": "cmx_3600"}

RESOLVE_KEY = "Resolve_OTIO"  # Resolve's metadata namespace; on the timeline it marks a file Resolve exported
# the keys, in order, of the items Resolve's OTIO export writes (tests/fixtures/resolve); the foley items match them
RESOLVE_FIELDS = {
    "Track.1": ("OTIO_SCHEMA", "metadata", "name", "source_range", "effects", "markers", "enabled", "children", "kind"),
    "Gap.1": ("OTIO_SCHEMA", "metadata", "name", "source_range", "effects", "markers", "enabled"),
    "Clip.2": ("OTIO_SCHEMA", "metadata", "name", "source_range", "effects", "markers", "enabled", "media_references",
               "active_media_reference_key"),
    "ExternalReference.1": ("OTIO_SCHEMA", "metadata", "name", "available_range", "available_image_bounds",
                            "target_url"),
}
RESOLVE_AUDIO_TYPES = {1: "Mono", 2: "Stereo"}

CAPABILITIES = Capabilities(writes_live=False, needs_project_closed=True, selection=("clip", "range"))


def host_name() -> str:
    return "OpenTimelineIO files and EDLs"


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
    # whole frames at the timeline rate, as editors place clips (the tail is silence)
    length = TimeRange(RationalTime(0, rate), RationalTime(math.ceil(placement.duration.value_rescaled_to(rate)), rate))
    reference = otio.schema.ExternalReference(target_url=placement.wav.resolve().as_uri(), available_range=length)
    return otio.schema.Clip(name=placement.name, media_reference=reference, source_range=length)


ClipMaker = Callable[[Placement, float], otio.schema.Clip]


def foley_tracks(timeline: otio.schema.Timeline, placements: list[Placement], track_name: str,
                 make_clip: ClipMaker = _foley_clip) -> list[otio.schema.Track]:
    """One new audio track per lane of non-overlapping placements (not yet on the timeline)."""
    lanes = pack_lanes(placements)
    names = unique_track_names({track.name for track in timeline.tracks}, track_name, len(lanes))
    tracks = []
    for lane, name in zip(lanes, names):
        track = otio.schema.Track(name=name, kind=otio.schema.TrackKind.Audio)
        rate = lane[0].record_start.rate
        cursor = RationalTime(0, rate)
        for placement in lane:
            start = placement.record_start.rescaled_to(rate)
            if start > cursor:
                track.append(otio.schema.Gap(source_range=TimeRange(duration=start - cursor)))
            clip = make_clip(placement, rate)
            track.append(clip)
            cursor = start + clip.source_range.duration
        tracks.append(track)
    return tracks


def add_foley_tracks(timeline: otio.schema.Timeline, placements: list[Placement], track_name: str) -> list[str]:
    """Append one audio track per lane of non-overlapping placements; return the track names."""
    tracks = foley_tracks(timeline, placements, track_name)
    for track in tracks:
        timeline.tracks.append(track)
    return [track.name for track in tracks]


def _resolve_clip(placement: Placement, rate: float, *, plain_paths: bool) -> otio.schema.Clip:
    """A foley clip as Resolve writes its audio clips: named media, channel map, its file's path form."""
    clip = _foley_clip(placement, rate)
    reference = clip.media_reference
    reference.name = placement.wav.name
    if plain_paths:  # Resolve writes E:/Media/a.wav or /Volumes/Media/a.wav, not a file:// URL
        reference.target_url = placement.wav.resolve().as_posix()
    channels = soundfile.info(str(placement.wav)).channels
    clip.metadata[RESOLVE_KEY] = {"Channels": [{"Source Channel ID": channel, "Source Track ID": 0}
                                               for channel in range(channels)]}
    return clip


def _resolve_track_metadata(track: otio.schema.Track) -> dict:
    channels = max(len(clip.metadata[RESOLVE_KEY]["Channels"]) for clip in track.find_clips())
    if channels not in RESOLVE_AUDIO_TYPES:
        raise ProjectWriteError(f"Resolve's OTIO import takes mono or stereo clips; the foley has {channels} "
                                "channels. Generate mono or stereo foley. Nothing was changed.")
    return {"Audio Type": RESOLVE_AUDIO_TYPES[channels], "Locked": False, "SoloOn": False}


def _in_resolve_fields(node):
    """`node` (OTIO JSON) with only the keys, in the order, that Resolve's export writes for its schema."""
    if isinstance(node, list):
        return [_in_resolve_fields(item) for item in node]
    if not isinstance(node, dict):
        return node
    keys = RESOLVE_FIELDS.get(node.get("OTIO_SCHEMA"), tuple(node))
    return {key: _in_resolve_fields(node[key]) for key in keys}


def _nodes(node):
    """Every JSON object in `node`, depth first in file order (the order OTIO's find_children walks)."""
    if isinstance(node, dict):
        yield node
        node = list(node.values())
    if isinstance(node, list):
        for item in node:
            yield from _nodes(item)


def _timeline_index(top: otio.core.SerializableObject, timeline: otio.schema.Timeline) -> int:
    if top is timeline:
        return 0
    found = top.find_children(descended_from_type=otio.schema.Timeline)
    return next(index for index, candidate in enumerate(found) if candidate is timeline)


def _timeline_document(document: dict, index: int) -> dict:
    """The JSON of the `index`th timeline of the file (a lone timeline, or one in a collection)."""
    timelines = [node for node in _nodes(document) if str(node.get("OTIO_SCHEMA", "")).startswith("Timeline.")]
    return timelines[index]


def _uses_plain_paths(document: dict) -> bool:
    """Whether the file names its media by plain path (Resolve's habit) rather than by URL."""
    urls = [node["target_url"] for node in _nodes(document) if node.get("target_url")]
    return bool(urls) and "://" not in urls[0]


def _resolve_otio(path: Path, top: otio.core.SerializableObject, timeline: otio.schema.Timeline,
                  placements: list[Placement], track_name: str) -> tuple[list[str], bytes]:
    """The file's JSON with the foley tracks appended in Resolve's dialect; every other item as it was."""
    original = path.read_text(encoding="utf-8")
    document = json.loads(original)
    target = _timeline_document(document, _timeline_index(top, timeline))
    make_clip = partial(_resolve_clip, plain_paths=_uses_plain_paths(target))
    tracks = foley_tracks(timeline, placements, track_name, make_clip)
    for track in tracks:
        track.metadata[RESOLVE_KEY] = _resolve_track_metadata(track)
        target["tracks"]["children"].append(_in_resolve_fields(json.loads(track.to_json_string())))
    # Resolve's layout (4-space indent, UTF-8, no final newline): unchanged items keep their bytes
    text = json.dumps(document, indent=4, ensure_ascii=False)
    text += "\n" if original.endswith("\n") else ""
    if "\r\n" in original:
        text = text.replace("\n", "\r\n")
    return [track.name for track in tracks], text.encode("utf-8")


def _adapter_bytes(top: otio.core.SerializableObject, path: Path, adapter: str) -> bytes:
    """The whole document written by the OTIO adapter for `adapter`, staged next to the project."""
    with tempfile.TemporaryDirectory(dir=path.parent) as folder:
        staged = Path(folder) / path.name
        try:
            otio.adapters.write_to_file(top, str(staged), adapter_name=adapter)
        except Exception as exc:  # adapter-specific failures; nothing has been touched yet
            raise ProjectWriteError(f"The {adapter} writer failed ({type(exc).__name__}: {exc}); {path.name} was "
                                    "not changed.") from None
        return staged.read_bytes()


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
    timeline = _chosen(top, sequence, path)
    if adapter == "otio_json" and RESOLVE_KEY in timeline.metadata:
        names, data = _resolve_otio(path, top, timeline, placements, track_name)
    else:
        names = add_foley_tracks(timeline, placements, track_name)
        data = _adapter_bytes(top, path, adapter)
    saved = replace_project(path, data)
    return WriteReport(", ".join(names), saved)
