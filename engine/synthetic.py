"""Synthetic foley clips with exact event labels, for training and measuring the starter model.

Each clip is a small procedural scene: an object of some material drops, bounces on the floor (restitution by
material) and may slide to a stop, over a textured background with camera noise. Its sound is physically timed:
every floor contact is a modal-synthesis impact (damped partials whose frequencies and decays follow the
material, loudness following the impact speed), sliding is friction noise whose level follows the velocity, and
a quiet ambience runs under everything. Impact times are computed in closed form, so labels are exact.
Everything is deterministic by seed; held-out clips use a separate seed range.
"""

import json
import math
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import soundfile

from engine.sample_video import write_video

SAMPLE_RATE = 16000
GRAVITY = 9.81  # m/s^2; the scene is 2 m tall
SCENE_METRES = 2.0
HELD_OUT_SEEDS = 1_000_000  # seeds from here on are the held-out split

# partial frequencies (Hz, before size scaling), decay time (s), restitution, friction noise band (Hz), colour
MATERIALS = {
    "wood": ((180, 410, 770, 1240), 0.09, 0.45, (300, 2500), (150, 100, 60)),
    "metal": ((520, 1390, 2630, 4120), 0.6, 0.6, (2000, 7000), (170, 175, 185)),
    "glass": ((1200, 2950, 5100), 0.35, 0.5, (3000, 7500), (120, 200, 210)),
    "rubber": ((90, 210), 0.05, 0.75, (100, 1200), (40, 40, 45)),
    "cardboard": ((140, 330, 620), 0.04, 0.25, (200, 4000), (180, 150, 100)),
}


@dataclass(frozen=True)
class Event:
    """One labelled sound event: an impact at `time`, or a slide over [time, time + duration)."""

    kind: str  # "impact" or "slide"
    time: float
    strength: float
    duration: float = 0.0


@dataclass(frozen=True)
class Clip:
    seed: int
    material: str
    fps: int
    frames: np.ndarray  # [T, H, W, 3] uint8
    audio: np.ndarray  # float32 mono at SAMPLE_RATE
    events: tuple[Event, ...]


def _trajectory(rng: np.random.Generator, seconds: float, restitution: float):
    """Closed-form drop and bounces, then an optional slide: position functions and the exact events."""
    height = rng.uniform(0.8, 1.8)
    start = rng.uniform(0.1, 0.8)  # the drop begins a little into the clip
    x0, vx = rng.uniform(0.2, 0.5), rng.uniform(0.0, 0.35)
    impacts, t, speed = [], start + math.sqrt(2 * height / GRAVITY), math.sqrt(2 * GRAVITY * height)
    while t < seconds and speed > 0.6:
        impacts.append((t, speed))
        speed *= restitution
        t += 2 * speed / GRAVITY
    rest = t if speed <= 0.6 else seconds
    slide_speed = vx if rng.random() < 0.5 else 0.0

    def position(time: float) -> tuple[float, float]:
        if time < start:
            return x0, height
        y = 0.0
        if impacts and time < impacts[0][0]:
            y = height - 0.5 * GRAVITY * (time - start) ** 2
        else:
            for (hit, v), following in zip(impacts, [*impacts[1:], (math.inf, 0)]):
                if hit <= time < following[0]:
                    up = v * restitution
                    y = max(0.0, up * (time - hit) - 0.5 * GRAVITY * (time - hit) ** 2) if time < rest else 0.0
        moving = max(0.0, time - start)
        slide = slide_speed * max(0.0, time - rest) if slide_speed else 0.0
        return x0 + 0.05 * moving + slide, y

    events = [Event("impact", hit, min(1.0, v / 6.0)) for hit, v in impacts]
    if slide_speed and rest < seconds - 0.3:
        events.append(Event("slide", rest, min(1.0, slide_speed * 3), seconds - rest))
    return position, events, slide_speed, rest


def _impact(material: str, strength: float, size: float, rng: np.random.Generator) -> np.ndarray:
    partials, decay, *_ = MATERIALS[material]
    t = np.arange(int(SAMPLE_RATE * min(1.5, decay * 6))) / SAMPLE_RATE
    sound = np.zeros_like(t)
    for number, frequency in enumerate(partials):
        f = frequency / size * rng.uniform(0.97, 1.03)
        sound += np.exp(-t / (decay / (1 + 0.5 * number))) * np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi)) / (1 + number)
    click = np.exp(-t / 0.002) * rng.standard_normal(len(t)) * 0.3  # the contact transient
    return strength * (sound / len(partials) + click)


def _band_noise(length: int, band: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    spectrum = np.fft.rfft(rng.standard_normal(length))
    freqs = np.fft.rfftfreq(length, 1 / SAMPLE_RATE)
    spectrum[(freqs < band[0]) | (freqs > band[1])] = 0
    noise = np.fft.irfft(spectrum, length)
    return noise / (np.abs(noise).max() + 1e-9)


def make_clip(seed: int, seconds: float = 4.0, fps: int = 25, size: int = 96) -> Clip:
    """One deterministic clip: pictures, sound and labels from `seed`."""
    rng = np.random.default_rng(seed)
    material = list(MATERIALS)[int(rng.integers(len(MATERIALS)))]
    partials, decay, restitution, band, colour = MATERIALS[material]
    object_size = rng.uniform(0.7, 1.4)
    position, events, slide_speed, rest = _trajectory(rng, seconds, restitution)

    background = rng.integers(20, 90, 3)
    texture = rng.integers(-12, 12, (size, size, 1))
    floor = int(size * 0.85)
    radius = max(3, int(size * 0.09 * object_size))
    frames = np.empty((int(seconds * fps), size, size, 3), np.uint8)
    yy, xx = np.mgrid[:size, :size]
    for index in range(len(frames)):
        x, y = position(index / fps)
        picture = np.clip(background + texture, 0, 255).astype(np.float32) * np.ones((size, size, 3))
        picture[floor:] = 0.6 * np.array(colour) * 0.3 + 40
        cx, cy = int(x / SCENE_METRES * size) % size, int(floor - radius - y / SCENE_METRES * size)
        picture[(xx - cx) ** 2 + (yy - cy) ** 2 <= radius**2] = colour
        picture += rng.normal(0, 3, picture.shape)  # camera noise
        frames[index] = np.clip(picture, 0, 255).astype(np.uint8)

    audio = 0.01 * _band_noise(int(seconds * SAMPLE_RATE), (50, 3000), rng)  # ambience
    for event in events:
        first = int(event.time * SAMPLE_RATE)
        if event.kind == "impact":
            sound = _impact(material, event.strength, object_size, rng)
        else:  # friction: level follows the decaying sliding speed
            length = int(event.duration * SAMPLE_RATE)
            envelope = np.exp(-np.arange(length) / SAMPLE_RATE / 0.6) * event.strength
            sound = 0.3 * envelope * _band_noise(length, band, rng)
        end = min(len(audio), first + len(sound))
        audio[first:end] += sound[: end - first]
    audio = (0.8 * audio / max(1.0, np.abs(audio).max())).astype(np.float32)
    return Clip(seed, material, fps, frames, audio, tuple(events))


def write_clip(clip: Clip, folder: Path) -> Path:
    """`<seed>.mp4`, `<seed>.wav` and `<seed>.json` (labels) in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    stem = folder / f"{clip.seed:07d}"
    write_video(stem.with_suffix(".mp4"), clip.frames, [Fraction(i, clip.fps) for i in range(len(clip.frames))],
                Fraction(clip.fps))
    soundfile.write(stem.with_suffix(".wav"), clip.audio, SAMPLE_RATE, subtype="PCM_16")
    labels = {"format": "FoleyLabels.1", "seed": clip.seed, "material": clip.material, "fps": clip.fps,
              "sample_rate": SAMPLE_RATE, "events": [asdict(e) for e in clip.events]}
    stem.with_suffix(".json").write_text(json.dumps(labels, indent=1))
    return stem.with_suffix(".mp4")


def seeds_for(split: str, count: int) -> range:
    """Training seeds count up from 0; held-out seeds from HELD_OUT_SEEDS, so the splits never meet."""
    return range(count) if split == "train" else range(HELD_OUT_SEEDS, HELD_OUT_SEEDS + count)
