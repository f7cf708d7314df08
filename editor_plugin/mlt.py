"""Kdenlive (.kdenlive) and Shotcut (.mlt) projects: read the timeline and zone, add foley tracks in place.

Both editors save MLT XML. Reading builds an OTIO timeline from the main tractor. Writing inserts new
elements into the original text (producers, a track, the `mix` transition without which a new audio track
would replace the ones below it) and leaves every other byte as it was.
"""

import math
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

import opentimelineio as otio
from opentimelineio.opentime import RationalTime, TimeRange

from editor_plugin.contract import (
    Capabilities,
    Placement,
    Selection,
    WriteReport,
    pack_lanes,
    requested_selection,
    seconds,
    selection_for,
    unique_track_names,
)
from editor_plugin.errors import ProjectFormatError, SelectionError
from editor_plugin.project_files import editors_with_file_open, replace_project

SUPPORTED_KDENLIVE_VERSION = Fraction(104, 100)  # Kdenlive 20.08 to 22.12; 23.04+ (1.1) uses sequences
EDITOR_PROGRAMS = ("kdenlive", "shotcut")

CAPABILITIES = Capabilities(writes_live=False, needs_project_closed=True, selection=("zone", "clip", "range"))


def host_name() -> str:
    return "Kdenlive / Shotcut (MLT XML)"


@dataclass(frozen=True)
class Track:
    name: str
    kind: str  # otio.schema.TrackKind value
    playlists: tuple[ET.Element, ...]


@dataclass(frozen=True)
class Document:
    """A parsed MLT project and the facts reading and writing need."""

    path: Path
    text: str
    root: ET.Element
    flavour: str  # "kdenlive", "shotcut" or "mlt"
    rate: Fraction
    base: Path
    elements: dict[str, ET.Element]
    main: ET.Element
    tracks: tuple[Track, ...]


def properties(element: ET.Element) -> dict[str, str]:
    return {prop.get("name"): prop.text or "" for prop in element.findall("property")}


def parse_time(value: str | None, rate: Fraction, default: int = 0) -> int:
    """MLT time: frames ("250"), clock ("00:00:10.000", rounded to the nearest frame) or timecode ("00:00:10:00")."""
    if value is None or value == "":
        return default
    if re.fullmatch(r"-?\d+", value):
        return int(value)
    parts = value.split(":")
    try:
        if len(parts) == 4:  # hh:mm:ss:ff
            hours, minutes, secs, frames = (int(p) for p in parts)
            return round((hours * 3600 + minutes * 60 + secs) * rate) + frames
        hours, minutes = (int(p) for p in parts[:2]) if len(parts) == 3 else (0, int(parts[0]))
        clock = Fraction(parts[-1]) + 60 * minutes + 3600 * hours
    except ValueError:
        raise ProjectFormatError(f"'{value}' is not an MLT time (frames, hh:mm:ss.mmm or hh:mm:ss:ff).") from None
    return math.floor(clock * rate + Fraction(1, 2))


def load(path: str | Path) -> Document:
    """Parse a Kdenlive or Shotcut project, or explain why it cannot be used."""
    path = Path(path)
    if not path.is_file():
        raise ProjectFormatError(f"No project file at {path}. Check the path.")
    text = path.read_bytes().decode("utf-8", errors="strict")
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise ProjectFormatError(f"{path} is not readable MLT XML ({exc}); the file is damaged or not a "
                                 "Kdenlive/Shotcut project. Open and re-save it in the editor.") from None
    if root.tag != "mlt":
        raise ProjectFormatError(f"{path} is XML but not an MLT project (root <{root.tag}>, expected <mlt>).")
    profile = root.find("profile")
    if profile is None or not profile.get("frame_rate_num"):
        raise ProjectFormatError(f"{path} has no <profile> frame rate; re-save it in Kdenlive or Shotcut.")
    rate = Fraction(int(profile.get("frame_rate_num")), int(profile.get("frame_rate_den", "1")))
    elements = {el.get("id"): el for el in root if el.get("id")}
    bin_props = properties(elements["main_bin"]) if "main_bin" in elements else {}
    tractors = root.findall("tractor")
    if not tractors:
        raise ProjectFormatError(f"{path} has no timeline (no <tractor>). Save a project with a timeline.")
    if "kdenlive:docproperties.version" in bin_props:
        flavour = "kdenlive"
        version = bin_props["kdenlive:docproperties.version"]
        if Fraction(version) > SUPPORTED_KDENLIVE_VERSION or "kdenlive:docproperties.activetimeline" in bin_props:
            raise ProjectFormatError(
                f"{path.name} is a Kdenlive document version {version} file (Kdenlive 23.04 or newer, with "
                "sequences); this version reads documents up to 1.04 (Kdenlive 22.12). Export the timeline as "
                "OpenTimelineIO from Kdenlive and use that file instead."
            )
        main = tractors[-1]
    else:
        shotcut = [t for t in tractors if "shotcut" in properties(t)]
        flavour = "shotcut" if shotcut else "mlt"
        main = shotcut[-1] if shotcut else tractors[-1]
    base = Path(root.get("root")) if root.get("root") else path.parent
    tracks = tuple(_tracks(main, elements))
    return Document(path, text, root, flavour, rate, base, elements, main, tracks)


def _tracks(main: ET.Element, elements: dict[str, ET.Element]):
    numbers = {"video": 0, "audio": 0}
    for track in main.iter("track"):
        producer = elements.get(track.get("producer"))
        if producer is None or producer.tag not in ("playlist", "tractor") or producer.get("id") == "background":
            continue  # Kdenlive's black_track producer, Shotcut's background playlist
        props = properties(producer)
        if producer.tag == "tractor":
            playlists = tuple(elements[t.get("producer")] for t in producer.iter("track")
                              if elements.get(t.get("producer"), ET.Element("x")).tag == "playlist")
        else:
            playlists = (producer,)
        audio = props.get("kdenlive:audio_track") == "1" or props.get("shotcut:audio") == "1" or \
            track.get("hide") == "video"
        kind = "audio" if audio else "video"
        numbers[kind] += 1
        default = f"{'A' if audio else 'V'}{numbers[kind]}"
        name = props.get("kdenlive:track_name") or props.get("shotcut:name") or default
        yield Track(name, otio.schema.TrackKind.Audio if audio else otio.schema.TrackKind.Video, playlists)


def _clip(doc: Document, entry: ET.Element) -> otio.schema.Clip:
    producer = doc.elements.get(entry.get("producer"))
    if producer is None:
        raise ProjectFormatError(f"{doc.path.name}: an entry uses producer '{entry.get('producer')}', which the "
                                 "file does not define. Re-save the project in the editor.")
    props = properties(producer)
    first = parse_time(entry.get("in"), doc.rate)
    last = parse_time(entry.get("out"), doc.rate)
    service = props.get("mlt_service", "")
    resource = props.get("resource", "")
    effects = []
    if service == "timewarp":
        speed = float(props.get("warp_speed") or resource.split(":", 1)[0])
        resource = props.get("warp_resource") or resource.split(":", 1)[1]
        effects.append(otio.schema.LinearTimeWarp(time_scalar=speed))
    filters = [properties(f).get("mlt_service") for f in (*entry.findall("filter"), *producer.findall("filter"))]
    if "freeze" in filters:
        effects.append(otio.schema.FreezeFrame())
    if service.startswith("avformat") or service == "timewarp":
        media = Path(resource) if Path(resource).is_absolute() else doc.base / resource
        reference = otio.schema.ExternalReference(target_url=media.as_uri())
    else:
        reference = otio.schema.GeneratorReference(generator_kind=service or "unknown")
    name = props.get("kdenlive:clipname") or props.get("shotcut:caption") or Path(resource).name or producer.get("id")
    return otio.schema.Clip(
        name=name,
        media_reference=reference,
        source_range=TimeRange(RationalTime(first, float(doc.rate)), RationalTime(last - first + 1, float(doc.rate))),
        effects=effects,
        metadata={"mlt": {"producer": producer.get("id"), "service": service}},
    )


def _playlist_track(doc: Document, name: str, kind: str, playlist: ET.Element) -> otio.schema.Track:
    track = otio.schema.Track(name=name, kind=kind)
    for item in playlist:
        if item.tag == "blank":
            length = parse_time(item.get("length"), doc.rate)
            track.append(otio.schema.Gap(source_range=TimeRange(duration=RationalTime(length, float(doc.rate)))))
        elif item.tag == "entry":
            track.append(_clip(doc, item))
    return track


def timeline_of(doc: Document) -> otio.schema.Timeline:
    timeline = otio.schema.Timeline(name=doc.path.stem)
    timeline.metadata["mlt"] = {"flavour": doc.flavour, "rate": str(doc.rate)}
    for track in doc.tracks:
        for number, playlist in enumerate(track.playlists):
            name = track.name if number == 0 else f"{track.name} (mix {number})"
            if number == 0 or playlist.find("entry") is not None:
                timeline.tracks.append(_playlist_track(doc, name, track.kind, playlist))
    return timeline


def read_timeline(project: str | Path) -> otio.schema.Timeline:
    """The project's timeline as OTIO: tracks bottom to top, record times in frames at the project rate."""
    return timeline_of(load(project))


def zone(doc: Document) -> TimeRange | None:
    """Kdenlive's timeline zone [zonein, zoneout), if one is set."""
    props = properties(doc.elements["main_bin"]) if "main_bin" in doc.elements else {}
    first = parse_time(props.get("kdenlive:docproperties.zonein"), doc.rate)
    last = parse_time(props.get("kdenlive:docproperties.zoneout"), doc.rate)
    if last <= first:
        return None
    rate = float(doc.rate)
    return TimeRange(RationalTime(first, rate), RationalTime(last - first, rate))


def read_selection(project: str | Path, *, clip: str | None = None, record: TimeRange | None = None) -> Selection:
    """The clip named `clip`, the record range `record`, or else the Kdenlive zone."""
    doc = load(project)
    timeline = timeline_of(doc)
    requested = requested_selection(timeline, clip, record)
    if requested is not None:
        return requested
    marked = zone(doc)
    if marked is None:
        raise SelectionError(f"{doc.path.name} has no zone set. Set a zone (in/out) in the editor and save, or "
                             "name a clip (--clip NAME) or a range (--in/--out).")
    return selection_for(timeline, marked, "zone")


# -- writing -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Placed:
    placement: Placement
    start: int  # frames
    length: int  # frames


def _frames(doc: Document, placement: Placement, warnings: list[str]) -> _Placed:
    exact = seconds(placement.record_start) * doc.rate
    start = math.floor(exact + Fraction(1, 2))
    if exact != start:
        warnings.append(f"{placement.name}: start {float(exact):.3f} frames rounded to frame {start}.")
    return _Placed(placement, start, math.ceil(seconds(placement.duration) * doc.rate))


class _Ids:
    def __init__(self, text: str):
        self.used = set(re.findall(r'\bid="([^"]*)"', text))

    def new(self, prefix: str) -> str:
        number = 1
        while f"{prefix}{number}" in self.used:
            number += 1
        self.used.add(f"{prefix}{number}")
        return f"{prefix}{number}"


def _prop(name: str, value, indent: str) -> str:
    return f'{indent}<property name="{name}">{escape(str(value))}</property>\n'


def _producer(doc: Document, item: _Placed, producer_id: str, bin_id: int | None) -> str:
    wav = item.placement.wav.resolve()
    lines = [f' <producer id="{producer_id}" in="0" out="{item.length - 1}">\n',
             _prop("length", item.length, "  "), _prop("eof", "pause", "  "), _prop("resource", wav, "  "),
             _prop("mlt_service", "avformat-novalidate", "  "), _prop("audio_index", 0, "  "),
             _prop("video_index", -1, "  ")]
    if doc.flavour == "kdenlive":
        lines += [_prop("kdenlive:clipname", item.placement.name, "  "), _prop("kdenlive:clip_type", 1, "  "),
                  _prop("kdenlive:folderid", -1, "  "), _prop("kdenlive:id", bin_id, "  ")]
    elif doc.flavour == "shotcut":
        lines.append(_prop("shotcut:caption", item.placement.name, "  "))
    return "".join(lines) + " </producer>\n"


def _playlist_body(lane: list[_Placed], ids: dict, indent: str) -> str:
    body, cursor = "", 0
    for item in lane:
        if item.start > cursor:
            body += f'{indent}<blank length="{item.start - cursor}"/>\n'
        body += f'{indent}<entry producer="{ids[id(item)]}" in="0" out="{item.length - 1}"/>\n'
        cursor = item.start + item.length
    return body


def _track_xml(doc: Document, lane, producer_ids, name: str, ids: _Ids) -> tuple[str, str]:
    """The elements of one new audio track, and the id the main tractor's <track> refers to."""
    if doc.flavour == "kdenlive":
        first, second, tractor = ids.new("foley_playlist"), ids.new("foley_playlist"), ids.new("foley_tractor")
        audio = _prop("kdenlive:audio_track", 1, "  ")
        xml = (f' <playlist id="{first}">\n{audio}{_playlist_body(lane, producer_ids, "  ")} </playlist>\n'
               f' <playlist id="{second}">\n{audio} </playlist>\n'
               f' <tractor id="{tractor}" in="0">\n{audio}{_prop("kdenlive:track_name", name, "  ")}'
               f'  <track hide="video" producer="{first}"/>\n  <track hide="video" producer="{second}"/>\n'
               f' </tractor>\n')
        return xml, tractor
    playlist = ids.new("foley_playlist")
    named = _prop("shotcut:audio", 1, "  ") + _prop("shotcut:name", name, "  ") if doc.flavour == "shotcut" else ""
    return f' <playlist id="{playlist}">\n{named}{_playlist_body(lane, producer_ids, "  ")} </playlist>\n', playlist


def _mix(doc: Document, transition_id: str, index: int) -> str:
    extra = _prop("kdenlive_id", "mix", "   ") + _prop("internal_added", 237, "   ") + \
        _prop("accepts_blanks", 1, "   ") if doc.flavour == "kdenlive" else ""
    return (f'  <transition id="{transition_id}">\n' + _prop("a_track", 0, "   ") + _prop("b_track", index, "   ")
            + _prop("mlt_service", "mix", "   ") + _prop("always_active", 1, "   ") + _prop("sum", 1, "   ")
            + extra + "  </transition>\n")


def _span(text: str, tag: str, element_id: str) -> tuple[int, int]:
    """Offsets of the start of the line holding <tag id=element_id ...> and of its closing tag's end."""
    match = re.search(rf"<{tag}\b[^>]*\bid={quoteattr(element_id)}", text)
    if match is None:
        raise ProjectFormatError(f"cannot locate <{tag} id=\"{element_id}\"> in the file text.")
    start = text.rfind("\n", 0, match.start()) + 1
    close = text.find(f"</{tag}>", match.start())
    return start, close + len(f"</{tag}>")


def add_foley_tracks(doc: Document, placements: list[Placement], track_name: str = "Foley") -> tuple[str, list[str], list[str]]:
    """The project text with new audio tracks holding `placements`; also the track names and warnings."""
    warnings: list[str] = []
    lanes = [[_frames(doc, placement, warnings) for placement in lane] for lane in pack_lanes(placements)]
    placed = [item for lane in lanes for item in lane]
    names = unique_track_names({track.name for track in doc.tracks}, track_name, len(lanes))
    ids = _Ids(doc.text)
    bin_ids = [int(v) for el in doc.elements.values() for k, v in properties(el).items()
               if k == "kdenlive:id" and v.isdigit()]
    next_bin = max(bin_ids, default=1) + 1
    producer_ids: dict[int, str] = {}
    producers = ""
    for offset, item in enumerate(placed):
        producer_ids[id(item)] = ids.new("foley_producer")
        producers += _producer(doc, item, producer_ids[id(item)], next_bin + offset)
    track_count = sum(1 for _ in doc.main.iter("track"))
    tracks_xml, main_tracks, transitions = "", "", ""
    for number, (lane, name) in enumerate(zip(lanes, names)):
        xml, target = _track_xml(doc, lane, producer_ids, name, ids)
        tracks_xml += xml
        hide = "" if doc.flavour == "kdenlive" else ' hide="video"'
        main_tracks += f'  <track producer="{target}"{hide}/>\n'
        transitions += _mix(doc, ids.new("foley_transition"), track_count + number)

    text = doc.text
    main_start, main_end = _span(text, "tractor", doc.main.get("id"))
    body = text[main_start:main_end]
    last_track = list(re.finditer(r"<track\b[^>]*/>[ \t]*\n?", body))[-1]
    closing = body.rfind("</tractor>")
    closing_line = body.rfind("\n", 0, closing) + 1
    body = body[: last_track.end()] + main_tracks + body[last_track.end() : closing_line] + transitions + \
        body[closing_line:]
    end_frame = max(item.start + item.length for item in placed)
    body = _extend_out(body, doc.rate, end_frame)
    text = text[:main_start] + tracks_xml + body + text[main_end:]
    if doc.flavour == "kdenlive":
        bin_start, bin_end = _span(text, "playlist", "main_bin")
        close_line = text.rfind("\n", bin_start, bin_end - len("</playlist>")) + 1
        entries = "".join(f'  <entry producer="{producer_ids[id(item)]}" in="0" out="{item.length - 1}"/>\n'
                          for item in placed)
        text = text[:bin_start] + producers + text[bin_start:close_line] + entries + text[close_line:]
    else:
        text = text[:main_start] + producers + text[main_start:]
    return text, names, warnings


def _extend_out(tractor_text: str, rate: Fraction, end_frame: int) -> str:
    """Lengthen the main tractor's `out` when the foley ends after it (MLT would cut it off)."""
    opening = re.match(r"[ \t]*<tractor\b[^>]*>", tractor_text)
    out = re.search(r'\bout="([^"]*)"', opening.group(0))
    if out is None or parse_time(out.group(1), rate) >= end_frame - 1:
        return tractor_text
    head = opening.group(0).replace(out.group(0), f'out="{end_frame - 1}"')
    return head + tractor_text[opening.end() :]


def write_audio_clips(project: str | Path, placements: list[Placement], *, track_name: str = "Foley") -> WriteReport:
    """Add `placements` on new audio track(s) named `track_name` (then "Foley 2", ...); back up, write atomically."""
    doc = load(project)
    if not placements:
        raise SelectionError("Nothing to place: no variants were given.")
    for placement in placements:
        if not placement.wav.is_file():
            raise ProjectFormatError(f"{placement.wav} does not exist; generate the foley first.")
    text, names, warnings = add_foley_tracks(doc, placements, track_name)
    try:
        ET.fromstring(text)
    except ET.ParseError as exc:  # an internal fault; never write a broken project
        raise ProjectFormatError(f"the edited project would not be valid XML ({exc}); nothing was written.") from None
    open_in = editors_with_file_open(doc.path, EDITOR_PROGRAMS)
    if open_in:
        warnings.append(f"{doc.path.name} is open in {', '.join(open_in)}: reload it there (File > Revert) and do "
                        "not save the old copy over this change.")
    saved = replace_project(doc.path, text.encode("utf-8"))
    return WriteReport(", ".join(names), saved, tuple(warnings))
