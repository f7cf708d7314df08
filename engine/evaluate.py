"""`foley eval`: score foley for a labelled synthetic set — onset accuracy, AV-Align and a Fréchet distance."""

import json
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import numpy as np
import soundfile

from engine.config import SamplingConfig
from engine.errors import InputVideoError
from engine.generate import generate
from engine.metrics import audio_onsets, av_align, false_onsets, frechet_distance, mel_features, onset_accuracy
from engine.models import Components
from engine.video import EditFrames, EditSpan, decode_edit, probe_video


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
