"""Training data: a folder of videos with their sound, cut into model windows of frames and 16 kHz audio."""

import json
import logging
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch

from engine.errors import InputVideoError
from engine.metrics import av_align
from engine.video import decode_frames, probe_video
from engine.vta_ldm.config import ModelConfig
from engine.vta_ldm.vision_encoder import clips_motion

logger = logging.getLogger(__name__)

VIDEO_SUFFIXES = {".mp4", ".mov", ".mkv", ".webm", ".avi", ".m4v", ".mxf"}


@dataclass(frozen=True)
class TrainingSet:
    """Windows of training material: frames [N, T, S, S, 3] uint8, audio [N, samples] float32, where each window
    came from, and what the model reads of the motion (`motion_inputs`): optical-flow features [N, T, F] and the
    onset detector's cells [N, T, C], each None when the model reads none."""

    frames: torch.Tensor
    audio: torch.Tensor
    sources: tuple[str, ...]
    flow: torch.Tensor | None = None
    cells: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.audio)

    def subset(self, keep: np.ndarray) -> "TrainingSet":
        index = torch.from_numpy(np.flatnonzero(keep))
        flow, cells = (None if part is None else part[index] for part in (self.flow, self.cells))
        return TrainingSet(self.frames[index], self.audio[index], tuple(self.sources[i] for i in index), flow, cells)


def read_audio(path: Path, rate: int) -> np.ndarray:
    """The first audio stream of `path` (a sound file or a video), mixed to mono float32 at `rate`."""
    with av.open(str(path)) as container:
        if not container.streams.audio:
            raise InputVideoError(f"{path} has no sound. Training needs each video's own sound: put it in the file "
                                  "or in a .wav of the same name beside it.")
        resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
        chunks = [out.to_ndarray().reshape(-1) for frame in container.decode(audio=0) for out in resampler.resample(frame)]
        chunks += [out.to_ndarray().reshape(-1) for out in resampler.resample(None)]
    return np.concatenate(chunks) if chunks else np.zeros(0, np.float32)


def load_training_set(folder: Path, config: ModelConfig, limit: int | None = None,
                      cache: Path | None = None) -> TrainingSet:
    """Every whole model window of every video in `folder` (sound from a same-name .wav, else the video's own).
    With `cache`, the windows (and their motion) are kept in that file and read back while the videos, their sound
    files and the model's input sizes are unchanged: decoding and the flow take minutes per thousand clips."""
    videos = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in VIDEO_SUFFIXES)
    if not videos:
        raise InputVideoError(f"{folder} holds no videos ({', '.join(sorted(VIDEO_SUFFIXES))}). Point --data at a "
                              "folder of clips with their sound, or make a synthetic set with `foley synth`.")
    key = _cache_key(videos[:limit], config)
    if cache is not None and cache.is_file():
        kept = torch.load(cache, weights_only=True)
        if kept["key"] == key:
            logger.info("training set: %d windows read back from %s", len(kept["audio"]), cache)
            return TrainingSet(kept["frames"], kept["audio"], tuple(kept["sources"]), kept["flow"], kept["cells"])
    dataset = _read_windows(videos[:limit], config)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        partial = cache.with_suffix(".partial")
        torch.save({"key": key, "frames": dataset.frames, "audio": dataset.audio, "sources": list(dataset.sources),
                    "flow": dataset.flow, "cells": dataset.cells}, partial)
        partial.replace(cache)
    return dataset


def _cache_key(videos: list[Path], config: ModelConfig) -> str:
    """What the windows depend on: each video and sound file (name, size, time written) and the model's input."""
    files = [p for video in videos for p in (video, video.with_suffix(".wav")) if p.is_file()]
    stats = [(p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in files]
    inputs = (str(config.window_seconds), config.frame_rate, config.vision.image_size, config.sample_rate,
              config.vision.flow_grid, config.vision.onset_features)
    return json.dumps([str(videos[0].parent.resolve()), inputs, stats])


def _read_windows(videos: list[Path], config: ModelConfig) -> TrainingSet:
    folder = videos[0].parent
    window, samples = config.window_seconds, config.window_samples
    logger.info("reading %d videos from %s%s", len(videos), folder,
                ", then their optical flow" if config.vision.flow_grid or config.vision.detector_grid else "")
    frames, audio, sources = [], [], []
    for video in videos:
        wav = video.with_suffix(".wav")
        sound = read_audio(wav if wav.is_file() else video, config.sample_rate)
        duration = probe_video(video).duration
        start = Fraction(0)
        while start + window <= duration + Fraction(1, 1000):
            end = min(start + window, duration)
            picked = decode_frames(video, start, end, rate=config.frame_rate, size=config.vision.image_size).rgb
            count = int(window * config.frame_rate)
            picked = np.concatenate([picked, np.repeat(picked[-1:], count - len(picked), axis=0)])[:count]
            first = int(start * config.sample_rate)
            piece = sound[first:first + samples]
            frames.append(picked)
            audio.append(np.pad(piece, (0, samples - len(piece))))
            sources.append(f"{video.name}@{float(start):g}")
            start += window
    if not frames:
        raise InputVideoError(f"No video in {folder} is at least {float(window):g} s long (one model window).")
    logger.info("training set: %d windows from %d videos", len(frames), len(videos))
    dataset = TrainingSet(torch.from_numpy(np.stack(frames)), torch.from_numpy(np.stack(audio)), tuple(sources))
    return with_motion(dataset, config.vision.flow_grid, config.vision.detector_grid)


def with_motion(dataset: TrainingSet, flow_grid: int, onset_grid: int) -> TrainingSet:
    """The same set with what the model reads of the motion computed once (it does not change in training)."""
    if not (flow_grid or onset_grid):
        return dataset
    clips = (clip.permute(0, 3, 1, 2).float() / 255 for clip in dataset.frames)
    flow, cells = clips_motion(clips, flow_grid, onset_grid)
    return replace(dataset, flow=flow, cells=cells)


def clean(dataset: TrainingSet, fps: int, rate: int, threshold: float) -> TrainingSet:
    """VTA-LDM's data cleaning: keep only windows whose AV-Align score reaches `threshold`."""
    scores = np.array([av_align(clip.numpy(), fps, sound.numpy(), rate)
                       for clip, sound in zip(dataset.frames, dataset.audio)])
    kept = dataset.subset(scores >= threshold)
    logger.info("cleaning at AV-Align %.2f kept %d of %d windows", threshold, len(kept), len(dataset))
    if not len(kept):
        raise InputVideoError(f"No training window reaches AV-Align {threshold}; lower --clean.")
    return kept
