"""Host commands of `foley`: `generate --project` (timeline selection) and `place` (put WAVs on a timeline)."""

import argparse
import logging
from fractions import Fraction
from pathlib import Path
from types import ModuleType

import opentimelineio as otio
import soundfile
from opentimelineio.opentime import RationalTime, TimeRange

from editor_plugin import interchange, resolve
from editor_plugin.blender import build_addon
from editor_plugin.hosts import RESOLVE, bridge_for
from editor_plugin.contract import Placement, Selection, exact_rate, timeline_rate
from editor_plugin.errors import ProjectFormatError
from engine import cli as engine_cli
from engine.cli import Source, run_generation

logger = logging.getLogger(__name__)

def open_project(name: str, args: argparse.Namespace) -> tuple[ModuleType, object, dict]:
    """The bridge for `name` (a project file, or "resolve" for the running Resolve), the handle its functions
    take, and its options (EDLs need a frame rate from the user)."""
    if name == RESOLVE:
        return resolve, resolve.get_resolve(), {}
    path = Path(name)
    bridge = bridge_for(path)
    return bridge, path, {"rate": float(args.rate)} if args.rate is not None and bridge is interchange else {}


def parse_position(text: str, timeline: otio.schema.Timeline) -> RationalTime:
    """A timeline position as the editor shows it: a frame number, a timecode (hh:mm:ss:ff, drop-frame with ';'),
    or seconds ("12.5s"). Timecodes on timelines that start at 01:00:00:00 count from that start."""
    rate = timeline_rate(timeline)
    if text.isdigit():
        return RationalTime(int(text), rate)
    if text.endswith("s"):
        try:
            return RationalTime(float(Fraction(text[:-1]) * exact_rate(rate)), rate)
        except ValueError:
            pass
    try:
        time = RationalTime.from_timecode(text, rate)
    except ValueError:
        raise ValueError(f"'{text}' is not a frame number, a timecode (hh:mm:ss:ff) or seconds (12.5s).") from None
    start = timeline.global_start_time
    return time - start.rescaled_to(rate) if start is not None and time >= start else time


def read_selection(bridge: ModuleType, project, options: dict, args: argparse.Namespace) -> Selection:
    record = None
    if args.in_point is not None or args.out_point is not None:
        if args.in_point is None or args.out_point is None:
            raise ValueError("give both --in and --out (the out point is the first frame after the range).")
        timeline = bridge.read_timeline(project, **options)
        first, after = parse_position(args.in_point, timeline), parse_position(args.out_point, timeline)
        record = TimeRange(first, after - first)
    return bridge.read_selection(project, clip=args.clip, record=record, **options)


def placements_for(wavs: list[Path], at: RationalTime) -> list[Placement]:
    placements = []
    for wav in wavs:
        try:
            info = soundfile.info(str(wav))
        except (OSError, RuntimeError) as exc:  # soundfile's errors subclass RuntimeError
            raise ProjectFormatError(f"Cannot read {wav} as audio ({exc}); check the path of the WAV.") from None
        placements.append(Placement(wav, at, RationalTime(info.frames, info.samplerate), wav.stem))
    return placements


def place(bridge: ModuleType, project, options: dict, wavs: list[Path], at: RationalTime, track: str) -> None:
    report = bridge.write_audio_clips(project, placements_for(wavs, at), track_name=track, **options)
    where = f"; backup: {report.backup}" if report.backup else " (undo in the host)"
    print(f"placed {len(wavs)} clip(s) on track(s) {report.track} of {project} at frame {at.value:g}{where}")
    for warning in report.warnings:
        print(f"warning: {warning}")


def cmd_generate(args: argparse.Namespace) -> None:
    """`foley generate`: a video range, or with --project the timeline selection (then --place puts it back)."""
    if args.project is None:
        return engine_cli.cmd_generate(args)
    bridge, project, options = open_project(args.project, args)
    selection = read_selection(bridge, project, options, args)
    start, end = selection.range_seconds()
    print(f"selection {selection.label}: {len(selection.spans)} span(s), {float(start):.3f}-{float(end):.3f} s",
          flush=True)
    name = str(project.resolve()) if isinstance(project, Path) else f"resolve:{bridge.read_timeline(project).name}"
    wavs = run_generation(Source(tuple(selection.edit()), start, end, name), args)
    if args.place:
        place(bridge, project, options, wavs, selection.record.start_time, args.track)


def cmd_place(args: argparse.Namespace) -> None:
    bridge, project, options = open_project(args.project, args)
    timeline = bridge.read_timeline(project, **options)
    place(bridge, project, options, [Path(w) for w in args.wav], parse_position(args.at, timeline), args.track)



def cmd_blender_addon(args: argparse.Namespace) -> None:
    print(build_addon(Path(args.output)))


def add_host_commands(sub, generate: argparse.ArgumentParser) -> None:
    """Give `generate` its --project options and add `place`."""
    generate.add_argument("--project", help="a Kdenlive, Shotcut, OTIO, FCP XML, FCPXML, AAF or EDL timeline, or "
                                            "'resolve' for the timeline open in DaVinci Resolve")
    generate.add_argument("--clip", help="with --project: the video clip to generate for (by name)")
    generate.add_argument("--in", dest="in_point", help="with --project: first frame (number, timecode or 12.5s)")
    generate.add_argument("--out", dest="out_point", help="with --project: the frame after the range")
    generate.add_argument("--place", action="store_true", help="with --project: put the variants on the timeline")
    generate.add_argument("--track", default="Foley", help="name of the foley track (default Foley)")
    generate.add_argument("--rate", type=Fraction, help="frame rate of an EDL (EDLs do not record it)")
    generate.set_defaults(func=cmd_generate)

    place_parser = sub.add_parser("place", help="put WAV files on a project's timeline at a position")
    place_parser.add_argument("project", help="a project file, or 'resolve'")
    place_parser.add_argument("--wav", action="append", required=True, help="a WAV to place (repeat for more)")
    place_parser.add_argument("--at", required=True, help="timeline position: frame, timecode or 12.5s")
    place_parser.add_argument("--track", default="Foley", help="name of the foley track (default Foley)")
    place_parser.add_argument("--rate", type=Fraction, help="frame rate of an EDL")
    place_parser.set_defaults(func=cmd_place)

    addon = sub.add_parser("blender-addon", help="write the Blender add-on zip (install it in Blender's preferences)")
    addon.add_argument("-o", "--output", default="foley_desk_blender.zip", help="zip to write")
    addon.set_defaults(func=cmd_blender_addon)
