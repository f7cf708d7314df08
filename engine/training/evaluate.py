"""`foley eval`: score foley for a labelled synthetic set — onset accuracy, AV-Align and a Fréchet distance — or
any WAV's sync score against any clip."""

import json
import logging
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import numpy as np
import soundfile
import soxr

from engine.config import SamplingConfig
from engine.core.generate import generate
from engine.errors import InputVideoError
from engine.metrics import (
    audio_onsets,
    av_align,
    false_onsets,
    frechet_distance,
    mel_features,
    motion_curve,
    onset_accuracy,
    sync_score,
)
from engine.models import Components
from engine.video import EditFrames, EditSpan, decode_edit, decode_frames, probe_video

logger = logging.getLogger(__name__)


def clip_frames(video: Path, fps: int) -> np.ndarray:
    """Every frame of a labelled clip as RGB, for optical flow."""
    duration = probe_video(video).duration
    frames = decode_edit([EditSpan(video, Fraction(0), duration, Fraction(0))], Fraction(0), duration, rate=fps,
                         fit=np.asarray)
    return frames.rgb


def model_audio(components: Components, sampling: SamplingConfig) -> Callable[[Path, dict], np.ndarray]:
    """`audio_for` that generates each clip's sound with a model, seeded by the clip's seed."""
    config = components.config

    def audio_for(video: Path, labels: dict) -> np.ndarray:
        end = probe_video(video).duration
        frames = EditFrames((EditSpan(video, Fraction(0), end, Fraction(0)),), Fraction(0), end, config.frame_rate,
                            config.vision.image_size)
        return generate(frames, components=components, sampling=sampling, seeds=(labels["seed"],)).variants[0].audio

    return audio_for


def evaluate(set_dir: Path, audio_for: Callable[[Path, dict], np.ndarray]) -> dict:
    """Metrics over every labelled clip in `set_dir`; `audio_for(video, labels)` gives the sound to score."""
    labelled = sorted(set_dir.glob("*.json"))
    if not labelled:
        raise InputVideoError(f"{set_dir} has no labelled clips; make some with `foley synth {set_dir}`.")
    rows, generated, truth = [], [], []
    for path in labelled:
        labels = json.loads(path.read_text())
        video = path.with_suffix(".mp4")
        audio = audio_for(video, labels)
        impacts = [e["time"] for e in labels["events"] if e["kind"] == "impact"]
        onsets = audio_onsets(audio)
        rows.append({"seed": labels["seed"], "kind": labels.get("kind", "drop"),
                     "onset_accuracy": onset_accuracy(onsets, impacts, labels["fps"]),
                     "false_onsets_per_4s": false_onsets(onsets, impacts, len(audio) / labels["sample_rate"]),
                     "av_align": av_align(clip_frames(video, labels["fps"]), labels["fps"], audio)})
        generated.append(mel_features(audio))
        truth.append(mel_features(soundfile.read(str(path.with_suffix(".wav")), dtype="float32")[0]))
    return {
        **_means(rows),
        "frechet_mel": frechet_distance(np.array(generated), np.array(truth)) if len(rows) > 2 else None,
        "per_kind": {kind: _means([r for r in rows if r["kind"] == kind]) for kind in sorted({r["kind"] for r in rows})},
        "per_clip": rows,
    }


def _means(rows: list[dict]) -> dict:
    """Clip count and the mean of each per-clip score."""
    scores = ("onset_accuracy", "false_onsets_per_4s", "av_align")
    return {"clips": len(rows), **{name: float(np.mean([r[name] for r in rows])) for name in scores}}


def _wav_start(wav: Path, video: Path) -> Fraction:
    """Where a WAV starts in `video`: its sidecar's range start when the sidecar names that video, else 0 s."""
    sidecar = wav.with_suffix(".json")
    if sidecar.is_file():
        source = json.loads(sidecar.read_text()).get("source", {})
        if Path(source.get("path", "")).resolve() == video.resolve():
            return Fraction(source["start"])
    return Fraction(0)


def clip_sync_score(video: Path, wav: Path, rate: int, size: int) -> float:
    """The sync score (`engine.metrics.sync_score`) of a WAV against the picture of `video` over the WAV's range,
    the picture sampled at `rate` fps and fitted to `size` as a model sees it."""
    if not wav.is_file():
        raise InputVideoError(f"No such WAV file: {wav}. Check the path and try again.")
    audio, sample_rate = soundfile.read(str(wav), dtype="float32", always_2d=True)
    audio = audio.mean(axis=1)
    if sample_rate != 16000:  # the onset detector's hop and window are set for 16 kHz
        audio = soxr.resample(audio, sample_rate, 16000)
    start = _wav_start(wav, video)
    end = min(start + Fraction(len(audio), 16000), probe_video(video).duration)
    if end <= start:
        raise InputVideoError(f"{wav.name} starts at {float(start):.3f} s, after the end of {video.name}.")
    frames = decode_frames(video, start, end, rate=rate, size=size)
    return sync_score(motion_curve(frames.rgb), rate, audio)
