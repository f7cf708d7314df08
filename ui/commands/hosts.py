"""Host commands: `generate --project` reads a timeline selection (and `--place` puts the result back), `place` puts
WAVs on a timeline, `blender-addon` writes the Blender add-on, `premiere-plugin` the Premiere Pro panel."""

from __future__ import annotations

import argparse
import typing
from fractions import Fraction
from pathlib import Path

from editor_plugin.blender import build_addon
from editor_plugin.errors import ProjectFormatError
from editor_plugin.premiere import build_ccx

if typing.TYPE_CHECKING:
    import opentimelineio as otio
    from opentimelineio.opentime import RationalTime

    from editor_plugin.contract import Placement, Selection
    from editor_plugin.hosts import Project

# OTIO, its adapters and the host bridges load inside the commands, so that `foley --help` answers at once.

SEQUENCE_HELP = ("with a project holding several timelines (Kdenlive sequences, FCPXML projects, AAF compositions, "
                 "XML sequences, Resolve timelines): the one to use (default: the active one, else the first)")


def parse_position(text: str, timeline: otio.schema.Timeline) -> RationalTime:
    """A timeline position as the editor shows it: a frame number, a timecode (hh:mm:ss:ff, drop-frame with ';'),
    or seconds ("12.5s"). Timecodes on timelines that start at 01:00:00:00 count from that start."""
    from opentimelineio.opentime import RationalTime

    from editor_plugin.contract import exact_rate, timeline_rate

    rate = timeline_rate(timeline)
    if text.isdigit():
        return RationalTime(int(text), rate)
    if text.endswith("s"):
        try:
            return RationalTime(float(Fraction(text[:-1]) * exact_rate(rate)), rate)
        except ValueError:
            pass
    try:  # OTIO's timecode parser takes 24000/1001, not the 23.976 that Resolve writes; the frame count is the same
        time = RationalTime(RationalTime.from_timecode(text, float(exact_rate(rate))).value, rate)
    except ValueError:
        raise ValueError(f"'{text}' is not a frame number, a timecode (hh:mm:ss:ff) or seconds (12.5s).") from None
    start = timeline.global_start_time
    return time - start.rescaled_to(rate) if start is not None and time >= start else time


def read_selection(project: Project, args: argparse.Namespace) -> Selection:
    from opentimelineio.opentime import TimeRange

    record = None
    if args.in_point is not None or args.out_point is not None:
        if args.in_point is None or args.out_point is None:
            raise ValueError("give both --in and --out (the out point is the first frame after the range).")
        timeline = project.read_timeline()
        first, after = parse_position(args.in_point, timeline), parse_position(args.out_point, timeline)
        record = TimeRange(first, after - first)
    return project.read_selection(clip=args.clip, record=record)


def placements_for(wavs: list[Path], at: RationalTime) -> list[Placement]:
    import soundfile
    from opentimelineio.opentime import RationalTime

    from editor_plugin.contract import Placement

    placements = []
    for wav in wavs:
        try:
            info = soundfile.info(str(wav))
        except (OSError, RuntimeError) as exc:  # soundfile's errors subclass RuntimeError
            raise ProjectFormatError(f"Cannot read {wav} as audio ({exc}); check the path of the WAV.") from None
        placements.append(Placement(wav, at, RationalTime(info.frames, info.samplerate), wav.stem))
    return placements


def place(project: Project, wavs: list[Path], at: RationalTime, track: str) -> None:
    report = project.write_audio_clips(placements_for(wavs, at), track_name=track)
    where = f"; backup: {report.backup}" if report.backup else " (undo in the host)"
    print(f"placed {len(wavs)} clip(s) on track(s) {report.track} of {project.name} at frame {at.value:g}{where}")
    for warning in report.warnings:
        print(f"warning: {warning}")


def open_project_of(args: argparse.Namespace) -> Project:
    from editor_plugin.hosts import open_project

    return open_project(args.project, sequence=args.sequence, rate=None if args.rate is None else float(args.rate))


def cmd_place(args: argparse.Namespace) -> None:
    project = open_project_of(args)
    place(project, [Path(w) for w in args.wav], parse_position(args.at, project.read_timeline()), args.track)


def cmd_blender_addon(args: argparse.Namespace) -> None:
    print(build_addon(Path(args.output)))


def cmd_premiere_plugin(args: argparse.Namespace) -> None:
    print(build_ccx(Path(args.output).expanduser()))


def add_project_options(generate: argparse.ArgumentParser) -> None:
    """Give `generate` its --project options."""
    generate.add_argument("--project", help="a Kdenlive, Shotcut, OTIO, FCP XML, FCPXML, AAF or EDL timeline, or "
                                            "'resolve' for the timeline open in DaVinci Resolve")
    generate.add_argument("--clip", help="with --project: the video clip to generate for (by name)")
    generate.add_argument("--in", dest="in_point", help="with --project: first frame (number, timecode or 12.5s)")
    generate.add_argument("--out", dest="out_point", help="with --project: the frame after the range")
    generate.add_argument("--place", action="store_true", help="with --project: put the variants on the timeline")
    generate.add_argument("--track", default="Foley", help="name of the foley track (default Foley)")
    generate.add_argument("--rate", type=Fraction, help="frame rate of an EDL (EDLs do not record it)")
    generate.add_argument("--sequence", help=SEQUENCE_HELP)


def add_commands(sub) -> None:
    place_parser = sub.add_parser("place", help="put WAV files on a project's timeline at a position")
    place_parser.add_argument("project", help="a project file, or 'resolve'")
    place_parser.add_argument("--wav", action="append", required=True, help="a WAV to place (repeat for more)")
    place_parser.add_argument("--at", required=True, help="timeline position: frame, timecode or 12.5s")
    place_parser.add_argument("--track", default="Foley", help="name of the foley track (default Foley)")
    place_parser.add_argument("--rate", type=Fraction, help="frame rate of an EDL")
    place_parser.add_argument("--sequence", help=SEQUENCE_HELP)
    place_parser.set_defaults(func=cmd_place)

    addon = sub.add_parser("blender-addon", help="write the Blender add-on zip (install it in Blender's preferences)")
    addon.add_argument("-o", "--output", default="foley_desk_blender.zip", help="zip to write")
    addon.set_defaults(func=cmd_blender_addon)

    premiere = sub.add_parser("premiere-plugin", help="write the Premiere Pro panel (.ccx: install it with Creative "
                                                      "Cloud or the UXP Developer Tool)")
    premiere.add_argument("-o", "--output", default="foley_desk.ccx", help=".ccx file to write")
    premiere.set_defaults(func=cmd_premiere_plugin)
