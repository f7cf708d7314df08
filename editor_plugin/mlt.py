"""Kdenlive (.kdenlive) and Shotcut (.mlt) projects: read the timeline and zone, add foley tracks in place.

Both editors save MLT XML. Reading builds an OTIO timeline from the main tractor, or, in Kdenlive 23.04+
documents (version 1.1), from one sequence: a `<tractor>` carrying `kdenlive:uuid` (its id is that uuid or a
plain `tractorN`), the active one named by main_bin's `kdenlive:docproperties.activetimeline` and referred to
by the final `kdenlive:projectTractor`. Writing inserts new elements into the original text (producers, a
track, the `mix` transition without which a new audio track would replace the ones below it) and leaves every
other byte as it was, except the `out` of a timeline that the foley runs past.
"""

import logging
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
    choose_sequence,
    frame_span,
    pack_lanes,
    requested_selection,
    selection_for,
    unique_track_names,
)
from editor_plugin.errors import ProjectFormatError, SelectionError, UnsupportedClipError
from editor_plugin.project_files import editors_with_file_open, replace_project

logger = logging.getLogger(__name__)

# 1.04: Kdenlive 20.08-22.12; 1.1: 23.04 (sequences) up to 26.07, the newest files verified
SUPPORTED_KDENLIVE_VERSION = Fraction(11, 10)
SEQUENCE_PRODUCER_TYPE = "17"  # kdenlive:producer_type of a sequence used as a clip
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
    main: ET.Element  # the tractor of the timeline being read or written
    name: str  # that timeline's name (a Kdenlive sequence's clip name, else the file's stem)
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


def format_time(frames: int, rate: Fraction, like: str) -> str:
    """`frames` written the way `like` is: a frame count, or a clock time that parses back to the same frame."""
    if ":" not in like:
        return str(frames)
    millis = math.floor(Fraction(frames) / rate * 1000 + Fraction(1, 2))
    secs, millis = divmod(millis, 1000)
    return f"{secs // 3600:02d}:{secs // 60 % 60:02d}:{secs % 60:02d}.{millis:03d}"


def load(path: str | Path, sequence: str | None = None) -> Document:
    """Parse a Kdenlive or Shotcut project and pick its timeline (`sequence` by name), or explain why not."""
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
        _check_kdenlive_version(path, bin_props)
        timelines = _kdenlive_sequences(tractors) or {path.stem: tractors[-1]}
        active = next((name for name, tractor in timelines.items()
                       if properties(tractor).get("kdenlive:uuid") == bin_props.get(
                           "kdenlive:docproperties.activetimeline")), None)
    else:
        shotcut = [t for t in tractors if "shotcut" in properties(t)]
        flavour = "shotcut" if shotcut else "mlt"
        timelines, active = {path.stem: shotcut[-1] if shotcut else tractors[-1]}, None
    main = choose_sequence(timelines, sequence, path.name, active)
    name = next(name for name, tractor in timelines.items() if tractor is main)
    logger.debug("%s: %s timeline %r (tractor %s) of %s", path.name, flavour, name, main.get("id"), list(timelines))
    base = Path(root.get("root")) if root.get("root") else path.parent
    tracks = tuple(_tracks(main, elements))
    return Document(path, text, root, flavour, rate, base, elements, main, name, tracks)


def _check_kdenlive_version(path: Path, bin_props: dict[str, str]) -> None:
    """Refuse a document version newer than the newest this reader was verified on."""
    version = bin_props["kdenlive:docproperties.version"]
    try:
        known = Fraction(version) <= SUPPORTED_KDENLIVE_VERSION
    except (ValueError, ZeroDivisionError):
        known = False
    if not known:
        made_by = bin_props.get("kdenlive:docproperties.kdenliveversion", "an unknown Kdenlive")
        raise ProjectFormatError(
            f"{path.name} is a Kdenlive document version {version} file (written by {made_by}); this version "
            "reads documents up to 1.1 (Kdenlive 20.08 to 26.x). Export the timeline as OpenTimelineIO from "
            "Kdenlive (File > Export > OpenTimelineIO, Kdenlive 25.04+) and use that file instead."
        )


def _kdenlive_sequences(tractors: list[ET.Element]) -> dict[str, ET.Element]:
    """Kdenlive 1.1 sequences by clip name: per `kdenlive:uuid`, the tractor whose id is the uuid, else the last.

    A nested sequence can be saved as extra copies (plain `tractorN` ids, same uuid); the sequence itself is
    the copy whose id is its uuid or, when no copy has that id, the only/last one (Kdenlive 25.12+ ids).
    """
    by_uuid: dict[str, ET.Element] = {}
    for tractor in tractors:
        uuid = properties(tractor).get("kdenlive:uuid")
        if uuid and (uuid not in by_uuid or by_uuid[uuid].get("id") != uuid):
            by_uuid[uuid] = tractor
    named: dict[str, ET.Element] = {}
    for uuid, tractor in by_uuid.items():
        name = properties(tractor).get("kdenlive:clipname") or uuid
        named[name if name not in named else f"{name} {uuid}"] = tractor
    return named


def _tracks(main: ET.Element, elements: dict[str, ET.Element]):
    numbers = {"video": 0, "audio": 0}
    for track in main.findall("track"):
        producer = elements.get(track.get("producer"))
        if producer is None or producer.tag not in ("playlist", "tractor") or producer.get("id") == "background":
            continue  # Kdenlive's black_track producer, Shotcut's background playlist
        props = properties(producer)
        if producer.tag == "tractor":
            playlists = tuple(elements[t.get("producer")] for t in producer.findall("track")
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


def _unfollowable(producer: ET.Element, props: dict[str, str]) -> str | None:
    """Why the engine cannot follow this clip's picture from its media file, or None."""
    if producer.tag == "tractor" and (props.get("kdenlive:producer_type") == SEQUENCE_PRODUCER_TYPE
                                      or "kdenlive:uuid" in props):
        return "is a nested sequence"
    if any(properties(link).get("mlt_service") == "timeremap" for link in producer.findall("link")):
        return "plays with a time remap (speed ramp)"
    return None


def _defined(doc: Document, producer_id: str | None) -> ET.Element:
    producer = doc.elements.get(producer_id)
    if producer is None:
        raise ProjectFormatError(f"{doc.path.name}: an entry uses producer '{producer_id}', which the file does not "
                                 "define. Re-save the project in the editor.")
    return producer


def _clip(doc: Document, entry: ET.Element) -> otio.schema.Clip:
    producer = _defined(doc, entry.get("producer"))
    first = parse_time(entry.get("in"), doc.rate)
    last = parse_time(entry.get("out"), doc.rate)
    if producer.tag == "tractor" and "shotcut:transition" in properties(producer):
        # a Shotcut cross-fade: a small tractor of the outgoing and the incoming clip; the incoming one (its
        # last track) is what the picture turns into, and its source time runs on into the next entry
        incoming = producer.findall("track")[-1]
        producer = _defined(doc, incoming.get("producer"))
        offset = parse_time(incoming.get("in"), doc.rate)
        first, last = first + offset, last + offset
    props = properties(producer)
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
        reference = otio.schema.GeneratorReference(generator_kind=service or producer.tag)
    name = props.get("kdenlive:clipname") or props.get("shotcut:caption") or Path(resource).name or producer.get("id")
    return otio.schema.Clip(
        name=name,
        media_reference=reference,
        source_range=TimeRange(RationalTime(first, float(doc.rate)), RationalTime(last - first + 1, float(doc.rate))),
        effects=effects,
        metadata={"mlt": {"producer": producer.get("id"), "service": service,
                          "unfollowable": _unfollowable(producer, props)}},
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
    timeline = otio.schema.Timeline(name=doc.name)
    timeline.metadata["mlt"] = {"flavour": doc.flavour, "rate": str(doc.rate)}
    for track in doc.tracks:
        for number, playlist in enumerate(track.playlists):
            name = track.name if number == 0 else f"{track.name} (mix {number})"
            if number == 0 or playlist.find("entry") is not None:
                timeline.tracks.append(_playlist_track(doc, name, track.kind, playlist))
    return timeline


def read_timeline(project: str | Path, *, sequence: str | None = None) -> otio.schema.Timeline:
    """The timeline (or the sequence named `sequence`) as OTIO: tracks bottom to top, times in project frames."""
    return timeline_of(load(project, sequence))


def zone(doc: Document) -> TimeRange | None:
    """Kdenlive's timeline zone [zonein, zoneout): the sequence's own (1.1), else the document's, if one is set."""
    props = properties(doc.elements["main_bin"]) if "main_bin" in doc.elements else {}
    own = properties(doc.main)
    if "kdenlive:sequenceproperties.zoneout" in own:
        first, last = own.get("kdenlive:sequenceproperties.zonein"), own["kdenlive:sequenceproperties.zoneout"]
    else:
        first, last = props.get("kdenlive:docproperties.zonein"), props.get("kdenlive:docproperties.zoneout")
    first, last = parse_time(first, doc.rate), parse_time(last, doc.rate)
    if last <= first:
        return None
    rate = float(doc.rate)
    return TimeRange(RationalTime(first, rate), RationalTime(last - first, rate))


def _refuse_unfollowable(timeline: otio.schema.Timeline, record: TimeRange) -> None:
    """A nested sequence or a time remap under the selection cannot be followed from a media file: refuse."""
    for track in timeline.video_tracks():
        for clip in track.find_clips(search_range=record):
            reason = clip.metadata.get("mlt", {}).get("unfollowable")
            if reason and clip.enabled:
                raise UnsupportedClipError(
                    f"Clip '{clip.name}' {reason}; foley is generated from the media files under the selection. "
                    "Select a range without it (or render the range to a file and use that)."
                )


def read_selection(project: str | Path, *, clip: str | None = None, record: TimeRange | None = None,
                   sequence: str | None = None) -> Selection:
    """The clip named `clip`, the record range `record`, or else the Kdenlive zone (of `sequence` if named)."""
    doc = load(project, sequence)
    timeline = timeline_of(doc)
    # checked before the range is resolved: a nested sequence alone would otherwise read as "no video"
    named = [c for track in reversed(timeline.video_tracks()) for c in track.find_clips() if c.name == clip]
    for asked in ([record] if record is not None else []) + [c.range_in_parent() for c in named[:1]]:
        _refuse_unfollowable(timeline, asked)
    requested = requested_selection(timeline, clip, record)
    if requested is not None:
        return requested
    marked = zone(doc)
    if marked is None:
        raise SelectionError(f"{doc.path.name} has no zone set. Set a zone (in/out) in the editor and save, or "
                             "name a clip (--clip NAME) or a range (--in/--out).")
    _refuse_unfollowable(timeline, marked)
    return selection_for(timeline, marked, "zone")


# -- writing -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Placed:
    placement: Placement
    start: int  # frames
    length: int  # frames


def _frames(doc: Document, placement: Placement, warnings: list[str]) -> _Placed:
    return _Placed(placement, *frame_span(placement, doc.rate, warnings))


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
    """The WAV's producer; a <chain> (MLT 7) when the editor saves its own media as chains (Kdenlive 23+, Shotcut)."""
    wav = item.placement.wav.resolve()
    tag = "chain" if doc.root.find("chain") is not None else "producer"
    lines = [f' <{tag} id="{producer_id}" in="0" out="{item.length - 1}">\n',
             _prop("length", item.length, "  "), _prop("eof", "pause", "  "), _prop("resource", wav, "  "),
             _prop("mlt_service", "avformat-novalidate", "  "), _prop("audio_index", 0, "  "),
             _prop("video_index", -1, "  ")]
    if doc.flavour == "kdenlive":
        lines += [_prop("kdenlive:clipname", item.placement.name, "  "), _prop("kdenlive:clip_type", 1, "  "),
                  _prop("kdenlive:folderid", -1, "  "), _prop("kdenlive:id", bin_id, "  ")]
    elif doc.flavour == "shotcut":
        lines.append(_prop("shotcut:caption", item.placement.name, "  "))
    return "".join(lines) + f" </{tag}>\n"


def _playlist_body(lane: list[_Placed], ids: dict, indent: str) -> str:
    body, cursor = "", 0
    for item in lane:
        if item.start > cursor:
            body += f'{indent}<blank length="{item.start - cursor}"/>\n'
        body += f'{indent}<entry producer="{ids[id(item)]}" in="0" out="{item.length - 1}"/>\n'
        cursor = item.start + item.length
    return body


def _kdenlive_track_filters(ids: _Ids) -> str:
    """The volume, panner and level filters Kdenlive 23.04+ saves on every audio track (off until used)."""
    settings = (("volume", (("window", 75), ("max_gain", "20dB"))), ("panner", (("channel", -1), ("start", 0.5))),
                ("audiolevel", (("iec_scale", 0), ("dbpeak", 1))))
    xml = ""
    for service, extra in settings:
        added = _prop("internal_added", 237, "   ") if service != "audiolevel" else ""
        xml += (f'  <filter id="{ids.new("foley_filter")}">\n' + "".join(_prop(k, v, "   ") for k, v in extra)
                + _prop("mlt_service", service, "   ") + added + _prop("disable", 1, "   ") + "  </filter>\n")
    return xml


def _track_xml(doc: Document, lane, producer_ids, name: str, ids: _Ids) -> tuple[str, str]:
    """The elements of one new audio track, and the id the timeline tractor's <track> refers to."""
    if doc.flavour == "kdenlive":
        first, second, tractor = ids.new("foley_playlist"), ids.new("foley_playlist"), ids.new("foley_tractor")
        audio = _prop("kdenlive:audio_track", 1, "  ")
        sequences = "kdenlive:uuid" in properties(doc.main)  # 1.1 documents: tracks as Kdenlive 23.04+ saves them
        shown = _prop("kdenlive:timeline_active", 1, "  ") if sequences else ""
        filters = _kdenlive_track_filters(ids) if sequences else ""
        xml = (f' <playlist id="{first}">\n{audio}{_playlist_body(lane, producer_ids, "  ")} </playlist>\n'
               f' <playlist id="{second}">\n{audio} </playlist>\n'
               f' <tractor id="{tractor}" in="0">\n{audio}{_prop("kdenlive:track_name", name, "  ")}{shown}'
               f'  <track hide="video" producer="{first}"/>\n  <track hide="video" producer="{second}"/>\n'
               f'{filters} </tractor>\n')
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
    match = re.search(rf"<{tag}\b[^>]*\bid={re.escape(quoteattr(element_id))}", text)
    if match is None:
        raise ProjectFormatError(f"cannot locate <{tag} id=\"{element_id}\"> in the file text.")
    start = text.rfind("\n", 0, match.start()) + 1
    close = text.find(f"</{tag}>", match.start())
    return start, close + len(f"</{tag}>")


def _new_producers(doc: Document, placed: list[_Placed], ids: _Ids) -> tuple[str, dict[int, str]]:
    """The producer elements of the placed WAVs (with fresh Kdenlive bin ids), and each placement's producer id."""
    bin_ids = [int(v) for el in doc.elements.values() for k, v in properties(el).items()
               if k == "kdenlive:id" and v.isdigit()]
    next_bin = max(bin_ids, default=1) + 1
    producer_ids: dict[int, str] = {}
    producers = ""
    for offset, item in enumerate(placed):
        producer_ids[id(item)] = ids.new("foley_producer")
        producers += _producer(doc, item, producer_ids[id(item)], next_bin + offset)
    return producers, producer_ids


def add_foley_tracks(doc: Document, placements: list[Placement], track_name: str = "Foley") -> tuple[str, list[str], list[str]]:
    """The project text with new audio tracks holding `placements`; also the track names and warnings."""
    warnings: list[str] = []
    lanes = [[_frames(doc, placement, warnings) for placement in lane] for lane in pack_lanes(placements)]
    placed = [item for lane in lanes for item in lane]
    names = unique_track_names({track.name for track in doc.tracks}, track_name, len(lanes))
    ids = _Ids(doc.text)
    producers, producer_ids = _new_producers(doc, placed, ids)
    track_count = len(doc.main.findall("track"))
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
        text = _bin_entries(text, placed, producer_ids)
        text = _extend_project_tractor(doc, text, end_frame)
    # MLT needs a producer defined before its first use: the new playlists above the timeline tractor, or the
    # project bin when it comes first (1.04 documents may save main_bin before the tracks; 1.1 after the sequences)
    first_use = min(main_start, _span(text, "playlist", "main_bin")[0] if doc.flavour == "kdenlive" else main_start)
    return text[:first_use] + producers + text[first_use:], names, warnings


def _bin_entries(text: str, placed: list[_Placed], producer_ids: dict[int, str]) -> str:
    """List the WAVs in Kdenlive's project bin (main_bin; in 1.1 documents it comes after the sequences)."""
    bin_start, bin_end = _span(text, "playlist", "main_bin")
    close_line = text.rfind("\n", bin_start, bin_end - len("</playlist>")) + 1
    entries = "".join(f'  <entry producer="{producer_ids[id(item)]}" in="0" out="{item.length - 1}"/>\n'
                      for item in placed)
    return text[:close_line] + entries + text[close_line:]


def _extend_out(element_text: str, rate: Fraction, end_frame: int) -> str:
    """Lengthen the `out` of the element opening `element_text` when the foley ends after it (MLT cuts it off)."""
    opening = re.match(r"[ \t]*<\w+\b[^>]*>", element_text)
    out = re.search(r'\bout="([^"]*)"', opening.group(0))
    if out is None or parse_time(out.group(1), rate) >= end_frame - 1:
        return element_text
    head = opening.group(0).replace(out.group(0), f'out="{format_time(end_frame - 1, rate, out.group(1))}"')
    return head + element_text[opening.end() :]


def _extend_project_tractor(doc: Document, text: str, end_frame: int) -> str:
    """Kdenlive 1.1: lengthen the projectTractor and its <track> entry of the sequence (melt plays only that)."""
    for tractor in doc.root.findall("tractor"):
        refers = any(track.get("producer") == doc.main.get("id") for track in tractor.findall("track"))
        if "kdenlive:projectTractor" not in properties(tractor) or not refers:
            continue
        start, end = _span(text, "tractor", tractor.get("id"))
        body = _extend_out(text[start:end], doc.rate, end_frame)
        entry = re.search(rf"[ \t]*<track\b[^>]*\bproducer={re.escape(quoteattr(doc.main.get('id')))}[^>]*>", body)
        body = body[: entry.start()] + _extend_out(body[entry.start() :], doc.rate, end_frame)
        text = text[:start] + body + text[end:]
    return text


def write_audio_clips(project: str | Path, placements: list[Placement], *, track_name: str = "Foley",
                      sequence: str | None = None) -> WriteReport:
    """Add `placements` on new audio track(s) named `track_name` (then "Foley 2", ...) of the timeline (or the
    sequence named `sequence`); back up, write atomically."""
    doc = load(project, sequence)
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
