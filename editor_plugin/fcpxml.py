"""Final Cut Pro (.fcpxml, .fcpxmld bundles, FCPXML 1.8-1.14): read the project exactly, add foley in place.

FCPXML times are rational seconds ("1001/30000s") and every story element sits in its parent's local time:
a child's record position is parent.record + (child.offset - parent.start). Reading walks the project's spine
(lanes, gaps, compound clips through <media>, sync and multicam clips) with Fractions and builds an OTIO
timeline whose video tracks run bottom to top (primary storyline lowest, lanes above it). Writing inserts
connected audio clips (negative lanes, a "Foley" audio role) and their assets into the original text and
leaves every other byte as it was.
"""

import logging
import re
import wave
import xml.parsers.expat
from dataclasses import dataclass, field, replace
from fractions import Fraction
from itertools import zip_longest
from pathlib import Path
from urllib.parse import unquote, urlparse
from xml.sax.saxutils import quoteattr

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
)
from editor_plugin.errors import ProjectFormatError, SelectionError, UnsupportedClipError
from editor_plugin.project_files import check_writable, replace_project

logger = logging.getLogger(__name__)

NEWEST_VERSION = (1, 14)  # the newest FCPXML DTD Apple has published
BUNDLE_DOCUMENT = "Info.fcpxml"  # what a .fcpxmld bundle holds
STORY = {"asset-clip", "video", "audio", "clip", "ref-clip", "sync-clip", "mc-clip", "title", "gap", "spine",
         "audition"}
# children the DTD (1.8 to 1.14 alike) orders after anchored items: a new connected clip goes before them
AFTER_ANCHORS = {"marker", "chapter-marker", "rating", "keyword", "analysis-marker", "hidden-clip-marker",
                 "audio-channel-source", "audio-role-source", "sync-source", "filter-video", "filter-video-mask",
                 "filter-audio", "metadata", "reserved"}
NTSC_NAMES = {"23.98": Fraction(24000, 1001), "29.97": Fraction(30000, 1001), "47.95": Fraction(48000, 1001),
              "59.94": Fraction(60000, 1001), "119.88": Fraction(120000, 1001)}
CONFORM_LIMIT = Fraction(1, 20)  # rate conforms Final Cut Pro applies as a speed change (25 -> 24 is 4.2 %)
MAX_NESTING = 100  # elements inside elements (compounds in compounds); deeper means a reference cycle

CAPABILITIES = Capabilities(writes_live=False, needs_project_closed=False, selection=("clip", "range"))


def host_name() -> str:
    return "Final Cut Pro (FCPXML)"


# -- the document: XML nodes that know where they are in the file ------------------------------------------------


@dataclass(eq=False)
class Node:
    """One XML element with its byte span in the file, so text can be inserted next to it."""

    tag: str
    attrs: dict[str, str]
    start: int  # offset of '<'
    head_end: int = 0  # offset just after the start tag's '>'
    end: int = 0  # offset just after the element (its end tag, or the start tag when empty)
    children: list["Node"] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return self.end == self.head_end

    def get(self, name: str, default: str | None = None) -> str | None:
        return self.attrs.get(name, default)

    def find(self, tag: str) -> "Node | None":
        return next((child for child in self.children if child.tag == tag), None)

    def iter(self, tag: str | None = None):
        """The element's descendants (called `tag`), in document order."""
        for child in self.children:
            if tag is None or child.tag == tag:
                yield child
            yield from child.iter(tag)


_TAG_END = re.compile(rb"""(?:[^>"']|"[^"]*"|'[^']*')*>""")


def parse_nodes(data: bytes) -> Node:
    """Parse XML bytes into Nodes with exact byte offsets (expat reports where each tag starts)."""
    parser = xml.parsers.expat.ParserCreate()
    stack: list[Node] = []
    roots: list[Node] = []

    def start(tag, attrs):
        node = Node(tag, attrs, parser.CurrentByteIndex)
        node.head_end = _TAG_END.match(data, node.start).end()
        (stack[-1].children if stack else roots).append(node)
        stack.append(node)

    def end(tag):
        node = stack.pop()
        if data[node.head_end - 2 : node.head_end] == b"/>":
            node.end = node.head_end
        else:
            node.end = data.index(b">", parser.CurrentByteIndex) + 1

    parser.StartElementHandler, parser.EndElementHandler = start, end
    try:
        parser.Parse(data, True)
    except (AttributeError, ValueError):  # a tag cut off by the end of the file
        raise xml.parsers.expat.ExpatError("unexpected end of the file inside a tag") from None
    return roots[0]


def parse_time(value: str | None, what: str = "time") -> Fraction:
    """An FCPXML time ("1001/30000s", "3600s", "0/1s") as exact seconds."""
    match = re.fullmatch(r"\s*(-?\d+)(?:/(\d+))?s\s*", value or "")
    if match is None or match.group(2) == "0":
        raise ProjectFormatError(f"'{value}' is not an FCPXML time ({what}); expected a value like 1001/30000s. "
                                 "Export the project again from Final Cut Pro.")
    return Fraction(int(match.group(1)), int(match.group(2) or 1))


def lane_of(node: Node) -> int:
    """The element's lane: 0 in its parent's storyline, above (> 0) or below (< 0) it when connected."""
    try:
        return int(node.get("lane", "0"))
    except ValueError:
        raise ProjectFormatError(f"lane=\"{node.get('lane')}\" on <{node.tag}> is not a whole number; export the "
                                 "project from Final Cut Pro again.") from None


def format_time(time: Fraction) -> str:
    """Exact seconds in FCPXML notation, reduced ("5/4s", "3600s")."""
    return f"{time.numerator}s" if time.denominator == 1 else f"{time.numerator}/{time.denominator}s"


@dataclass(frozen=True)
class Project:
    """One <project>: its sequence, frame rate and timecode start."""

    name: str
    sequence: Node
    spine: Node
    rate: Fraction  # frames per second, exact
    tc_start: Fraction  # seconds
    drop_frame: bool
    field_order: str | None  # "upper first" / "lower first" for interlaced formats (25i is 25 frames a second)


@dataclass(frozen=True)
class Document:
    """A parsed FCPXML file and the facts reading and writing need."""

    path: Path  # the .fcpxml file (Info.fcpxml inside a bundle)
    data: bytes
    root: Node
    version: tuple[int, int]
    ids: dict[str, Node]
    projects: dict[str, Project]


def document_path(project: str | Path) -> Path:
    """The XML file behind a project path: the file itself, or Info.fcpxml inside a .fcpxmld bundle."""
    path = Path(project)
    if path.is_dir():
        inner = path / BUNDLE_DOCUMENT
        if not inner.is_file():
            raise ProjectFormatError(f"{path.name} is a folder without {BUNDLE_DOCUMENT}; export the project from "
                                     "Final Cut Pro again (File > Export XML).")
        return inner
    if not path.is_file():
        raise ProjectFormatError(f"No FCPXML file at {path}. Check the path.")
    return path


def load(project: str | Path) -> Document:
    """Parse an FCPXML document, or explain in one line why it cannot be used."""
    path = document_path(project)
    data = path.read_bytes()
    try:
        root = parse_nodes(data)
    except xml.parsers.expat.ExpatError as exc:
        raise ProjectFormatError(f"{path} is not readable XML ({exc}); the file is damaged. Export the project "
                                 "from Final Cut Pro again.") from None
    if root.tag != "fcpxml":
        raise ProjectFormatError(f"{path.name} is XML but not FCPXML (root <{root.tag}>, expected <fcpxml>).")
    version = _version(path, root.get("version", ""))
    ids = {node.get("id"): node for node in root.iter() if node.get("id")}
    doc = Document(path, data, root, version, ids, {})
    for node in root.iter("project"):
        name = node.get("name") or "Project"
        if name in doc.projects:  # two projects of one name: the later one gets a number
            name = f"{name} ({sum(key.startswith(name) for key in doc.projects) + 1})"
        doc.projects[name] = _project(doc, node, name)
    return doc


def _version(path: Path, text: str) -> tuple[int, int]:
    match = re.fullmatch(r"(\d+)\.(\d+)", text)
    if match is None:
        raise ProjectFormatError(f"{path.name} has no FCPXML version (<fcpxml version=\"{text}\">); export it again "
                                 "from Final Cut Pro.")
    version = (int(match.group(1)), int(match.group(2)))
    if version > NEWEST_VERSION:
        raise ProjectFormatError(
            f"{path.name} is FCPXML {text}, newer than this reader knows (1.8 to 1.14). In Final Cut Pro choose "
            "File > Export XML and pick version 1.14 (or an earlier one) in the Version menu."
        )
    return version


def _rate_of(doc: Document, format_id: str | None) -> Fraction | None:
    """Frames per second of a <format>, exact (1 / frameDuration); None for stills and audio."""
    fmt = doc.ids.get(format_id or "")
    if fmt is None or not fmt.get("frameDuration"):
        return None
    return 1 / parse_time(fmt.get("frameDuration"), "frameDuration")


def _project(doc: Document, node: Node, name: str) -> Project:
    sequence = node.find("sequence")
    if sequence is None:
        raise ProjectFormatError(f"Project '{name}' in {doc.path.name} has no <sequence>; export it again.")
    rate = _rate_of(doc, sequence.get("format"))
    if rate is None:
        raise ProjectFormatError(f"Project '{name}' in {doc.path.name} has no frame rate (its <format> lacks "
                                 "frameDuration); set a video format for the project in Final Cut Pro.")
    spine = sequence.find("spine")
    if spine is None:
        raise ProjectFormatError(f"Project '{name}' in {doc.path.name} has no storyline (<spine>); add a clip to it "
                                 "in Final Cut Pro and export again.")
    return Project(name, sequence, spine, rate, parse_time(sequence.get("tcStart", "0s"), "tcStart"),
                   sequence.get("tcFormat") == "DF", doc.ids[sequence.get("format")].get("fieldOrder"))


def _choose(doc: Document, sequence: str | None) -> Project:
    return choose_sequence(doc.projects, sequence, doc.path.name)


# -- reading: the story as pieces of picture and sound -----------------------------------------------------------


@dataclass(frozen=True)
class Piece:
    """A stretch of one media file (or a title/generator) shown on the timeline, in absolute sequence seconds."""

    kind: str  # otio.schema.TrackKind value
    layer: tuple[int, ...]  # lanes from the top level down; compared padded with zeros
    name: str
    start: Fraction
    end: Fraction
    media: Path | None  # None: title, generator, still, missing
    source: Fraction  # media seconds at `start`
    media_rate: Fraction | None
    speeds: tuple[Fraction, ...]  # retiming on the way down (0 is a freeze frame)
    role: str  # the audio or video role ("dialogue", "Foley", "effects.effects-1")


@dataclass(frozen=True)
class Named:
    """A clip the user sees on the timeline by name (compound contents are not listed)."""

    name: str
    layer: tuple[int, ...]
    start: Fraction
    end: Fraction


@dataclass(frozen=True)
class Context:
    """What an element passes to its contents: where they may show, speed changes, and which media parts play."""

    window: tuple[Fraction, Fraction]  # absolute sequence times
    speeds: tuple[Fraction, ...]  # retiming on the way down (0 is a freeze frame)
    enable: str  # "all", "video", "audio" or "none"


@dataclass(frozen=True)
class Frame:
    """Where the children of an element land: its record position and local start, and what they inherit."""

    record: Fraction  # absolute sequence time of the element's start
    start: Fraction  # the element's local time at that moment
    own: Context  # for its own storyline (lane 0): trimmed to the element, its retiming applies
    connected: Context  # for clips connected to it (lanes != 0): as the element itself got it
    layer: tuple[int, ...]
    label: str
    rate: Fraction  # the enclosing sequence's frame rate
    top: bool  # the children are clips the user sees on the project timeline
    depth: int = 0


def active_pick(audition: Node) -> Node | None:
    """An audition's active clip (its first), placed where the audition sits (the picks carry no offset)."""
    pick = next((child for child in audition.children if child.tag in STORY), None)
    if pick is None:
        return None
    placed = {name: audition.get(name) for name in ("offset", "lane") if audition.get(name) is not None}
    return replace(pick, attrs={**placed, **pick.attrs})


def local_start(doc: Document, node: Node) -> Fraction:
    """An element's local time at its first frame: `start`, else its source's own origin (asset start, tcStart)."""
    if node.get("start"):
        return parse_time(node.get("start"), "start")
    ref = doc.ids.get(node.get("ref") or "")
    if ref is not None and ref.tag == "asset" and ref.get("start"):
        return parse_time(ref.get("start"), "start")
    inner = (ref.find("sequence") or ref.find("multicam")) if ref is not None and ref.tag == "media" else None
    if inner is not None and inner.get("tcStart"):
        return parse_time(inner.get("tcStart"), "tcStart")
    return Fraction(0)


class _Story:
    """Collects pieces and named clips while walking a project's spine."""

    def __init__(self, doc: Document):
        self.doc = doc
        self.pieces: list[Piece] = []
        self.named: list[Named] = []

    def visit(self, node: Node, frame: Frame) -> None:
        if node.tag == "audition":
            pick = active_pick(node)
            if pick is not None:
                self.visit(pick, frame)
            return
        if node.tag not in STORY:
            return  # transitions, markers, effects, sync-source, ...
        lane = lane_of(node)
        given = frame.own if lane == 0 else frame.connected
        offset = parse_time(node.get("offset"), "offset") if node.get("offset") else frame.start
        record = frame.record + offset - frame.start
        end = record + parse_time(node.get("duration"), "duration") if node.get("duration") else given.window[1]
        own = Context((max(given.window[0], record), min(given.window[1], end)),
                      given.speeds + _speeds(node, frame.rate), _enable(given.enable, node.get("srcEnable")))
        layer = frame.layer + (lane,)
        if frame.top and node.tag not in ("gap", "spine") and node.get("name"):
            self.named.append(Named(node.get("name"), layer, record, end))
        label = (node.get("name") or frame.label) if frame.top else frame.label
        # the storyline inside a clip, sync clip, compound or multicam is not on the project timeline itself
        inner_top = frame.top and node.tag in ("gap", "spine", "asset-clip", "video", "audio", "title")
        # a sequence's own spine has no offset and no time of its own; a secondary storyline starts at 0
        start = frame.start if node.tag == "spine" and node.get("offset") is None else local_start(self.doc, node)
        child = Frame(record, start, own, given, layer, label, frame.rate, inner_top, frame.depth + 1)
        if child.depth > MAX_NESTING:
            raise ProjectFormatError(f"{self.doc.path.name}: clip '{label}' nests compound clips more than "
                                     f"{MAX_NESTING} deep (a reference cycle?); export the project again.")
        if node.tag in ("asset-clip", "video", "audio", "title") and own.window[0] < own.window[1]:
            self._leaf(node, child)
        elif node.tag == "ref-clip":
            self._compound(node, child)
        elif node.tag == "mc-clip":
            self._multicam(node, child)
        for item in node.children:
            self.visit(item, replace(child, top=frame.top and (inner_top or lane_of(item) != 0)))

    def _leaf(self, node: Node, frame: Frame) -> None:
        ref = self.doc.ids.get(node.get("ref") or "")
        kind, media, rate, source = otio.schema.TrackKind.Video, None, None, Fraction(0)
        if node.tag != "title" and ref is not None and ref.tag == "asset":
            if ref.get("hasVideo") != "1" or node.tag == "audio" or frame.own.enable == "audio":
                kind = otio.schema.TrackKind.Audio
            rate = _rate_of(self.doc, ref.get("format"))
            if rate is not None or kind == otio.schema.TrackKind.Audio:  # a still image is no moving picture
                media = _media_file(ref)
            source = frame.start + frame.own.window[0] - frame.record - parse_time(ref.get("start", "0s"), "start")
        if frame.own.enable in ("all", kind.lower()):
            role = node.get("audioRole" if kind == otio.schema.TrackKind.Audio else "videoRole") or node.get("role")
            self.pieces.append(Piece(kind, frame.layer, frame.label, *frame.own.window, media, source, rate,
                                     frame.own.speeds, role or ""))

    def _compound(self, node: Node, frame: Frame) -> None:
        media = self.doc.ids.get(node.get("ref") or "")
        sequence = media.find("sequence") if media is not None else None
        if sequence is None:
            raise ProjectFormatError(f"{self.doc.path.name}: compound clip '{node.get('name')}' refers to "
                                     f"'{node.get('ref')}', which holds no sequence; export the project again.")
        inner = replace(frame, rate=_rate_of(self.doc, sequence.get("format")) or frame.rate, top=False,
                        connected=frame.own)
        for spine in sequence.children:
            if spine.tag == "spine":
                self.visit(spine, inner)

    def _multicam(self, node: Node, frame: Frame) -> None:
        media = self.doc.ids.get(node.get("ref") or "")
        multicam = media.find("multicam") if media is not None else None
        if multicam is None:
            raise ProjectFormatError(f"{self.doc.path.name}: multicam clip '{node.get('name')}' refers to "
                                     f"'{node.get('ref')}', which holds no multicam; export the project again.")
        angles = {angle.get("angleID"): angle for angle in multicam.children if angle.tag == "mc-angle"}
        inner = replace(frame, rate=_rate_of(self.doc, multicam.get("format")) or frame.rate, top=False,
                        connected=frame.own)
        shown = False
        for source in node.children:
            if source.tag != "mc-source" or source.get("angleID") not in angles:
                continue
            enable = _enable(frame.own.enable, source.get("srcEnable", "all"))
            shown |= enable in ("all", "video")
            for item in angles[source.get("angleID")].children:
                self.visit(item, replace(inner, own=replace(frame.own, enable=enable)))
        if not shown and frame.own.enable in ("all", "video"):
            raise UnsupportedClipError(f"Multicam clip '{node.get('name')}' has no active video angle in the file; "
                                       "choose a video angle for it in Final Cut Pro and export the XML again.")


def _enable(outer: str, own: str | None) -> str:
    """What an element passes on: its srcEnable narrowed by its parent's."""
    own = own or "all"
    if outer == "all":
        return own
    return outer if own in ("all", outer) else "none"


def _named_rate(value: str) -> Fraction:
    """A conform-rate srcFrameRate ("23.98", "25") as an exact rate."""
    try:
        return NTSC_NAMES.get(value) or Fraction(value)
    except ValueError:
        raise ProjectFormatError(f"conform-rate srcFrameRate=\"{value}\" is not a frame rate; export the project "
                                 "from Final Cut Pro again.") from None


def _speeds(node: Node, rate: Fraction) -> tuple[Fraction, ...]:
    """Speed changes on an element: a conform-rate that plays the media at the sequence rate, or a timeMap."""
    speeds = []
    conform = node.find("conform-rate")
    if conform is not None and conform.get("scaleEnabled", "1") != "0" and conform.get("srcFrameRate"):
        speed = rate / _named_rate(conform.get("srcFrameRate"))
        # Final Cut Pro conforms near rates (23.98/24/25, 29.97/30): in 24With25Media.fcpxml a 25 fps clip runs
        # 25/24 longer than its media; far ones play in real time (23.98 media keeps its cuts in 30.fcpxml)
        if speed != 1 and abs(speed - 1) <= CONFORM_LIMIT:
            speeds.append(speed)
    time_map = node.find("timeMap")
    if time_map is not None:
        points = [(parse_time(p.get("time"), "timept"), parse_time(p.get("value"), "timept"))
                  for p in time_map.children if p.tag == "timept"]
        for (t0, v0), (t1, v1) in zip(points, points[1:]):
            if t1 == t0:
                continue
            speed = (v1 - v0) / (t1 - t0)
            if speed != 1:  # the first segment that is not real time names the change
                speeds.append(speed)
                break
    return tuple(speeds)


def _media_file(asset: Node) -> Path | None:
    """The asset's original media: `src` on the asset (1.8) or its original-media <media-rep> (1.9+)."""
    src = asset.get("src")
    for rep in asset.children:
        if rep.tag == "media-rep" and rep.get("kind", "original-media") == "original-media" and rep.get("src"):
            src = rep.get("src")
            break
    if not src:
        return None
    url = urlparse(src)
    return Path(unquote(url.path)) if url.scheme in ("file", "") else None


def story(doc: Document, project: Project) -> _Story:
    """Walk the project's spine from the timeline start."""
    collected = _Story(doc)
    far = project.tc_start + _sequence_duration(project) + 10**9
    everything = Context((project.tc_start, far), (), "all")
    frame = Frame(project.tc_start, project.tc_start, everything, everything, (), project.name, project.rate, True)
    for child in project.spine.children:
        collected.visit(child, frame)
    return collected


def _sequence_duration(project: Project) -> Fraction:
    """The sequence's length: its `duration`, else the end of its last spine element."""
    if project.sequence.get("duration"):
        return parse_time(project.sequence.get("duration"), "duration")
    return max((end - project.tc_start for _, _, end in _spine_items(project)), default=Fraction(0))


# -- the OTIO timeline -------------------------------------------------------------------------------------------


def _time(seconds_value: Fraction, rate: Fraction) -> RationalTime:
    """Exact seconds as a RationalTime: whole frames at `rate` when they fit, else at the value's own denominator."""
    frames = seconds_value * rate
    if frames.denominator != 1:
        rate = Fraction(seconds_value.denominator)
        frames = seconds_value * rate
    return RationalTime(int(frames), float(rate))


def _otio_effects(speeds: tuple[Fraction, ...]) -> list:
    """Retiming as the OTIO effects contract.top_video_spans refuses (with the clip's name)."""
    return [otio.schema.FreezeFrame() if speed == 0 else otio.schema.LinearTimeWarp(time_scalar=float(speed))
            for speed in speeds]


def _clip(piece: Piece, project: Project) -> otio.schema.Clip:
    if piece.media is not None:
        reference = otio.schema.ExternalReference(target_url=piece.media.as_uri())
    else:
        reference = otio.schema.GeneratorReference(generator_kind="fcpxml")
    rate = project.rate if (piece.source * project.rate).denominator == 1 else piece.media_rate or project.rate
    return otio.schema.Clip(name=piece.name, media_reference=reference,
                            source_range=TimeRange(_time(piece.source, rate), _time(piece.end - piece.start,
                                                                                    project.rate)),
                            effects=_otio_effects(piece.speeds), metadata={"fcpxml": {"role": piece.role}})


def _track(pieces: list[Piece], kind: str, name: str, project: Project, length: Fraction) -> otio.schema.Track:
    track = otio.schema.Track(name=name, kind=kind)
    cursor = project.tc_start
    for piece in pieces:
        if piece.start > cursor:
            track.append(otio.schema.Gap(source_range=TimeRange(duration=_time(piece.start - cursor, project.rate))))
        track.append(_clip(piece, project))
        cursor = piece.end
    if project.tc_start + length > cursor:
        track.append(otio.schema.Gap(source_range=TimeRange(duration=_time(project.tc_start + length - cursor,
                                                                           project.rate))))
    return track


def _layer_key(layer: tuple[int, ...], width: int) -> tuple[int, ...]:
    return tuple(lane for lane, _ in zip_longest(layer, range(width), fillvalue=0))


def _stack(pieces: list[Piece]) -> list[list[Piece]]:
    """Pieces per track, lowest layer first; overlapping pieces of one layer go on tracks of their own."""
    width = max((len(p.layer) for p in pieces), default=1)
    tracks: list[tuple[tuple[int, ...], list[Piece]]] = []
    for piece in sorted(pieces, key=lambda p: (_layer_key(p.layer, width), p.start)):
        key = _layer_key(piece.layer, width)
        for track_key, track in tracks:
            if track_key == key and track[-1].end <= piece.start:
                track.append(piece)
                break
        else:
            tracks.append((key, [piece]))
    return [track for _, track in tracks]


def timeline_of(doc: Document, project: Project) -> otio.schema.Timeline:
    """The project as OTIO: record times from the timeline start, video tracks bottom to top."""
    collected = story(doc, project)
    pieces = [p for p in collected.pieces if p.end > project.tc_start]
    pieces = [replace(p, start=project.tc_start, source=p.source + project.tc_start - p.start)
              if p.start < project.tc_start else p for p in pieces]  # a connected clip hanging before the start
    start = RationalTime(float(project.tc_start * project.rate), float(project.rate))  # the rate timeline_rate reads
    timeline = otio.schema.Timeline(name=project.name, global_start_time=start)
    timeline.metadata["fcpxml"] = {"rate": str(project.rate), "tc_start": str(project.tc_start),
                                   "drop_frame": project.drop_frame, "field_order": project.field_order or "",
                                   "version": "%d.%d" % doc.version}
    length = _sequence_duration(project)
    for kind, letter in ((otio.schema.TrackKind.Video, "V"), (otio.schema.TrackKind.Audio, "A")):
        stacked = _stack([p for p in pieces if p.kind == kind]) or [[]]
        for number, track in enumerate(stacked, 1):
            timeline.tracks.append(_track(track, kind, f"{letter}{number}", project, length))
    return timeline


def read_timeline(project: str | Path, *, sequence: str | None = None) -> otio.schema.Timeline:
    """The project's timeline as OTIO (rational time from the timeline start, bottom video track first)."""
    doc = load(project)
    return timeline_of(doc, _choose(doc, sequence))


def _named_selection(doc: Document, project: Project, timeline: otio.schema.Timeline, name: str) -> Selection:
    """The record range of the clip called `name` as the project shows it (the topmost one first)."""
    named = story(doc, project).named
    width = max((len(n.layer) for n in named), default=1)
    matches = sorted((n for n in named if n.name == name), key=lambda n: (_layer_key(n.layer, width), -n.start))
    if not matches:
        names = sorted({n.name for n in named})
        raise SelectionError(f"No clip named '{name}' on the timeline '{project.name}'. Clips: "
                             f"{', '.join(names) or 'none'}.")
    clip = matches[-1]
    start, end = max(clip.start, project.tc_start) - project.tc_start, clip.end - project.tc_start
    return selection_for(timeline, TimeRange(_time(start, project.rate), _time(end - start, project.rate)), name)


def read_selection(project: str | Path, *, clip: str | None = None, record: TimeRange | None = None,
                   sequence: str | None = None) -> Selection:
    """FCPXML records no selection: the clip named `clip` (compound, sync and multicam clips whole) or `record`.

    Args:
        project: an .fcpxml file or an .fcpxmld bundle.
        clip: a clip's name as the timeline shows it (the topmost, earliest one when several share it).
        record: a range from the timeline start (tcStart) at the project rate.
        sequence: the project to use when the file holds several (default: the first).

    Returns:
        The selection with the media spans on top; retimed clips and clips without media are refused.
    """
    doc = load(project)
    chosen = _choose(doc, sequence)
    timeline = timeline_of(doc, chosen)
    if clip is not None:
        return _named_selection(doc, chosen, timeline, clip)
    requested = requested_selection(timeline, None, record)
    if requested is not None:
        return requested
    raise SelectionError(f"{doc.path.name} records no selection; name a clip (--clip NAME) or a range (--in/--out).")


# -- writing -----------------------------------------------------------------------------------------------------


def _spine_items(project: Project):
    """The primary storyline's elements with their absolute start and end (transitions overlap, so are left out)."""
    for node in project.spine.children:
        if node.tag == "audition":  # connected clips go on its active pick
            node = active_pick(node) or node
        if node.tag in STORY and node.tag != "spine" and node.get("offset") and node.get("duration"):
            start = parse_time(node.get("offset"), "offset")
            yield node, start, start + parse_time(node.get("duration"), "duration")


@dataclass(frozen=True)
class _Foley:
    """One placement snapped to the sequence's frame grid, with the id of its new asset."""

    placement: Placement
    frame: int  # record frame from the timeline start
    frames: int  # length in frames (the WAV's tail is silence)
    asset_id: str
    lane_index: int


class _Ids:
    """Fresh resource ids ("r12") that the document does not use yet."""

    def __init__(self, doc: Document):
        self.used = set(doc.ids)

    def new(self) -> str:
        numbers = [int(i[1:]) for i in self.used if re.fullmatch(r"r\d+", i)]
        fresh = f"r{max(numbers, default=0) + 1}"
        self.used.add(fresh)
        return fresh


def _wav_attributes(wav: Path) -> str:
    try:
        with wave.open(str(wav), "rb") as handle:
            return f' audioSources="1" audioChannels="{handle.getnchannels()}" audioRate="{handle.getframerate()}"'
    except (wave.Error, EOFError):
        return ' audioSources="1"'  # not PCM WAV: Final Cut Pro probes the file itself


def _asset_xml(doc: Document, foley: _Foley) -> str:
    placement = foley.placement
    url = quoteattr(placement.wav.resolve().as_uri())
    head = (f'<asset id="{foley.asset_id}" name={quoteattr(placement.name)} start="0s" '
            f'duration="{format_time(seconds(placement.duration))}" hasAudio="1"{_wav_attributes(placement.wav)}')
    if doc.version < (1, 9):
        return f"{head} src={url}/>"
    return f'{head}><media-rep kind="original-media" src={url}/></asset>'


def _clip_xml(doc: Document, foley: _Foley, parent: Node, parent_record: Fraction, lane: int, project: Project,
              role: str) -> str:
    """A connected audio clip whose offset is in `parent`'s local time, at a frame of the sequence's grid."""
    record = project.tc_start + foley.frame / project.rate
    offset = local_start(doc, parent) + record - parent_record
    return (f'<asset-clip ref="{foley.asset_id}" lane="{lane}" offset="{format_time(offset)}" '
            f'name={quoteattr(foley.placement.name)} start="0s" duration="{format_time(foley.frames / project.rate)}" '
            f'audioRole={quoteattr(role)}/>')


class _Edits:
    """Replacements of byte spans of the original (mostly empty spans: insertions), applied back to front."""

    def __init__(self, data: bytes):
        self.data = data
        self.changes: list[tuple[int, int, int, bytes]] = []  # (start, end, order, text)
        # the file's own line ending (Final Cut Pro 10.4 wrote bare CR)
        self.newline = next((ending for ending in (b"\r\n", b"\n", b"\r") if ending in data), b"\n")

    def _add(self, start: int, end: int, text: bytes) -> None:
        self.changes.append((start, end, len(self.changes), text))

    def _line_start(self, offset: int) -> tuple[int, bytes] | None:
        """The start of the line holding `offset` and its indent, when only indentation precedes it there."""
        begin = self.data.rfind(self.newline[-1:], 0, offset) + 1
        indent = self.data[begin:offset]
        return (begin, indent) if indent.strip() == b"" else None

    def add_child(self, parent: Node, text: str, before: Node | None = None) -> None:
        """Insert `text` as a child of `parent` (before `before`, else last), in the file's own layout."""
        if parent.empty:
            # <gap .../> becomes <gap ...>child</gap>: the one kind of change to a line the user had
            self._add(parent.head_end - 2, parent.head_end, f">{text}</{parent.tag}>".encode())
            return
        anchor = before.start if before is not None else self.data.rfind(b"</", parent.head_end, parent.end)
        line = self._line_start(anchor)
        if line is None:  # a file written on one line: stay inline
            self._add(anchor, anchor, text.encode())
            return
        begin, indent = line
        if before is None:  # the closing tag's indent plus one step
            indent += self._indent_step(parent)
        self._add(begin, begin, indent + text.encode() + self.newline)

    def _indent_step(self, parent: Node) -> bytes:
        inner = self._line_start(parent.children[0].start) if parent.children else None
        outer = self._line_start(parent.start)
        if inner and outer and len(inner[1]) > len(outer[1]):
            return inner[1][len(outer[1]):]
        return b"    "

    def set_attribute(self, node: Node, name: str, value: str) -> None:
        head = self.data[node.start : node.head_end]
        match = re.search(rb"\s" + name.encode() + rb'="[^"]*"', head)
        text = f' {name}="{value}"'.encode()
        if match is None:
            self._add(node.start + len(node.tag) + 1, node.start + len(node.tag) + 1, text)
        else:
            self._add(node.start + match.start(), node.start + match.end(), text)

    def apply(self) -> bytes:
        data = self.data
        # back to front; at one offset the later insertion goes in first so the earlier one ends up before it
        for start, end, _, text in sorted(self.changes, key=lambda change: (change[0], change[2]), reverse=True):
            data = data[:start] + text + data[end:]
        return data


def _anchor_before(parent: Node) -> Node | None:
    """The first child the DTD orders after connected clips (markers, filters, metadata), if any."""
    return next((child for child in parent.children if child.tag in AFTER_ANCHORS), None)


def _free_lane(parent: Node) -> int:
    """The lane just below every lane already used under `parent`."""
    return min([lane_of(child) for child in parent.children] + [0]) - 1


def _place(doc: Document, project: Project, placements: list[Placement], warnings: list[str]) -> list[_Foley]:
    ids = _Ids(doc)
    foleys = []
    for lane_index, lane in enumerate(pack_lanes(placements)):
        for placement in lane:
            frame, frames = frame_span(placement, project.rate, warnings)
            foleys.append(_Foley(placement, frame, frames, ids.new(), lane_index))
    return foleys


def _append_gap(doc: Document, project: Project, edits: _Edits, foleys: list[_Foley], end: Fraction,
                role: str) -> None:
    """Hold foley that starts after the storyline's end in a new gap at its end (and lengthen the sequence)."""
    stop = max(project.tc_start + Fraction(f.frame + f.frames) / project.rate for f in foleys)
    gap = Node("gap", {"start": format_time(end)}, 0)  # the new gap: its local time is sequence time
    body = "".join(_clip_xml(doc, foley, gap, end, -1 - foley.lane_index, project, role) for foley in foleys)
    edits.add_child(project.spine, f'<gap name="Gap" offset="{format_time(end)}" start="{format_time(end)}" '
                                   f'duration="{format_time(stop - end)}">{body}</gap>')
    if stop - project.tc_start > _sequence_duration(project):
        edits.set_attribute(project.sequence, "duration", format_time(stop - project.tc_start))


def add_foley(doc: Document, project: Project, placements: list[Placement], role: str) -> tuple[bytes, list[str]]:
    """The document bytes with `placements` as connected audio clips and their assets; also warnings."""
    warnings: list[str] = []
    foleys = _place(doc, project, placements, warnings)
    resources = doc.root.find("resources")
    if resources is None:
        raise ProjectFormatError(f"{doc.path.name} has no <resources>; export the project from Final Cut Pro again.")
    edits = _Edits(doc.data)
    for foley in foleys:
        edits.add_child(resources, _asset_xml(doc, foley))
    items = list(_spine_items(project))
    end = max((stop for _, _, stop in items), default=project.tc_start)
    lanes: dict[int, int] = {}
    after_end = []
    for foley in foleys:
        record = project.tc_start + Fraction(foley.frame) / project.rate
        covering = next(((node, start) for node, start, stop in items if start <= record < stop), None)
        if covering is None and record >= end:
            after_end.append(foley)
            continue
        if covering is None:  # a hole in the primary storyline; Final Cut Pro fills those with gaps
            raise ProjectFormatError(f"{doc.path.name}: nothing in the primary storyline of '{project.name}' at "
                                     f"{float(record - project.tc_start):.3f} s to connect the foley to; export the "
                                     "project from Final Cut Pro again.")
        node, start = covering
        base = lanes.setdefault(id(node), _free_lane(node))
        edits.add_child(node, _clip_xml(doc, foley, node, start, base - foley.lane_index, project, role),
                        _anchor_before(node))
    if after_end:
        _append_gap(doc, project, edits, after_end, end, role)
        warnings.append(f"{len(after_end)} foley clip(s) start after the end of the storyline; a new gap holds them.")
    return edits.apply(), warnings


def write_audio_clips(project: str | Path, placements: list[Placement], *, track_name: str = "Foley",
                      sequence: str | None = None) -> WriteReport:
    """Connect `placements` to the primary storyline as audio clips; back up the file, then write it atomically.

    Args:
        project: an .fcpxml file or an .fcpxmld bundle (its Info.fcpxml is written).
        placements: the WAVs and their record starts from the timeline start, snapped to the project's frames.
        track_name: the audio role of the new clips; overlapping ones take further lanes below.
        sequence: the project to place into when the file holds several (default: the first).

    Returns:
        The role used, the backup's path and warnings (rounded starts, a gap added after the storyline's end).
    """
    doc = load(project)
    chosen = _choose(doc, sequence)
    if not placements:
        raise SelectionError("Nothing to place: no variants were given.")
    for placement in placements:
        if not placement.wav.is_file():
            raise ProjectFormatError(f"{placement.wav} does not exist; generate the foley first.")
    check_writable(doc.path)
    data, warnings = add_foley(doc, chosen, placements, track_name)
    try:
        parse_nodes(data)
    except xml.parsers.expat.ExpatError as exc:  # an internal fault; never write a broken project
        raise ProjectFormatError(f"the edited project would not be valid XML ({exc}); nothing was written.") from None
    saved = replace_project(doc.path, data)
    logger.info("connected %d foley clip(s) with the audio role %r in %s", len(placements), track_name, doc.path)
    return WriteReport(track_name, saved, tuple(warnings))
