"""Premiere Pro, DaVinci Resolve and Final Cut Pro 7 timelines through FCP 7 XML (xmeml): read, add foley in place.

Reading builds an OTIO timeline from the chosen `<sequence>` with exact rational rates (29.97 is 30000/1001)
and the sequence's start timecode as `global_start_time`. Writing inserts new audio `<track>` elements into the
original bytes of that sequence and leaves every other byte as it was, so effects, labels, logging info, links
and the editors' own attributes survive.
"""

import logging
import re
import urllib.parse
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from xml.parsers import expat
from xml.sax.saxutils import escape, quoteattr

import opentimelineio as otio
import soundfile
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
    unique_track_names,
)
from editor_plugin.errors import ProjectFormatError, SelectionError, UnsupportedClipError
from editor_plugin.project_files import check_writable, replace_project

logger = logging.getLogger(__name__)

NEWEST_VERSION = 5  # xmeml 5 is FCP 7's last; Premiere writes 4, Resolve and FCP 7 write 5
CONTAINERS = ("project", "children", "bin")  # where FCP 7 keeps sequences besides the root
ITEMS = ("clipitem", "generatoritem")
DEPTHS = {"PCM_16": 16, "PCM_24": 24, "PCM_32": 32, "FLOAT": 32, "DOUBLE": 64, "PCM_U8": 8, "PCM_S8": 8}  # bits
SPEED_AS_RATIO_BELOW = 5  # Hiero writes speed 0.25 for quarter speed; FCP and Premiere write percent (100)

CAPABILITIES = Capabilities(writes_live=False, needs_project_closed=True, selection=("clip", "range"))


def host_name() -> str:
    return "Premiere Pro / DaVinci Resolve / Final Cut Pro 7 (FCP 7 XML)"


@dataclass(frozen=True)
class Rate:
    """A `<rate>`: the nominal timebase and the NTSC flag, i.e. the exact frame rate."""

    timebase: int
    ntsc: bool

    @property
    def exact(self) -> Fraction:
        return Fraction(self.timebase * 1000, 1001) if self.ntsc else Fraction(self.timebase)

    @property
    def otio(self) -> float:
        return float(self.exact)


@dataclass(frozen=True)
class Document:
    """A parsed xmeml file, byte offsets of its elements (for insertion) and its media files by id."""

    path: Path
    data: bytes
    root: ET.Element
    spans: dict[int, tuple[int, int]]  # id(element) -> (offset of its start tag, offset of its end tag)
    files: dict[str, Path]
    sequences: dict[str, ET.Element]


# -- parsing -----------------------------------------------------------------------------------------------------


def _parse(data: bytes) -> tuple[ET.Element, dict[int, tuple[int, int]]]:
    """ElementTree elements plus where each one's start and end tag sit in `data` (expat byte offsets)."""
    builder, spans, stack = ET.TreeBuilder(), {}, []
    parser = expat.ParserCreate()

    def start(tag, attributes):
        stack.append((builder.start(tag, attributes), parser.CurrentByteIndex))

    def end(tag):
        element, begin = stack.pop()
        spans[id(element)] = (begin, parser.CurrentByteIndex)
        builder.end(tag)

    parser.StartElementHandler, parser.EndElementHandler, parser.CharacterDataHandler = start, end, builder.data
    parser.Parse(data, True)
    return builder.close(), spans


def load(project: str | Path) -> Document:
    """Parse an FCP 7 XML file, or explain in one line why it cannot be used."""
    path = Path(project)
    if not path.is_file():
        raise ProjectFormatError(f"No timeline file at {path}. Check the path.")
    data = path.read_bytes()
    try:
        root, spans = _parse(data)
    except expat.ExpatError as exc:
        raise ProjectFormatError(f"{path.name} is not readable XML ({exc}); the file is damaged or cut short. "
                                 "Export the XML from your editor again.") from None
    if root.tag != "xmeml":
        raise ProjectFormatError(f"{path.name} is XML but not FCP 7 XML (root <{root.tag}>, expected <xmeml>). "
                                 "Export 'Final Cut Pro XML' (Premiere) or 'FCP 7 XML' (Resolve).")
    version = root.get("version", "")
    if version.isdigit() and int(version) > NEWEST_VERSION:
        raise ProjectFormatError(f"{path.name} is xmeml version {version}; this reader knows versions up to "
                                 f"{NEWEST_VERSION} (FCP 7). Export FCP 7 XML (version 4 or 5) instead.")
    sequences = _top_sequences(root)
    return Document(path, data, root, spans, _media_files(root, path.parent), sequences)


def _top_sequences(root: ET.Element) -> dict[str, ET.Element]:
    """Timelines of the file by name: under the root, a <project> or its bins (not ones nested in clips)."""
    found: dict[str, ET.Element] = {}

    def walk(element: ET.Element) -> None:
        for child in element:
            if child.tag == "sequence":
                name = (child.findtext("name") or "").strip() or child.get("id") or f"Sequence {len(found) + 1}"
                key, number = name, 1
                while key in found:  # two sequences may share a name; keep both reachable
                    number += 1
                    key = f"{name} ({number})"
                found[key] = child
            elif child.tag in CONTAINERS:
                walk(child)

    walk(root)
    return found


def media_path(url: str, base: Path) -> Path:
    """A `<pathurl>` as a path: file URLs (file://localhost/..., percent-encoded) or a path relative to the XML."""
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme == "file":
        path = urllib.parse.unquote(parsed.path)
        if re.match(r"/[A-Za-z]:", path):  # file://localhost/D%3a/media/x.mov: a Windows drive path
            path = path[1:]
        return Path(path)
    path = Path(urllib.parse.unquote(url))
    return path if path.is_absolute() else base / path


def _media_files(root: ET.Element, base: Path) -> dict[str, Path]:
    """Media by `<file id>`: the first occurrence of an id holds the `<pathurl>`; later ones only refer to it."""
    files: dict[str, Path] = {}
    for element in root.iter("file"):
        url = (element.findtext("pathurl") or "").strip()
        if element.get("id") and url and element.get("id") not in files:
            files[element.get("id")] = media_path(url, base)
    return files


def rate_of(element: ET.Element | None) -> Rate | None:
    """The `<rate>` directly under `element`, if it has one."""
    rate = element.find("rate") if element is not None else None
    if rate is None or not (rate.findtext("timebase") or "").strip():
        return None
    return Rate(round(_number(rate, "timebase")), (rate.findtext("ntsc") or "").strip().upper() == "TRUE")


def _number(element: ET.Element, tag: str, default: Fraction | None = None) -> Fraction:
    text = (element.findtext(tag) or "").strip()
    if not text and default is not None:
        return default
    try:
        return Fraction(text)  # Hiero writes frame counts as "1055.0"
    except ValueError:
        raise ProjectFormatError(f"a <{element.tag}> has <{tag}>{text}</{tag}>, which is not a number; export the "
                                 "XML from your editor again.") from None


def timecode_frames(text: str, timebase: int, drop: bool) -> int:
    """Frames since 00:00:00:00 for a timecode string; drop-frame skips 2 (4 at 60p) frame numbers a minute."""
    hours, minutes, secs, frames = (int(part) for part in re.split(r"[:;.]", text.strip()))
    count = ((hours * 60 + minutes) * 60 + secs) * timebase + frames
    if drop:
        total_minutes = hours * 60 + minutes
        count -= (timebase // 15) * (total_minutes - total_minutes // 10)
    return count


def start_frame(sequence: ET.Element, rate: Rate) -> int:
    """The sequence's start timecode in frames (record times count from it); 0 when it has none."""
    timecode = sequence.find("timecode")
    if timecode is None:
        return 0
    if (timecode.findtext("frame") or "").strip():
        return int(Fraction(timecode.findtext("frame").strip()))
    text = (timecode.findtext("string") or "").strip()
    if not text:
        return 0
    tc_rate = rate_of(timecode) or rate
    return timecode_frames(text, tc_rate.timebase, (timecode.findtext("displayformat") or "").strip() == "DF")


# -- timeline ----------------------------------------------------------------------------------------------------


def _cut_point(transition: ET.Element | None, clip: ET.Element) -> int:
    """Where a transition hands over from one clip to the next (FCP 7 writes -1 for a clip edge inside it)."""
    if transition is None or transition.tag != "transitionitem":
        raise ProjectFormatError(f"Clip '{clip.findtext('name')}' has a start or end of -1 but no transition next "
                                 "to it; export the XML from your editor again.")
    first, last = int(_number(transition, "start")), int(_number(transition, "end"))
    alignment = (transition.findtext("alignment") or "center").strip()
    if alignment in ("start", "start-black"):
        return first
    if alignment in ("end", "end-black"):
        return last
    return (first + last) // 2


def _speed_effect(item: ET.Element) -> otio.schema.LinearTimeWarp | None:
    """A time remap or speed filter that changes the playback speed, as OTIO's time warp."""
    for effect in item.findall("filter/effect"):  # the clip's own filters, not those inside a nested sequence
        kind = ((effect.findtext("effectid") or "") + " " + (effect.findtext("name") or "")).lower()
        if "timeremap" not in kind and "time remap" not in kind and "speed" not in kind:
            continue
        values = {(p.findtext("parameterid") or p.findtext("name") or "").strip().lower(): (p.findtext("value") or "")
                  for p in effect.iter("parameter")}
        speed = Fraction(values.get("speed", "").strip() or 100)
        scalar = speed if abs(speed) < SPEED_AS_RATIO_BELOW else speed / 100
        if values.get("reverse", "").strip().upper() == "TRUE":
            scalar = -scalar
        if scalar != 1:  # a variable (keyframed) remap carries its average speed here (Premiere: 108.451)
            return otio.schema.LinearTimeWarp(name=effect.findtext("name") or "speed", time_scalar=float(scalar))
    return None


def _reference(doc: Document, item: ET.Element) -> otio.core.MediaReference:
    if item.find("sequence") is not None:
        return otio.schema.MissingReference(name="nested sequence")
    file = item.find("file")
    path = doc.files.get(file.get("id")) if file is not None else None
    if path is None:
        return otio.schema.MissingReference()
    return otio.schema.ExternalReference(target_url=path.as_uri() if path.is_absolute() else str(path))


def _clip(doc: Document, item: ET.Element, rate: Rate, record: tuple[int, int], head_offset: int) -> otio.schema.Clip:
    """One clipitem: `<in>` counts at the clip's own rate (it may differ from the sequence's).

    Source and record times are both kept at the sequence rate: `contract.timeline_rate` reads the rate off the
    first clip, and a 15 fps clip on V1 must not turn frame numbers typed by the user into 15 fps frames.
    """
    clip_rate = rate_of(item) or rate_of(item.find("file")) or rate
    source = _number(item, "in", Fraction(0)) / clip_rate.exact + Fraction(head_offset) / rate.exact
    name = (item.findtext("name") or "").strip() or item.get("id") or "clip"
    effect = _speed_effect(item)
    nested = item.find("sequence") is not None
    clip = otio.schema.Clip(
        name=name,
        media_reference=_reference(doc, item),
        source_range=TimeRange(RationalTime(float(source * rate.exact), rate.otio),
                               RationalTime(record[1] - record[0], rate.otio)),
        effects=[effect] if effect else [],
        metadata={"xmeml": {"id": item.get("id") or "", "nested": nested}},
    )
    clip.enabled = _enabled(item)
    return clip


def _enabled(element: ET.Element) -> bool:
    """Disabled clips and tracks say `<enabled>FALSE</enabled>`; no element means enabled."""
    return (element.findtext("enabled") or "TRUE").strip().upper() != "FALSE"


def _track(doc: Document, element: ET.Element, rate: Rate, name: str, kind: str) -> otio.schema.Track:
    """A `<track>`: its clipitems placed by their record frames, gaps between them."""
    track = otio.schema.Track(name=name, kind=kind)
    track.enabled = _enabled(element)
    children = [child for child in element if child.tag in (*ITEMS, "transitionitem")]
    cursor = 0
    for index, item in enumerate(children):
        if item.tag == "transitionitem":
            continue
        first, last = int(_number(item, "start")), int(_number(item, "end"))
        offset = 0
        if first == -1:
            first = _cut_point(children[index - 1] if index else None, item)
            offset = first - int(_number(children[index - 1], "start"))
        if last == -1:
            last = _cut_point(children[index + 1] if index + 1 < len(children) else None, item)
        if first < cursor:  # overlapping items do not occur in editor exports; keep the later one's tail
            logger.info("%s: clip '%s' overlaps the one before it; trimmed to frame %d", name,
                        item.findtext("name"), cursor)
            offset, first = offset + cursor - first, cursor
        if last <= first:
            continue
        if first > cursor:
            track.append(otio.schema.Gap(source_range=TimeRange(duration=RationalTime(first - cursor, rate.otio))))
        track.append(_clip(doc, item, rate, (first, last), offset))
        cursor = last
    return track


def track_name(element: ET.Element, default: str) -> str:
    """Premiere keeps a track's name in `MZ.TrackName`; FCP 7 and Resolve tracks are numbered."""
    return element.get("MZ.TrackName") or default


def timeline_of(doc: Document, sequence: ET.Element, name: str) -> otio.schema.Timeline:
    """The sequence as OTIO: video tracks bottom (V1) to top, then audio tracks, times from the sequence start."""
    rate = rate_of(sequence)
    if rate is None:
        raise ProjectFormatError(f"{doc.path.name}: sequence '{name}' has no <rate>; export the XML again.")
    timeline = otio.schema.Timeline(name=name, global_start_time=RationalTime(start_frame(sequence, rate), rate.otio))
    timeline.metadata["xmeml"] = {"rate": str(rate.exact), "timebase": rate.timebase, "ntsc": rate.ntsc}
    for kind, prefix in ((otio.schema.TrackKind.Video, "V"), (otio.schema.TrackKind.Audio, "A")):
        for number, element in enumerate(sequence.findall(f"media/{kind.lower()}/track"), start=1):
            timeline.tracks.append(_track(doc, element, rate, track_name(element, f"{prefix}{number}"), kind))
    return timeline


def _chosen(doc: Document, sequence: str | None) -> tuple[str, ET.Element]:
    element = choose_sequence(doc.sequences, sequence, doc.path.name)
    name = next(key for key, value in doc.sequences.items() if value is element)
    return name, element


def read_timeline(project: str | Path, *, sequence: str | None = None) -> otio.schema.Timeline:
    """The named sequence (else the only or first one) as an OTIO timeline at its exact frame rate."""
    doc = load(project)
    name, element = _chosen(doc, sequence)
    return timeline_of(doc, element, name)


def _refuse_nested(timeline: otio.schema.Timeline, record: TimeRange) -> None:
    """A nested sequence's pictures are not a media file; refuse rather than show the tracks below it."""
    for track in timeline.video_tracks():
        if not track.enabled:
            continue
        for clip in track.find_clips(search_range=record):
            if clip.enabled and clip.metadata["xmeml"]["nested"]:
                raise UnsupportedClipError(
                    f"Clip '{clip.name}' is a nested sequence; foley needs the media file underneath. Select a "
                    "range without it, or export the nested sequence itself (sequence=its name) and use that."
                )


def read_selection(project: str | Path, *, clip: str | None = None, record: TimeRange | None = None,
                   sequence: str | None = None) -> Selection:
    """FCP 7 XML records no selection: the clip named `clip` or the record range `record` of the sequence."""
    timeline = read_timeline(project, sequence=sequence)
    if clip is None and record is None:
        raise SelectionError(f"{Path(project).name} records no selection; name a clip (--clip NAME) or a range "
                             "(--in/--out).")
    target = record if clip is None else next(
        (item.range_in_parent() for track in reversed(timeline.video_tracks()) for item in track.find_clips()
         if item.name == clip), None)  # the clip contract.clip_selection picks: the first from the top track
    if target is not None:
        _refuse_nested(timeline, target)
    return requested_selection(timeline, clip, record)


# -- writing -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Placed:
    placement: Placement
    start: int  # record frame from the sequence start
    length: int  # frames, rounded up (the tail is silence)
    samplerate: int
    channels: int
    depth: int


def _placed(placement: Placement, rate: Rate, warnings: list[str]) -> _Placed:
    start, length = frame_span(placement, rate.exact, warnings)
    try:
        info = soundfile.info(str(placement.wav))
    except (OSError, RuntimeError) as exc:  # soundfile's errors subclass RuntimeError
        raise ProjectFormatError(f"Cannot read {placement.wav} as audio ({exc}); generate the foley again.") from None
    return _Placed(placement, start, length, info.samplerate, info.channels, DEPTHS.get(info.subtype, 16))


def pathurl(path: Path) -> str:
    """The `file://localhost/...` URL Premiere and FCP 7 write (percent-encoded)."""
    posix = path.resolve().as_posix()
    return "file://localhost" + urllib.parse.quote(posix if posix.startswith("/") else f"/{posix}")


class _Ids:
    """Fresh element ids that no element of the file uses yet."""

    def __init__(self, root: ET.Element):
        self.used = {element.get("id") for element in root.iter() if element.get("id")}

    def new(self, prefix: str) -> str:
        number = 1
        while f"{prefix}-{number}" in self.used:
            number += 1
        self.used.add(f"{prefix}-{number}")
        return f"{prefix}-{number}"


@dataclass(frozen=True)
class _Style:
    """How the file is laid out, so inserted text looks like the editor's own."""

    newline: str
    indent: str  # of the new <track> lines
    unit: str  # one indentation step
    premiere: bool  # Premiere writes per-track attributes (MZ.*, panner) and <outputchannelindex>


def _rate_xml(rate: Rate, pad: str, style: _Style) -> str:
    inner = pad + style.unit
    return (f"{pad}<rate>{style.newline}{inner}<timebase>{rate.timebase}</timebase>{style.newline}"
            f"{inner}<ntsc>{'TRUE' if rate.ntsc else 'FALSE'}</ntsc>{style.newline}{pad}</rate>{style.newline}")


def _clipitem_xml(item: _Placed, rate: Rate, ids: _Ids, pad: str, style: _Style) -> str:
    """One `<clipitem>` with its own `<file>` (pathurl, audio sample characteristics, mono/stereo channels)."""
    n, u = style.newline, style.unit
    wav = item.placement.wav
    p1, p2, p3, p4, p5 = (pad + u * k for k in range(1, 6))
    lines = [
        f'{pad}<clipitem id={quoteattr(ids.new("clipitem-foley"))}>{n}',
        f"{p1}<name>{escape(item.placement.name)}</name>{n}",
        f"{p1}<enabled>TRUE</enabled>{n}",
        f"{p1}<duration>{item.length}</duration>{n}",
        _rate_xml(rate, p1, style),
        f"{p1}<start>{item.start}</start>{n}",
        f"{p1}<end>{item.start + item.length}</end>{n}",
        f"{p1}<in>0</in>{n}",
        f"{p1}<out>{item.length}</out>{n}",
        f'{p1}<file id={quoteattr(ids.new("file-foley"))}>{n}',
        f"{p2}<name>{escape(wav.name)}</name>{n}",
        f"{p2}<pathurl>{escape(pathurl(wav))}</pathurl>{n}",
        _rate_xml(rate, p2, style),
        f"{p2}<duration>{item.length}</duration>{n}",
        f"{p2}<media>{n}{p3}<audio>{n}{p4}<samplecharacteristics>{n}",
        f"{p5}<depth>{item.depth}</depth>{n}{p5}<samplerate>{item.samplerate}</samplerate>{n}",
        f"{p4}</samplecharacteristics>{n}{p4}<channelcount>{item.channels}</channelcount>{n}",
        f"{p3}</audio>{n}{p2}</media>{n}",
        f"{p1}</file>{n}",
        f"{p1}<sourcetrack>{n}{p2}<mediatype>audio</mediatype>{n}{p2}<trackindex>1</trackindex>{n}"
        f"{p1}</sourcetrack>{n}",
        f"{pad}</clipitem>{n}",
    ]
    return "".join(lines)


def _track_open(name: str, style: _Style) -> str:
    if not style.premiere:
        return "<track>"
    # what Premiere writes for a mono audio track; MZ.TrackTargeted="0" leaves the user's track targeting alone
    return (f'<track monotrack="TRUE" TL.SQTrackAudioKeyframeStyle="0" TL.SQTrackShy="0" '
            f'TL.SQTrackExpandedHeight="25" TL.SQTrackExpanded="0" MZ.TrackTargeted="0" MZ.TrackName={quoteattr(name)} '
            f'PannerCurrentValue="0.5" PannerIsInverted="true" '
            f'PannerStartKeyframe="-91445760000000000,0.5,0,0,0,0,0,0" PannerName="Pan" '
            f'currentExplodedTrackIndex="0" totalExplodedTrackCount="1" premiereTrackType="Mono">')


def _track_xml(lane: list[_Placed], name: str, rate: Rate, ids: _Ids, style: _Style) -> str:
    pad, inner, n = style.indent, style.indent + style.unit, style.newline
    body = "".join(_clipitem_xml(item, rate, ids, inner, style) for item in lane)
    tail = f"{inner}<outputchannelindex>1</outputchannelindex>{n}" if style.premiere else ""
    return (f"{pad}{_track_open(name, style)}{n}{body}{inner}<enabled>TRUE</enabled>{n}"
            f"{inner}<locked>FALSE</locked>{n}{tail}{pad}</track>{n}")


def _line_indent(data: bytes, offset: int) -> str:
    line_start = data.rfind(b"\n", 0, offset) + 1
    return re.match(rb"[ \t]*", data[line_start:offset]).group(0).decode()


@dataclass(frozen=True)
class _Spot:
    """Where new text goes: before the closing tag of the sequence's `<audio>` (or `<media>` when it has none)."""

    offset: int  # the start of the closing tag's line when the tag opens its line, else the tag itself
    indent: str  # of the holder's own start tag
    has_audio: bool


def _spot(doc: Document, sequence: ET.Element) -> _Spot:
    media = sequence.find("media")
    if media is None:
        raise ProjectFormatError(f"{doc.path.name}: the sequence has no <media>; export the XML again.")
    audio = media.find("audio")
    holder = audio if audio is not None else media
    begin, end = doc.spans[id(holder)]
    if doc.data[end:end + 2] != b"</":
        raise ProjectFormatError(f"{doc.path.name}: the sequence's <{holder.tag}/> is empty-element shorthand; "
                                 "add any audio track in the editor, export again, then place the foley.")
    line_start = doc.data.rfind(b"\n", 0, end) + 1
    offset = line_start if not doc.data[line_start:end].strip() else end
    return _Spot(offset, _line_indent(doc.data, begin), audio is not None)


def _style(doc: Document, sequence: ET.Element, spot: _Spot) -> _Style:
    """The file's newline and indent step; new tracks sit one step inside `<audio>` (two inside `<media>`)."""
    head = doc.data[:8192]
    newline = "\r\n" if b"\r\n" in head else "\n"
    spaces = re.search(rb"\n( +)<", head)
    unit = "\t" if b"\n\t" in head or spaces is None else spaces.group(1).decode()
    premiere = any(key.startswith(("MZ.", "TL.")) for key in sequence.attrib)
    return _Style(newline, spot.indent + unit * (1 if spot.has_audio else 2), unit, premiere)


def add_foley_tracks(doc: Document, sequence: ET.Element, name: str, placements: list[Placement],
                     wanted: str = "Foley") -> tuple[bytes, list[str], list[str]]:
    """The file's bytes with one new audio track per lane of `placements`; also the track names and warnings."""
    rate = rate_of(sequence)
    timeline = timeline_of(doc, sequence, name)
    warnings: list[str] = []
    lanes = [[_placed(p, rate, warnings) for p in lane] for lane in pack_lanes(placements)]
    names = unique_track_names({track.name for track in timeline.tracks}, wanted, len(lanes))
    spot = _spot(doc, sequence)
    style = _style(doc, sequence, spot)
    ids = _Ids(doc.root)
    text = "".join(_track_xml(lane, track, rate, ids, style) for lane, track in zip(lanes, names))
    if not style.premiere:
        count = len(timeline.audio_tracks())
        numbers = ", ".join(f"A{count + number}" for number in range(1, len(lanes) + 1))
        warnings.append(f"FCP 7 / Resolve XML keeps no track names: the foley is on audio track(s) {numbers}.")
    if not spot.has_audio:  # a video-only sequence: the tracks need an <audio> section of their own
        pad = spot.indent + style.unit
        text = f"{pad}<audio>{style.newline}{text}{pad}</audio>{style.newline}"
    if spot.offset != doc.data.rfind(b"\n", 0, spot.offset) + 1:  # the closing tag shares its line: start one
        text = style.newline + text + spot.indent
    return doc.data[:spot.offset] + text.encode("utf-8") + doc.data[spot.offset:], names, warnings


def _check_written(doc: Document, data: bytes, name: str, added: int) -> None:
    """Re-read the new bytes: they must parse and hold the new tracks (an internal fault must never be written)."""
    try:
        root, spans = _parse(data)
    except expat.ExpatError as exc:
        raise ProjectFormatError(f"the edited XML would not be valid ({exc}); nothing was written.") from None
    before = len(_chosen(doc, name)[1].findall("media/audio/track"))
    after = len(_top_sequences(root)[name].findall("media/audio/track"))
    if after != before + added:
        raise ProjectFormatError(f"the new tracks did not land in sequence '{name}' ({before} audio tracks before, "
                                 f"{after} after); nothing was written.")


def _refuse_other_encodings(doc: Document) -> None:
    """The inserted text is UTF-8, which is what Premiere, Resolve and FCP 7 write; anything else is refused."""
    declared = re.match(rb"(?:\xef\xbb\xbf)?\s*<\?xml[^>]*encoding=[\"']([\w.-]+)", doc.data)
    encoding = declared.group(1).decode().lower() if declared else "utf-8"
    try:
        doc.data.decode("utf-8")
    except UnicodeDecodeError:
        encoding = "bytes that are not UTF-8" if encoding in ("utf-8", "utf8") else encoding
    if encoding not in ("utf-8", "utf8"):
        raise ProjectFormatError(f"{doc.path.name} is encoded as {encoding}; export the XML again from the editor "
                                 "(it writes UTF-8). Nothing was changed.")


def write_audio_clips(project: str | Path, placements: list[Placement], *, track_name: str = "Foley",
                      sequence: str | None = None) -> WriteReport:
    """Add `placements` on new audio track(s) of the sequence, named `track_name` (then "Foley 2", ...).

    Args:
        project: the .xml file (Premiere "Final Cut Pro XML", Resolve "FCP 7 XML", FCP 7 export).
        placements: the sounds, at record times counted from the sequence start.
        track_name: the name of the first new track (Premiere shows it; FCP 7 and Resolve number tracks).
        sequence: the sequence to place on, for files holding several; default the only or first one.

    Returns:
        The track names used, the backup of the original file and any rounding warnings.
    """
    path = Path(project)
    if not placements:
        raise SelectionError("Nothing to place: no variants were given.")
    for placement in placements:
        if not placement.wav.is_file():
            raise ProjectFormatError(f"{placement.wav} does not exist; generate the foley first.")
    check_writable(path)
    doc = load(path)
    _refuse_other_encodings(doc)
    name, element = _chosen(doc, sequence)
    data, names, warnings = add_foley_tracks(doc, element, name, placements, track_name)
    _check_written(doc, data, name, len(names))
    saved = replace_project(path, data)
    return WriteReport(", ".join(names), saved, tuple(warnings))
