"""A stem package: one 48 kHz BWF per foley clip, a mixdown, a versioned manifest ("StemSet.1"), an OTIO timeline
referencing the stems, and optionally the foley muxed into a copy of the video. Written to a staging folder
that is renamed into place only when everything succeeded.

Takes of one range (same source and range in their sidecars) are alternates, never summed: the first one listed
is the range's take in the mixdown; the others are stems marked `"take": "alternate"` (muted tracks in the OTIO).
Layers of a range (several prompts of one job, e.g. footsteps, wind, cloth) are summed: each layer has its takes.
"""

import json
import logging
import math
import shutil
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import opentimelineio as otio
import soundfile
from opentimelineio.opentime import RationalTime, TimeRange

from engine import __version__
from engine.core.levels import integrated_lufs, true_peak_dbtp
from export.mux import FOLEY_RATE, decoded_foley, mux
from export.stems import (
    DEFAULT_CEILING,
    LOUDNESS_PRESETS,
    STEM_RATE,
    ExportError,
    Loudness,
    normalise,
    read_48k,
    write_bwf,
    write_stem,
)

logger = logging.getLogger(__name__)

STEMSET_FORMAT = "StemSet.1"


@dataclass(frozen=True)
class StemInput:
    """A foley WAV and where it sits: seconds from the timeline start, plus its sidecar when there is one."""

    wav: Path
    record: Fraction
    sidecar: dict


def stem_input(wav: Path, record: Fraction | None = None) -> StemInput:
    """Read a generated WAV's sidecar; its range start is the record position unless `record` is given."""
    sidecar_path = wav.with_suffix(".json")
    sidecar = json.loads(sidecar_path.read_text()) if sidecar_path.is_file() else {}
    if record is None:
        if "source" not in sidecar:
            raise ExportError(f"{wav.name} has no sidecar ({sidecar_path.name}) saying where it belongs; give its "
                              "position (--at SECONDS).")
        record = Fraction(sidecar["source"]["start"])
    if not wav.is_file():
        raise ExportError(f"{wav} does not exist; generate it again or fix the path.")
    return StemInput(wav, record, sidecar)


def _range_key(item: StemInput) -> tuple:
    """Two WAVs are takes of one range when their sidecars name the same source, range and layer (a layer is one
    prompt of several for the range: layers are summed, takes are alternates); else each is its own."""
    source = item.sidecar.get("source")
    layer = (item.sidecar.get("layer") or {}).get("number")
    return (source.get("path"), source.get("start"), source.get("end"), layer) if source else (str(item.wav),)


def mixdown_takes(inputs: list[StemInput]) -> list[StemInput]:
    """For each input, the take of its range that goes into the mixdown: the first of that range listed."""
    first: dict[tuple, StemInput] = {}
    return [first.setdefault(_range_key(item), item) for item in inputs]


def _stem_name(item: StemInput) -> str:
    return f"stems/{item.wav.stem}_48k.wav"


def _mixdown(inputs: list[StemInput]) -> tuple[Fraction, np.ndarray]:
    """The clips summed at their positions, from the earliest start: (start seconds, 48 kHz audio)."""
    start = min(item.record for item in inputs)
    pieces = [(math.floor((item.record - start) * STEM_RATE + Fraction(1, 2)), read_48k(item.wav)) for item in inputs]
    mix = np.zeros(max(offset + len(audio) for offset, audio in pieces))
    for offset, audio in pieces:
        mix[offset : offset + len(audio)] += audio
    return start, mix


def _timeline(entries: list[tuple[str, Fraction, int, bool]], rate: Fraction, origin: Fraction) -> otio.schema.Timeline:
    """One audio track per file, each clip at its record position, times at the timeline rate; alternates muted."""
    frames = float(rate)
    timeline = otio.schema.Timeline(name="Foley stems", global_start_time=RationalTime(float(origin * rate), frames))
    for name, record, samples, alternate in entries:
        track = otio.schema.Track(name=Path(name).stem, kind=otio.schema.TrackKind.Audio)
        track.enabled = not alternate
        if record > 0:
            track.append(otio.schema.Gap(source_range=TimeRange(duration=RationalTime(float(record * rate), frames))))
        length = TimeRange(RationalTime(0, frames), RationalTime(math.ceil(Fraction(samples, STEM_RATE) * rate), frames))
        track.append(otio.schema.Clip(name=Path(name).stem, source_range=length,
                                      media_reference=otio.schema.ExternalReference(target_url=name, available_range=length)))
        timeline.tracks.append(track)
    return timeline


def _mux_under_ceiling(video: Path, out: Path, mix: np.ndarray, mixed: tuple[np.ndarray, Loudness],
                       mix_start: Fraction, ceiling: float, keep_original_audio: bool) -> dict:
    """Mux the mixdown as AAC and measure it decoded back. The encoder can overshoot the WAV's true peak and shift
    its loudness, so an over lowers the limiter's ceiling by as much, a loudness miss moves the aim by as much, and
    the mix is encoded again (unless the limiter is already at its deepest). Returns the AAC's measured levels."""
    (signal, level), target = mixed, mixed[1].target_lufs
    aim_target, aim_ceiling = target, ceiling
    for encodes in range(1, 5):
        # the video's own time is the record time: foley from t=0 of the video
        mux(video, np.concatenate([np.zeros(math.floor(mix_start * STEM_RATE)), signal]), out,
            keep_original_audio=keep_original_audio)
        decoded = decoded_foley(out)
        peak, loudness = true_peak_dbtp(decoded, FOLEY_RATE), integrated_lufs(decoded, FOLEY_RATE)
        missed = target - loudness if target is not None and loudness is not None else 0.0
        if peak <= ceiling and (abs(missed) <= 0.2 or level.limited_by_ceiling):
            break
        aim_ceiling -= max(0.0, peak - ceiling + 0.02)
        aim_target = aim_target + missed if aim_target is not None else None
        signal, level = normalise(mix, STEM_RATE, aim_target, aim_ceiling)
    if peak > ceiling or abs(missed) > 0.5:
        logger.warning("%s: the AAC measures %s LUFS, true peak %.2f dBTP (target %s, ceiling %.1f)", out.name,
                       loudness, peak, target, ceiling)
    return {"integrated_lufs": loudness, "true_peak_dbtp": peak, "limiter_ceiling_dbtp": aim_ceiling,
            "encodes": encodes, "limited_by_ceiling": abs(missed) > 0.5}


def export_package(inputs: list[StemInput], folder: Path, *, loudness: str = "broadcast",
                   ceiling: float = DEFAULT_CEILING, timeline_start: Fraction = Fraction(0), rate: Fraction = Fraction(25),
                   video: Path | None = None, keep_original_audio: bool = True) -> dict:
    """Write the package into `folder` (which must not exist yet) and return its manifest."""
    if not inputs:
        raise ExportError("Nothing to export: give at least one foley WAV.")
    if folder.exists():
        raise ExportError(f"{folder} already exists; choose a new folder so nothing is overwritten.")
    target = LOUDNESS_PRESETS[loudness]
    staging = folder.with_name(f".{folder.name}.part")
    shutil.rmtree(staging, ignore_errors=True)
    (staging / "stems").mkdir(parents=True)
    try:
        stems, entries, takes = [], [], mixdown_takes(inputs)
        for item, take in zip(inputs, takes):
            name = _stem_name(item)
            level = write_stem(item.wav, staging / name, timeline_start + item.record, target=target, ceiling=ceiling)
            samples = soundfile.info(str(staging / name)).frames
            entries.append((name, item.record, samples, take is not item))
            sidecar = item.sidecar
            role = {"take": "mixdown"} if take is item else {"take": "alternate", "alternate_of": _stem_name(take)}
            stems.append({"file": name, **role, "record_start": str(item.record), "samples": samples,
                          "source_wav": str(item.wav),
                          "seed": sidecar.get("seed"), "model": sidecar.get("model"), "sampler": sidecar.get("sampler"),
                          "steps": sidecar.get("steps"), "guidance": sidecar.get("guidance"),
                          "prompt": sidecar.get("prompt", ""), "layer": sidecar.get("layer"),
                          "source": sidecar.get("source", {}).get("path"), "licences": sidecar.get("licences", []),
                          "loudness": level.__dict__})
        mix_start, mix = _mixdown([item for item, take in zip(inputs, takes) if take is item])
        mixed, level = normalise(mix, STEM_RATE, target, ceiling)
        reference = math.floor((timeline_start + mix_start) * STEM_RATE + Fraction(1, 2))
        write_bwf(staging / "mixdown_48k.wav", mixed, STEM_RATE, reference, "Foley Desk mixdown", level)
        entries.append(("mixdown_48k.wav", mix_start, len(mixed), False))
        otio.adapters.write_to_file(_timeline(entries, rate, timeline_start), str(staging / "stems.otio"))
        manifest = {
            "format": STEMSET_FORMAT, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "engine_version": __version__, "timeline_start": str(timeline_start), "rate": str(rate),
            "loudness": {"preset": loudness, "target_lufs": target, "ceiling_dbtp": ceiling},
            "stems": stems,
            "mixdown": {"file": "mixdown_48k.wav", "record_start": str(mix_start), "samples": len(mixed),
                        "loudness": level.__dict__},
            "otio": "stems.otio",
            "licences": sorted({item["licence"] for stem in stems for item in stem["licences"]}),
        }
        if video is not None:
            muxed = staging / f"{video.stem}_foley{video.suffix}"
            aac = _mux_under_ceiling(video, muxed, mix, (mixed, level), mix_start, ceiling, keep_original_audio)
            manifest["muxed"] = {"file": muxed.name, "video": str(video), "original_audio": keep_original_audio,
                                 "loudness": aac}
        (staging / "stems.json").write_text(json.dumps(manifest, indent=2))
        staging.rename(folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return manifest
