"""Avid Media Composer, Pro Tools and Premiere Pro AAF: read the chosen composition exactly, add foley in place.

Reading walks the composition with pyaaf2 rather than through the OTIO adapter: the adapter puts the sequence's
rate and the media's rate into one range (a 23.976 clip in a 29.97 sequence fails there) and returns a collection
for a file with several compositions. Record times count from the sequence's start timecode, in whole edit units
at the sequence's exact edit rate; a clip's source start is at its media's own rate.

Writing opens a copy of the user's file with pyaaf2 in 'rw' mode and only adds objects: per WAV a SourceMob that
links the file (PCM descriptor, NetworkLocator) and a MasterMob, per lane a new sound slot on the composition. The
copy is checked against the original (every mob, slot, component and property still there) before it replaces
the project.
"""

import logging
import re
import shutil
import tempfile
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import aaf2
import opentimelineio as otio
import soundfile
from aaf2 import components, mobs
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
from editor_plugin.errors import HostError, ProjectFormatError, ProjectWriteError, SelectionError
from editor_plugin.project_files import check_writable, replace_project

logger = logging.getLogger(__name__)

CAPABILITIES = Capabilities(writes_live=False, needs_project_closed=True, selection=("clip", "range"))
TIMECODE_KINDS = ("Timecode", "LegacyTimecode")  # Avid writes the first, Premiere the second
SPEED_PARAMETERS = ("SpeedRatio", "Speed Ratio")  # Avid Motion Control, Premiere Video Speed Control
MAX_CHAIN = 8  # MasterMob -> file SourceMob -> tape/import SourceMob; real files use three levels


def host_name() -> str:
    return "Avid Media Composer / Pro Tools / Premiere Pro (AAF)"


@contextmanager
def _opened(path: Path, mode: str = "r") -> Iterator[aaf2.file.AAFFile]:
    """An AAF file opened with pyaaf2; a damaged or foreign file is one clear line."""
    if not path.is_file():
        raise ProjectFormatError(f"No AAF file at {path}. Check the path.")
    try:
        handle = aaf2.open(str(path), mode)
    except Exception as exc:  # pyaaf2 raises bare exceptions for a bad compound file
        raise ProjectFormatError(f"{path.name} is not a readable AAF file ({type(exc).__name__}: {exc}). Export "
                                 "the sequence again from your editor (File > Export > AAF).") from None
    with handle:
        try:
            yield handle
        except HostError:
            raise
        except (Exception, RecursionError) as exc:  # a structure pyaaf2 or this reader does not expect
            raise ProjectFormatError(f"{path.name} could not be read as an AAF sequence ({type(exc).__name__}: "
                                     f"{exc}). Export the sequence again from your editor.") from None


# -- reading ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Composition:
    """A sequence of the file: its mob, exact edit rate and start timecode (frames at the edit rate)."""

    name: str
    mob: mobs.CompositionMob
    rate: Fraction
    start: int
    drop_frame: bool
    timecode_rate: Fraction  # the rate the timecode counts at (the edit rate, or 24 for a 48 kHz Pro Tools edit)

    def timecode(self) -> str:
        start = self.start * self.timecode_rate / self.rate
        return otio.opentime.to_timecode(RationalTime(float(start), float(self.timecode_rate)),
                                         float(self.timecode_rate), self.drop_frame)


@dataclass
class _Piece:
    """A stretch of one track: `length` edit units of a clip (from `skip` units into it) or of nothing."""

    length: int
    clip: components.SourceClip | None = None
    skip: int = 0
    speed: Fraction | None = None


def compositions(handle: aaf2.file.AAFFile, where: str) -> dict[str, Composition]:
    """The sequences the user sees: the top-level CompositionMobs (every CompositionMob if none is marked)."""
    found = list(handle.content.toplevel()) or list(handle.content.compositionmobs())
    result = {}
    for mob in found:
        rate = _edit_rate(mob)
        if rate is None:
            continue
        start, drop, timecode_rate = _start_timecode(mob, rate)
        name = mob.name or "Sequence"
        if name in result:  # two sequences of one name: the later ones get a number, as editors show them
            name = next(f"{name} ({n})" for n in range(2, len(found) + 2) if f"{name} ({n})" not in result)
        result[name] = Composition(name, mob, rate, start, drop, timecode_rate)
    if not result:
        raise SelectionError(f"{where} holds no sequence with picture or sound; export the sequence itself "
                             "(not a bin or a clip) as AAF.")
    return result


def _edit_rate(mob: mobs.CompositionMob) -> Fraction | None:
    for slot in mob.slots:
        if slot.media_kind in ("Picture", "Sound") and "EditRate" in slot:
            return Fraction(slot["EditRate"].value)
    return None


def _timecode_of(slot) -> components.Timecode | None:
    segment = slot.segment
    if isinstance(segment, components.Sequence) and len(segment.components):
        segment = segment.components[0]
    return segment if isinstance(segment, components.Timecode) else None


def _start_timecode(mob: mobs.CompositionMob, rate: Fraction) -> tuple[int, bool, Fraction]:
    """The sequence start as edit units, drop-frame flag and timecode rate; track 1 is the sequence timecode."""
    slots = [slot for slot in mob.slots if slot.media_kind in TIMECODE_KINDS and _timecode_of(slot) is not None]
    slots.sort(key=lambda slot: slot["PhysicalTrackNumber"].value if "PhysicalTrackNumber" in slot else 1)
    if not slots:
        return 0, False, rate
    timecode = _timecode_of(slots[0])
    # Start counts timecode frames (fps 30 at 29.97); the timecode runs at the edit rate when fps is its nominal rate
    timecode_rate = rate if round(rate) == timecode.fps else Fraction(timecode.fps)
    units = timecode.start * rate / timecode_rate
    if units.denominator != 1:
        logger.info("%s: start timecode is %s edit units; rounded to a whole one", mob.name, units)
    return round(units), bool(timecode.drop), timecode_rate


def _speed(group: components.OperationGroup, inputs: list) -> Fraction:
    for parameter in group["Parameters"].value if "Parameters" in group else []:
        if parameter.parameterdef.name in SPEED_PARAMETERS and isinstance(parameter, aaf2.misc.ConstantValue):
            return Fraction(parameter.value)
    used = sum(segment.length for segment in inputs)  # a speed curve: its average speed
    return Fraction(used, group.length) if group.length else Fraction(0)


def _is_time_warp(group: components.OperationGroup) -> bool:
    operation = group.operation
    return operation is not None and "IsTimeWarp" in operation and bool(operation["IsTimeWarp"].value)


def _first_clip(segment, rate: Fraction) -> components.SourceClip | None:
    for piece in _pieces(segment, rate):
        if piece.clip is not None:
            return piece.clip
    return None


def _pieces(segment, rate: Fraction) -> list[_Piece]:
    """A segment as a flat list of clips and gaps (edit units of the slot it sits in)."""
    if isinstance(segment, components.SourceClip):
        if _nested_at(segment, rate):  # a nested sequence: its own pieces, cut to the part this clip uses
            return _window(_pieces(segment.slot.segment, rate), segment.start or 0, segment.length)
        return [_Piece(segment.length, segment)]
    if isinstance(segment, components.Sequence):
        return _sequence_pieces(segment, rate)
    if isinstance(segment, components.OperationGroup):
        inputs = list(segment["InputSegments"].value) if "InputSegments" in segment else []
        if _is_time_warp(segment):
            clip = _first_clip(inputs[0], rate) if inputs else None
            return [_Piece(segment.length, clip, 0, _speed(segment, inputs))]
        return _pieces(inputs[0], rate) if inputs else [_Piece(segment.length)]  # no input: a title or a matte
    if isinstance(segment, components.Selector) and "Selected" in segment:
        return _pieces(segment["Selected"].value, rate)
    if isinstance(segment, components.EssenceGroup) and "Choices" in segment and segment["Choices"].value:
        return _pieces(segment["Choices"].value[0], rate)
    if isinstance(segment, components.NestedScope) and segment.slots:
        return _pieces(segment.slots[-1], rate)  # a nested scope shows its last slot
    return [_Piece(segment.length or 0)]


def _nested_at(clip: components.SourceClip, rate: Fraction) -> bool:
    """A SourceClip of another sequence at the same edit rate (a nest at another rate counts as no picture)."""
    return (isinstance(clip.mob, mobs.CompositionMob) and clip.slot is not None
            and Fraction(clip.slot["EditRate"].value) == rate)


def _window(pieces: list[_Piece], start: int, length: int) -> list[_Piece]:
    """The part [start, start + length) of a list of pieces; what the pieces do not cover is a gap."""
    window, position = [], 0
    for piece in pieces:
        begin, end = max(position, start), min(position + piece.length, start + length)
        if end > begin:
            window.append(_Piece(end - begin, piece.clip, piece.skip + begin - position, piece.speed))
        position += piece.length
    covered = sum(piece.length for piece in window)
    return window + ([_Piece(length - covered)] if covered < length else [])


def _sequence_pieces(sequence: components.Sequence, rate: Fraction) -> list[_Piece]:
    """A Sequence's components in order; a Transition overlaps its neighbours, cut at its CutPoint."""
    pieces: list[_Piece] = []
    head = 0
    for component in sequence.components:
        if isinstance(component, components.Transition):
            cut = component["CutPoint"].value if "CutPoint" in component else component.length // 2
            if pieces:
                pieces[-1].length = max(pieces[-1].length - (component.length - cut), 0)
            head = cut
            continue
        for piece in _pieces(component, rate):
            if head:
                piece.length, piece.skip, head = piece.length - head, piece.skip + head, 0
            pieces.append(piece)
    return pieces


@dataclass(frozen=True)
class _Media:
    path: Path
    url: str
    rate: Fraction
    offset: Fraction  # seconds into the file


def _url_path(url: str) -> Path:
    parts = urllib.parse.urlsplit(url)
    path = urllib.parse.unquote(parts.path)
    return Path(f"//{parts.netloc}{path}" if parts.netloc else path)


def _local(url: str, folder: Path) -> Path:
    """The file a locator names, else a file of that name beside the AAF (media moved with the project)."""
    path = _url_path(url)
    if not path.is_file() and (folder / path.name).is_file():
        return folder / path.name
    return path


def _media(clip: components.SourceClip, rate: Fraction, folder: Path) -> _Media | None:
    """Follow MasterMob -> SourceMob(s) to a located file; the first one on disk wins, else the first named."""
    found: list[_Media] = []
    offset, mob, slot = Fraction(clip.start or 0) / rate, clip.mob, clip.slot
    for _ in range(MAX_CHAIN):
        if mob is None or slot is None or isinstance(mob, mobs.CompositionMob):
            break
        slot_rate = Fraction(slot["EditRate"].value)
        descriptor = mob["EssenceDescription"].value if "EssenceDescription" in mob else None
        for locator in descriptor["Locator"].value if descriptor is not None and "Locator" in descriptor else []:
            if "URLString" in locator and locator["URLString"].value:
                url = locator["URLString"].value
                found.append(_Media(_local(url, folder), url, slot_rate, offset))
        inner = _first_clip(slot.segment, slot_rate)
        if inner is None:
            break
        offset += Fraction(inner.start or 0) / slot_rate
        mob, slot = inner.mob, inner.slot
    present = [media for media in found if media.path.is_file()]
    return (present or found or [None])[0]


def _source_start(media: _Media, rate: Fraction) -> RationalTime:
    """The source start at the media's rate when it is a whole frame there (else at the sequence's)."""
    for candidate in (media.rate, rate):
        frames = media.offset * candidate
        if frames.denominator == 1:
            return RationalTime(int(frames), float(candidate))
    return RationalTime(float(media.offset * media.rate), float(media.rate))


def _clip(piece: _Piece, rate: Fraction, folder: Path, resolve: bool) -> otio.schema.Clip:
    source = piece.clip
    name = (source.mob.name if source.mob is not None else None) or "clip"
    duration = RationalTime(piece.length, float(rate))
    media = _media(source, rate, folder) if resolve else None
    if media is None:
        # a picture clip whose file is not located is still picture: the selection refuses it by name
        reference = otio.schema.ExternalReference(target_url="") if resolve else otio.schema.MissingReference()
        start = RationalTime(piece.skip + (source.start or 0), float(rate))
    else:
        reference = otio.schema.ExternalReference(target_url=media.path.absolute().as_uri())
        start = _source_start(_Media(media.path, media.url, media.rate, media.offset + Fraction(piece.skip) / rate),
                              rate)
    clip = otio.schema.Clip(name=name, media_reference=reference, source_range=TimeRange(start, duration))
    clip.metadata["aaf"] = {"mob_id": str(source.mob_id), "url": media.url if media else None}
    if piece.speed is not None:
        clip.effects.append(otio.schema.LinearTimeWarp(name="AAF speed", time_scalar=float(piece.speed)))
    return clip


def _track(name: str, kind: str, segment, rate: Fraction, folder: Path) -> otio.schema.Track:
    track = otio.schema.Track(name=name, kind=kind)
    for piece in _pieces(segment, rate):
        if piece.length <= 0:
            continue
        if piece.clip is None or (piece.clip.mob is None and kind == otio.schema.TrackKind.Video):
            track.append(otio.schema.Gap(source_range=TimeRange(duration=RationalTime(piece.length, float(rate)))))
        else:
            track.append(_clip(piece, rate, folder, kind == otio.schema.TrackKind.Video))
    return track


def _slot_tracks(composition: Composition, folder: Path) -> list[otio.schema.Track]:
    """Picture and sound slots as tracks; a Premiere picture NestedScope holds one video track per slot."""
    tracks = []
    for slot in composition.mob.slots:
        if slot.media_kind == "Picture":
            segment = slot.segment
            layers = list(segment.slots) if isinstance(segment, components.NestedScope) else [segment]
            for layer in layers:
                number = sum(t.kind == otio.schema.TrackKind.Video for t in tracks) + 1
                tracks.append(_track(slot.name or f"V{number}", otio.schema.TrackKind.Video, layer,
                                     composition.rate, folder))
        elif slot.media_kind == "Sound":  # SoundMasterTrack, timecode, edgecode, data and metadata carry no picture
            number = sum(t.kind == otio.schema.TrackKind.Audio for t in tracks) + 1
            tracks.append(_track(slot.name or f"A{number}", otio.schema.TrackKind.Audio, slot.segment,
                                 composition.rate, folder))
    return tracks


def timeline_of(composition: Composition, folder: Path) -> otio.schema.Timeline:
    """The composition as OTIO: record times from the sequence start, the start timecode as global start."""
    rate = float(composition.rate)
    timeline = otio.schema.Timeline(name=composition.name, global_start_time=RationalTime(composition.start, rate))
    timeline.metadata["aaf"] = {"edit_rate": str(composition.rate), "start_timecode": composition.timecode(),
                                "drop_frame": composition.drop_frame}
    for track in _slot_tracks(composition, folder):
        timeline.tracks.append(track)
    return timeline


def read_timeline(project: str | Path, *, sequence: str | None = None) -> otio.schema.Timeline:
    """The named (else the first) sequence of an AAF file as an OTIO timeline, times exact."""
    path = Path(project)
    with _opened(path) as handle:
        composition = choose_sequence(compositions(handle, path.name), sequence, path.name)
        return timeline_of(composition, path.parent)


def read_selection(project: str | Path, *, clip: str | None = None, record: TimeRange | None = None,
                   sequence: str | None = None) -> Selection:
    """AAF files carry no marks the editors agree on: name a clip or give a record range."""
    timeline = read_timeline(project, sequence=sequence)
    requested = requested_selection(timeline, clip, record)
    if requested is not None:
        return requested
    raise SelectionError(f"{Path(project).name} records no selection; name a clip (--clip NAME) or a range "
                         "(--in/--out).")


# -- writing ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Placed:
    placement: Placement
    start: int  # edit units from the sequence start
    length: int  # edit units
    samples: int
    sample_rate: int
    channels: int


def _placed(placement: Placement, rate: Fraction, warnings: list[str]) -> _Placed:
    if not placement.wav.is_file():
        raise ProjectFormatError(f"{placement.wav} does not exist; generate the foley first.")
    try:
        info = soundfile.info(str(placement.wav))
    except (OSError, RuntimeError) as exc:  # soundfile's errors subclass RuntimeError
        raise ProjectFormatError(f"Cannot read {placement.wav} as audio ({exc}); check the path of the WAV.") from None
    if info.subtype != "PCM_16":
        raise ProjectFormatError(f"{placement.wav.name} is {info.subtype}, not 16-bit PCM; place the WAVs that "
                                 "foley generate wrote.")
    start, length = frame_span(placement, rate, warnings)
    return _Placed(placement, start, length, info.frames, info.samplerate, info.channels)


def _linked_wav(handle: aaf2.file.AAFFile, item: _Placed, rate: Fraction) -> mobs.MasterMob:
    """A SourceMob linking the WAV (not embedding it) and the MasterMob an editor shows as the clip."""
    create = handle.create
    descriptor = create.PCMDescriptor()
    for key, value in (("Channels", item.channels), ("SampleRate", item.sample_rate),
                       ("AudioSamplingRate", item.sample_rate), ("QuantizationBits", 16),
                       ("BlockAlign", 2 * item.channels), ("AverageBPS", 2 * item.channels * item.sample_rate),
                       ("Length", item.samples)):
        descriptor[key].value = value
    descriptor["ContainerFormat"].value = handle.dictionary.lookup_containerdef("External")
    locator = create.NetworkLocator()
    locator["URLString"].value = item.placement.wav.resolve().as_uri()
    descriptor["Locator"].append(locator)
    source = create.SourceMob(item.placement.wav.name)
    handle.content.mobs.append(source)
    source.descriptor = descriptor
    source_slot = source.create_empty_slot(edit_rate=item.sample_rate, media_kind="sound", slot_id=1)
    source_slot.segment.length = item.samples
    master = create.MasterMob(item.placement.name)
    handle.content.mobs.append(master)
    master_slot = master.create_timeline_slot(edit_rate=rate, slot_id=1)
    master_slot.segment = source.create_source_clip(1, length=item.length, media_kind="sound")
    return master


def _sound_slots(mob: mobs.CompositionMob) -> list:
    return [slot for slot in mob.slots if slot.media_kind == "Sound"]


def _add_lane(handle, composition: Composition, lane: list[_Placed], name: str, number: int) -> None:
    """One new sound slot: Filler up to each foley clip's record frame, then the clip."""
    sequence = handle.create.Sequence(media_kind="sound")
    cursor = 0
    for item in lane:
        if item.start > cursor:
            sequence.components.append(handle.create.Filler("sound", item.start - cursor))
        master = _linked_wav(handle, item, composition.rate)
        sequence.components.append(master.create_source_clip(1, length=item.length, media_kind="sound"))
        cursor = item.start + item.length
    slot = composition.mob.create_timeline_slot(edit_rate=composition.rate,
                                                slot_id=max(s.slot_id for s in composition.mob.slots) + 1)
    slot.segment = sequence
    slot.name = name
    slot["PhysicalTrackNumber"].value = number


def _next_track_number(mob: mobs.CompositionMob) -> int:
    numbers = [slot["PhysicalTrackNumber"].value for slot in _sound_slots(mob) if "PhysicalTrackNumber" in slot]
    return max(numbers, default=len(_sound_slots(mob))) + 1


def snapshot(handle: aaf2.file.AAFFile) -> dict[str, list[str]]:
    """Every mob of a file as its flattened objects and property values (to prove a write only added)."""
    return {str(mob.mob_id): list(_flatten(mob, "")) for mob in handle.content.mobs}


def _flatten(obj, where: str) -> Iterator[str]:
    for prop in obj.properties():
        try:
            value = prop.value
        except Exception as exc:  # an unreadable property still has to read the same afterwards
            value = f"<{type(exc).__name__}>"
        if _owns(prop) and not isinstance(value, str):
            for index, item in enumerate(value if isinstance(value, list) else [value]):
                yield from _flatten(item, f"{where}/{prop.name}[{index}]")
        else:
            yield f"{where}/{prop.name}={_stable(value)}"


def _owns(prop) -> bool:
    # objects the property owns are walked; weak references (definitions) are compared by what they name
    return isinstance(prop, (aaf2.properties.StrongRefProperty, aaf2.properties.StrongRefVectorProperty,
                             aaf2.properties.StrongRefSetProperty))


def _stable(value) -> str:
    """A value as text without object addresses (a definition by its name and id)."""
    if isinstance(value, list):
        return "[" + ", ".join(_stable(item) for item in value) + "]"
    if isinstance(value, aaf2.core.AAFObject):
        return f"{type(value).__name__}({getattr(value, 'name', '')}, {getattr(value, 'auid', '')})"
    return repr(value)


def _only_added(before: dict[str, list[str]], after: dict[str, list[str]], target: str, slots: int) -> str | None:
    """None when `after` keeps every mob of `before` as it was, mob `target` gaining slots after its first `slots`."""
    for mob_id, lines in before.items():
        if mob_id not in after:
            return f"mob {mob_id} disappeared"
        changed = set(lines) ^ set(after[mob_id])
        if mob_id == target:
            changed = {line for line in changed if not _in_new_slot(line, slots)}
        if changed:
            return f"mob {mob_id} changed at {sorted(changed)[0][:120]}"
    return None


def _in_new_slot(line: str, slots: int) -> bool:
    match = re.match(r"/Slots\[(\d+)\]", line)
    return match is not None and int(match.group(1)) >= slots


def _write_copy(path: Path, staged: Path, sequence: str | None, placements: list[Placement],
                track_name: str) -> tuple[list[str], list[str]]:
    """Add the foley to `staged` (a copy of `path`) with pyaaf2 'rw'; return the slot names and warnings."""
    warnings: list[str] = []
    with _opened(path) as original:
        composition = choose_sequence(compositions(original, path.name), sequence, path.name)
        before = snapshot(original)
        mob_id, slots = str(composition.mob.mob_id), len(composition.mob.slots)
    placed = [_placed(p, composition.rate, warnings) for p in placements]
    by_placement = {id(item.placement): item for item in placed}
    lanes = [[by_placement[id(p)] for p in lane] for lane in pack_lanes(placements)]
    try:
        with aaf2.open(str(staged), "rw") as handle:
            target = compositions(handle, path.name)[composition.name]
            taken = {slot.name for slot in target.mob.slots if slot.name}
            names = unique_track_names(taken, track_name, len(lanes))
            number = _next_track_number(target.mob)
            for offset, (lane, name) in enumerate(zip(lanes, names)):
                _add_lane(handle, target, lane, name, number + offset)
        with aaf2.open(str(staged), "r") as written:
            problem = _only_added(before, snapshot(written), mob_id, slots)
    except Exception as exc:  # pyaaf2 failing on this file's structures: refuse, the original is untouched
        problem = f"{type(exc).__name__}: {exc}"
    if problem:
        raise ProjectWriteError(f"pyaaf2 cannot safely modify {path.name} ({problem}); nothing was written. "
                                "Export the sequence again as AAF from your editor and try that file.")
    return names, warnings


def write_audio_clips(project: str | Path, placements: list[Placement], *, track_name: str = "Foley",
                      sequence: str | None = None) -> WriteReport:
    """Add `placements` as linked WAVs on new sound tracks of the sequence; back up, then replace the file.

    Args:
        project: the AAF file (Avid Media Composer, Pro Tools or Premiere Pro export).
        placements: the WAVs and their record starts from the sequence start, at the sequence rate.
        track_name: name of the first new track ("Foley 2", ... for the lanes that overlapping variants need).
        sequence: the composition to add to, by name; default the first top-level one.

    Returns:
        The track names, the backup path and warnings (starts rounded to a frame).
    """
    path = Path(project)
    if not placements:
        raise SelectionError("Nothing to place: no variants were given.")
    check_writable(path)
    with tempfile.TemporaryDirectory(dir=path.parent) as folder:
        staged = Path(folder) / path.name
        shutil.copyfile(path, staged)
        names, warnings = _write_copy(path, staged, sequence, placements, track_name)
        data = staged.read_bytes()
    saved = replace_project(path, data)
    return WriteReport(", ".join(names), saved, tuple(warnings))
