"""`foley export`: stems, mixdown, manifest and OTIO for generated foley, optionally muxed into the video."""

import argparse
from fractions import Fraction
from pathlib import Path

# OTIO, numpy and the loudness meters load inside the command, so that `foley --help` answers at once.


def timecode_seconds(text: str, rate: Fraction) -> Fraction:
    """A timecode (hh:mm:ss:ff, or hh:mm:ss;ff drop-frame) at `rate`, or plain seconds, as exact seconds."""
    from opentimelineio.opentime import RationalTime

    if ":" not in text:
        return Fraction(text)
    frames = RationalTime.from_timecode(text, float(rate)).value  # OTIO counts drop-frame timecode correctly
    return Fraction(round(frames)) / rate


def cmd_export(args: argparse.Namespace) -> None:
    from export.package import export_package, stem_input
    from export.stems import DEFAULT_CEILING, LOUDNESS_PRESETS, MAX_LIMITING_DB

    if args.loudness not in LOUDNESS_PRESETS:
        raise ValueError(f"--loudness {args.loudness} is not a target; use one of {', '.join(LOUDNESS_PRESETS)}.")
    ceiling = DEFAULT_CEILING if args.ceiling is None else args.ceiling
    rate = Fraction(args.rate)
    if args.at is not None and len(args.wav) != 1:
        raise ValueError("--at places one WAV; give one WAV, or leave --at out and let the sidecars say.")
    inputs = [stem_input(Path(w), Fraction(args.at) if args.at is not None else None) for w in args.wav]
    manifest = export_package(inputs, Path(args.output), loudness=args.loudness, ceiling=ceiling,
                              timeline_start=timecode_seconds(args.timeline_start, rate), rate=rate,
                              video=Path(args.mux) if args.mux else None, keep_original_audio=not args.replace_audio)
    print(f"{args.output}: {len(manifest['stems'])} stem(s), mixdown, stems.json, stems.otio"
          + (f", {manifest['muxed']['file']}" if "muxed" in manifest else ""))
    alternates = [s["file"] for s in manifest["stems"] if s["take"] == "alternate"]
    if alternates:
        print(f"{len(alternates)} alternate take(s) kept as stems, not in the mixdown: {', '.join(alternates)}")
    level = manifest["mixdown"]["loudness"]
    if level["integrated_lufs"] is not None:
        print(f"mixdown {level['integrated_lufs']:.1f} LUFS, true peak {level['true_peak_dbtp']:.1f} dBTP"
              + (f" (below the target: reaching it needs more than {MAX_LIMITING_DB:.0f} dB of limiting)"
                 if level["limited_by_ceiling"] else ""))
    if "muxed" in manifest and manifest["muxed"]["loudness"]["integrated_lufs"] is not None:
        aac = manifest["muxed"]["loudness"]
        print(f"{manifest['muxed']['file']}: AAC {aac['integrated_lufs']:.1f} LUFS, "
              f"true peak {aac['true_peak_dbtp']:.1f} dBTP"
              + (f" (below the target: reaching it needs more than {MAX_LIMITING_DB:.0f} dB of limiting)"
                 if aac["limited_by_ceiling"] else ""))


def add_commands(sub) -> None:
    export = sub.add_parser("export", help="stems (48 kHz BWF), mixdown, manifest, OTIO; optionally mux into a video")
    export.add_argument("wav", nargs="+", help="generated foley WAVs (their .json sidecars give the positions); of "
                        "several takes of one range, the first listed goes into the mixdown, the rest are alternates")
    export.add_argument("-o", "--output", required=True, help="new folder for the package")
    export.add_argument("--loudness", default="broadcast",  # checked by the command, which loads the meters
                        help="EBU R128 target: broadcast -23 LUFS, online -16 LUFS, or none")
    export.add_argument("--ceiling", type=float, help="true-peak ceiling in dBTP (default -1)")
    export.add_argument("--timeline-start", default="0", help="timecode of the timeline start, e.g. 01:00:00:00")
    export.add_argument("--rate", default="25", help="timeline frame rate (e.g. 25, 30000/1001)")
    export.add_argument("--at", help="record position in seconds for a WAV without a sidecar")
    export.add_argument("--mux", metavar="VIDEO", help="also write a copy of VIDEO with the foley as an audio track")
    export.add_argument("--replace-audio", action="store_true", help="with --mux: drop the video's original audio")
    export.set_defaults(func=cmd_export)
