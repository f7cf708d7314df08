"""Synthetic foley clips with exact event labels, for training and measuring the starter model.

Each clip is a small procedural scene of one kind (`SCENE_KINDS`): objects of some material drop and bounce on
the floor, slide into walls, several at once, under a panning or shaking camera, behind an occluder, beside
silent distractors, thrown across the room against a wall, sliding into each other, or dropped onto another lying on
the floor. Everything that is not the event is randomised (domain randomisation, Tobin et al. 2017): backgrounds
(procedural textures, or frames of real footage from `load_backgrounds`), lighting and colours, object shapes and
sizes, frame size, and the frame rate (23.976-30 fps; the model's loader resamples to its
25 fps). The sound is physically timed: every contact is a modal-synthesis impact (damped partials whose
frequencies and decays follow the material, loudness following the impact speed), sliding is friction noise,
and a quiet ambience runs under everything. Contact times are computed in closed form, so labels are exact.
Everything is deterministic by (seed, kind); held-out clips use a separate seed range, and whole kinds
(`HELD_OUT_KINDS`) are kept out of the training split.
"""

import json
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from fractions import Fraction
from pathlib import Path
from typing import Literal, get_args

import numpy as np
import soundfile

from engine.training.sample_video import write_video

logger = logging.getLogger(__name__)

SAMPLE_RATE = 16000
GRAVITY = 9.81  # m/s^2; the scene is 2 m tall
SCENE_METRES = 2.0
MODEL_FPS = 25  # the rate labels are scored at (one video frame = 40 ms)
HELD_OUT_SEEDS = 1_000_000  # seeds from here on are the held-out split
FRAME_RATES = (Fraction(24000, 1001), Fraction(24), Fraction(25), Fraction(30000, 1001), Fraction(30))

SceneKind = Literal["drop", "floor", "multi", "wall", "pan", "shake", "occlusion", "distractor", "throw", "collide",
                    "stack"]
# never in the training split: motions whose parts are trained (floor bounces, wall hits, sliding) in new combinations
HELD_OUT_KINDS: tuple[SceneKind, ...] = ("throw", "collide")
Shape = Literal["disc", "square", "diamond"]

# partial frequencies (Hz, before size scaling), decay time (s), restitution, friction noise band (Hz), colour
MATERIALS = {
    "wood": ((180, 410, 770, 1240), 0.09, 0.45, (300, 2500), (150, 100, 60)),
    "metal": ((520, 1390, 2630, 4120), 0.6, 0.6, (2000, 7000), (170, 175, 185)),
    "glass": ((1200, 2950, 5100), 0.35, 0.5, (3000, 7500), (120, 200, 210)),
    "rubber": ((90, 210), 0.05, 0.75, (100, 1200), (40, 40, 45)),
    "cardboard": ((140, 330, 620), 0.04, 0.25, (200, 4000), (180, 150, 100)),
}

Path2D = Callable[[float], tuple[float, float]]  # time (s) -> centre (x, y) in metres, y up from the floor


@dataclass(frozen=True)
class Event:
    """One labelled sound event: an impact at `time`, or a slide over [time, time + duration)."""

    kind: str  # "impact" or "slide"
    time: float
    strength: float
    duration: float = 0.0


@dataclass(frozen=True)
class Body:
    """One object of a scene; distractors move but have no events and make no sound."""

    material: str
    shape: Shape
    radius: float  # metres
    colour: tuple[int, int, int]
    path: Path2D
    events: tuple[Event, ...] = ()


@dataclass(frozen=True)
class Scene:
    """What happens: the bodies, walls (x of their inner faces, metres), camera offset and an occluder."""

    kind: str
    width: float  # metres
    bodies: tuple[Body, ...]
    walls: tuple[float, ...] = ()
    camera: Callable[[float], tuple[float, float]] | None = None  # time -> offset (x, y) in frame heights
    occluder: tuple[float, float, float] | None = None  # x left, x right, y bottom (metres); reaches the top
    flash: bool = False  # the floor lights up at each floor impact (as the demo clip's)

    @property
    def events(self) -> tuple[Event, ...]:
        return tuple(sorted((e for b in self.bodies for e in b.events), key=lambda e: e.time))


@dataclass(frozen=True)
class Look:
    """How it is shown: everything randomised that is not the event."""

    fps: Fraction
    height: int  # pixels
    aspect: float  # width / height
    background: np.ndarray = field(repr=False)  # [H + 2m, W + 2m, 3] float32, the margin m for camera motion
    floor_colour: np.ndarray = field(repr=False)  # RGB
    floor_row: float  # share of the height where the floor starts
    gain: np.ndarray = field(repr=False)  # lighting: per-channel gain
    flicker: float  # amplitude of a slow brightness change
    noise: float  # camera noise (grey levels)
    source: str  # what the background is

    @property
    def width(self) -> int:
        return 2 * round(self.height * self.aspect / 2)  # even, as H.264's 4:2:0 needs


@dataclass(frozen=True)
class Clip:
    seed: int
    material: str
    fps: Fraction  # the rate the frames were rendered at
    frames: np.ndarray  # [T, H, W, 3] uint8
    audio: np.ndarray  # float32 mono at SAMPLE_RATE
    events: tuple[Event, ...]
    kind: str = "drop"
    background: str = "texture"


# -- motion (closed form, so the labels are exact) --------------------------------------------------------------

def _bounces(start: float, height: float, restitution: float, seconds: float) -> list[tuple[float, float]]:
    """(time, speed) of each floor contact of a body dropped from rest at `height` at `start`."""
    impacts, t, speed = [], start + math.sqrt(2 * height / GRAVITY), math.sqrt(2 * GRAVITY * height)
    while t < seconds + 1 and speed > 0.6:
        impacts.append((t, speed))
        speed *= restitution
        t += 2 * speed / GRAVITY
    return impacts


def _height(time: float, start: float, height: float, impacts: list[tuple[float, float]], restitution: float) -> float:
    if time < start:
        return height
    if not impacts or time < impacts[0][0]:
        return max(0.0, height - 0.5 * GRAVITY * (time - start) ** 2)
    hit, speed = [(t, v) for t, v in impacts if t <= time][-1]
    up = speed * restitution if restitution < 1 else speed
    return max(0.0, up * (time - hit) - 0.5 * GRAVITY * (time - hit) ** 2)


def _drop(rng: np.random.Generator, seconds: float, material: str, radius: float, x_range: tuple[float, float],
          periodic: bool = False, base: float = 0.0) -> Body:
    """A drop with bounces (restitution by material), then an optional slide. `periodic`: an elastic ball already
    bouncing when the clip starts, the same height every time (the demo clip's motion). `base`: the height of what
    it lands on (another body's top; no slide then)."""
    restitution = 1.0 if periodic else MATERIALS[material][2]
    height = rng.uniform(0.5, 1.85) if periodic else rng.uniform(0.8, 1.8) - base  # periods 0.64-1.23 s
    period = 2 * math.sqrt(2 * height / GRAVITY)
    start = -rng.uniform(0, period) if periodic else rng.uniform(0.1, 0.8)
    x0 = rng.uniform(*x_range)
    drift = rng.uniform(-0.3, 0.3) if periodic else rng.uniform(0.0, 0.05) * (not base)  # stays on what it hit
    impacts = _bounces(start, height, restitution, seconds)
    rest = impacts[-1][0] if impacts and not periodic else math.inf
    slide = rng.uniform(0.1, 0.35) if not periodic and not base and rng.random() < 0.5 and rest < seconds - 0.3 else 0.0

    def path(time: float) -> tuple[float, float]:
        x = x0 + drift * max(0.0, time - start) + slide * max(0.0, time - rest)
        y = base + _height(time, start, height, impacts, restitution)
        return float(np.clip(x, x_range[0] - 0.2, x_range[1] + 0.2)), y

    events = [Event("impact", t, min(1.0, v / 6.0)) for t, v in impacts if 0 <= t < seconds]
    if slide:
        events.append(Event("slide", rest, min(1.0, slide * 3), seconds - rest))
    return Body(material, _shape(rng), radius, _colour(rng, material), path, tuple(events))


def _slide_between_walls(rng: np.random.Generator, seconds: float, material: str, radius: float,
                         walls: tuple[float, float]) -> Body:
    """A body sliding on the floor with friction, hitting the walls (horizontal impacts) and bouncing off them."""
    lo, hi = walls[0] + radius, walls[1] - radius
    friction, restitution = rng.uniform(0.05, 0.4), max(0.5, MATERIALS[material][2])
    x, v, t = rng.uniform(lo, hi), rng.choice([-1.0, 1.0]) * rng.uniform(1.5, 4.0), 0.0
    segments, events = [], []  # (start time, start x, signed velocity)
    while t < seconds and abs(v) > 0.2:
        segments.append((t, x, v))
        distance = (hi - x) if v > 0 else (x - lo)
        if v * v < 2 * friction * distance:  # stops before the wall
            break
        tau = (abs(v) - math.sqrt(v * v - 2 * friction * distance)) / friction
        t, x = t + tau, hi if v > 0 else lo
        speed = abs(v) - friction * tau
        if t < seconds:
            events.append(Event("impact", t, min(1.0, speed / 3.5)))
        v = -math.copysign(speed * restitution, v)
    segments.append((t, x, v if t >= seconds or abs(v) > 0.2 else 0.0))

    def path(time: float) -> tuple[float, float]:
        start, x0, v0 = [s for s in segments if s[0] <= time][-1]
        s = min(time - start, abs(v0) / friction) if v0 else 0.0
        return x0 + v0 * s - math.copysign(0.5 * friction * s * s, v0), 0.0

    return Body(material, _shape(rng), radius, _colour(rng, material), path, tuple(events))


def _thrown(rng: np.random.Generator, seconds: float, material: str, radius: float,
            walls: tuple[float, float]) -> Body:
    """A body thrown across the room: ballistic arcs that bounce on the floor and off the walls (diagonal motion,
    vertical and horizontal contacts in one flight) until it lands dead and stops."""
    lo, hi = walls[0] + radius, walls[1] - radius
    restitution = MATERIALS[material][2]
    x, y, t = rng.uniform(lo, hi), rng.uniform(0.6, 1.6), 0.0
    vx, vy = rng.choice([-1.0, 1.0]) * rng.uniform(1.5, 4.5), rng.uniform(-1.0, 2.5)
    segments, events = [], []  # (start time, x, y, vx, vy); vy = 0 and y = 0: at rest
    while t < seconds + 1:
        segments.append((t, x, y, vx, vy))
        if y <= 0 and vy == 0:
            break
        floor = (vy + math.sqrt(vy * vy + 2 * GRAVITY * y)) / GRAVITY  # time to reach y = 0
        wall = ((hi - x) / vx if vx > 0 else (lo - x) / vx) if vx else math.inf
        step = min(floor, wall)
        t, x, y = t + step, x + vx * step, y + vy * step - 0.5 * GRAVITY * step * step
        if wall <= floor:
            x = hi if vx > 0 else lo
            events.append(Event("impact", float(t), min(1.0, abs(vx) / 3.5)))
            vx = -vx * restitution
        else:
            y, speed = 0.0, GRAVITY * floor - vy
            events.append(Event("impact", float(t), min(1.0, speed / 6.0)))
            vy, vx = speed * restitution, vx * 0.7
            if vy < 0.6:
                vx = vy = 0.0
    events = [e for e in events if 0 <= e.time < seconds]

    def path(time: float) -> tuple[float, float]:
        start, x0, y0, ux, uy = [s for s in segments if s[0] <= time][-1]
        s = time - start
        return x0 + ux * s, max(0.0, y0 + uy * s - 0.5 * GRAVITY * s * s) if (uy or y0 > 0) else 0.0

    return Body(material, _shape(rng), radius, _colour(rng, material), path, tuple(events))


def _colliding(rng: np.random.Generator, seconds: float, width: float) -> tuple[Body, Body]:
    """Two bodies sliding on the floor into each other (an impact between objects, no wall): constant speeds to the
    contact, an inelastic exchange of momentum (masses by area), then friction stops them."""
    (ra, rb), materials = rng.uniform(0.08, 0.22, 2), (_material(rng), _material(rng))
    contact, centre = rng.uniform(0.6, seconds - 0.6), rng.uniform(0.4 * width, 0.6 * width)
    va, vb = rng.uniform(0.5, 2.5), -rng.uniform(0.0, 2.5) if rng.random() < 0.7 else 0.0
    restitution, friction = min(MATERIALS[m][2] for m in materials), rng.uniform(0.5, 1.5)
    ma, mb = ra * ra, rb * rb
    after_a = (ma * va + mb * vb - mb * restitution * (va - vb)) / (ma + mb)
    after_b = (ma * va + mb * vb + ma * restitution * (va - vb)) / (ma + mb)
    xa, xb = centre - ra, centre + rb  # positions at the contact

    def path_of(x_contact: float, before: float, after: float) -> Path2D:
        def path(time: float) -> tuple[float, float]:
            if time < contact:
                return x_contact + before * (time - contact), 0.0
            s = min(time - contact, abs(after) / friction)
            return x_contact + after * s - math.copysign(0.5 * friction * s * s, after), 0.0

        return path

    strength = min(1.0, (va - vb) / 3.0)
    impact = (Event("impact", float(contact), float(strength)),)
    return (Body(materials[0], _shape(rng), ra, _colour(rng, materials[0]), path_of(xa, va, after_a), impact),
            Body(materials[1], _shape(rng), rb, _colour(rng, materials[1]), path_of(xb, vb, after_b)))


def _resting(rng: np.random.Generator, x: float, radius: float) -> Body:
    """A body lying still on the floor: it makes no sound of its own."""
    material = _material(rng)
    return Body(material, _shape(rng), radius, _colour(rng, material), lambda time: (x, 0.0))


def _distractor(rng: np.random.Generator, width: float) -> Body:
    """A silent object drifting on a smooth path in the air, never touching anything."""
    centre = np.array([rng.uniform(0.3, width - 0.3), rng.uniform(0.7, 1.5)])
    amplitude = np.array([rng.uniform(0.1, 0.5), rng.uniform(0.05, 0.3)])
    speed, phase = rng.uniform(0.5, 3.0, 2), rng.uniform(0, 2 * np.pi, 2)

    def path(time: float) -> tuple[float, float]:
        x, y = centre + amplitude * np.sin(speed * time + phase)
        return float(x), float(y)

    return Body("none", _shape(rng), rng.uniform(0.05, 0.2), tuple(int(c) for c in rng.integers(30, 255, 3)), path)


# -- scene kinds ----------------------------------------------------------------------------------------------

def _material(rng: np.random.Generator) -> str:
    return list(MATERIALS)[int(rng.integers(len(MATERIALS)))]


def _shape(rng: np.random.Generator) -> Shape:
    return get_args(Shape)[int(rng.integers(3))]


def _colour(rng: np.random.Generator, material: str) -> tuple[int, int, int]:
    """The material's colour, or (half the time) any colour: colour must not be the only cue to the sound."""
    base = np.array(MATERIALS[material][4]) if rng.random() < 0.5 else rng.integers(20, 255, 3)
    return tuple(int(c) for c in np.clip(base + rng.integers(-25, 25, 3), 0, 255))


def _radius(rng: np.random.Generator) -> float:
    return rng.uniform(0.08, 0.26)


def _floor_scene(rng: np.random.Generator, seconds: float, width: float, kind: str) -> Scene:
    periodic = rng.random() < 0.35
    body = _drop(rng, seconds, _material(rng), _radius(rng), (0.3, width - 0.3), periodic)
    return Scene(kind, width, (body,), flash=rng.random() < 0.3)


def _plain_floor_scene(rng: np.random.Generator, seconds: float, width: float) -> Scene:
    return _floor_scene(rng, seconds, width, "floor")


def _drop_scene(rng: np.random.Generator, seconds: float, width: float) -> Scene:
    """Today's classic: one object dropped a little into the clip, bouncing, maybe sliding."""
    body = _drop(rng, seconds, _material(rng), _radius(rng), (0.3, 0.8))
    return Scene("drop", width, (body,))


def _multi_scene(rng: np.random.Generator, seconds: float, width: float) -> Scene:
    count = int(rng.integers(2, 4))
    lanes = np.linspace(0.2, width - 0.2, count + 1)
    bodies = tuple(_drop(rng, seconds, _material(rng), _radius(rng) * 0.8, (lanes[i] + 0.15, lanes[i + 1] - 0.15),
                         rng.random() < 0.3) for i in range(count))
    return Scene("multi", width, bodies, flash=False)


def _wall_scene(rng: np.random.Generator, seconds: float, width: float) -> Scene:
    walls = (rng.uniform(0.1, 0.5), width - rng.uniform(0.1, 0.5))
    body = _slide_between_walls(rng, seconds, _material(rng), _radius(rng), walls)
    return Scene("wall", width, (body,), walls=walls)


def _pan_scene(rng: np.random.Generator, seconds: float, width: float) -> Scene:
    begin, end = rng.uniform(-1, 1, (2, 2)) * np.array([0.12, 0.04])  # offsets in frame heights

    def camera(time: float) -> tuple[float, float]:
        x, y = begin + (end - begin) * min(1.0, time / seconds)
        return float(x), float(y)

    return replace(_floor_scene(rng, seconds, width, "pan"), camera=camera)


def _shake_scene(rng: np.random.Generator, seconds: float, width: float) -> Scene:
    """Hand-held shake (a few smooth wobbles) and silent jolts: motion of the whole picture that makes no sound."""
    amplitude, rates, phases = rng.uniform(0.005, 0.03), rng.uniform(2, 9, 4), rng.uniform(0, 2 * np.pi, 4)
    jolts = rng.uniform(0, seconds, int(rng.integers(0, 3)))

    def camera(time: float) -> tuple[float, float]:
        wobble = amplitude * np.sin(rates * time + phases)
        kick = sum(0.04 * math.exp(-(time - j) / 0.1) for j in jolts if time >= j)
        return float(wobble[0] + wobble[1] + kick), float(wobble[2] + wobble[3])

    return replace(_floor_scene(rng, seconds, width, "shake"), camera=camera)


def _occlusion_scene(rng: np.random.Generator, seconds: float, width: float) -> Scene:
    """A foreground panel hides the body in the air; the floor contacts stay visible."""
    scene = _floor_scene(rng, seconds, width, "occlusion")
    x = scene.bodies[0].path(seconds / 2)[0]
    half = rng.uniform(0.15, 0.5)
    return replace(scene, occluder=(x - half, x + half, rng.uniform(0.4, 0.9)))


def _distractor_scene(rng: np.random.Generator, seconds: float, width: float) -> Scene:
    scene = _floor_scene(rng, seconds, width, "distractor")
    movers = tuple(_distractor(rng, width) for _ in range(int(rng.integers(1, 3))))
    return replace(scene, bodies=scene.bodies + movers)


def _throw_scene(rng: np.random.Generator, seconds: float, width: float) -> Scene:
    walls = (rng.uniform(0.1, 0.5), width - rng.uniform(0.1, 0.5))
    return Scene("throw", width, (_thrown(rng, seconds, _material(rng), _radius(rng), walls),), walls=walls)


def _collide_scene(rng: np.random.Generator, seconds: float, width: float) -> Scene:
    return Scene("collide", width, _colliding(rng, seconds, width))


def _stack_scene(rng: np.random.Generator, seconds: float, width: float) -> Scene:
    """A body dropped onto a box or a ball lying on the floor: contacts between objects, above the floor."""
    below, x = rng.uniform(0.12, 0.26), rng.uniform(0.5, width - 0.5)
    resting = replace(_resting(rng, x, below), shape="square" if rng.random() < 0.6 else "disc")
    body = _drop(rng, seconds, _material(rng), rng.uniform(0.06, below), (x - 0.03, x + 0.03), base=2 * below)
    return Scene("stack", width, (resting, body))


SCENE_KINDS: dict[str, Callable[[np.random.Generator, float, float], Scene]] = {
    "drop": _drop_scene,
    "floor": _plain_floor_scene,
    "multi": _multi_scene,
    "wall": _wall_scene,
    "pan": _pan_scene,
    "shake": _shake_scene,
    "occlusion": _occlusion_scene,
    "distractor": _distractor_scene,
    "throw": _throw_scene,  # new kinds go last: a kind's place seeds its clips
    "collide": _collide_scene,
    "stack": _stack_scene,
}
assert set(SCENE_KINDS) == set(get_args(SceneKind))


# -- looks: backgrounds, lighting, frame rate -------------------------------------------------------------------

def load_backgrounds(folder: Path, per_video: int = 6, size: int = 192) -> list[tuple[str, np.ndarray]]:
    """Frames of real footage (every video in `folder`, `per_video` spread over each), as backgrounds."""
    from engine.training.dataset import VIDEO_SUFFIXES
    from engine.video import decode_frames, probe_video

    frames = []
    for video in sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in VIDEO_SUFFIXES):
        try:
            duration = probe_video(video).duration
            rate = max(1, math.ceil(per_video / max(float(duration), 0.1)))
            picked = decode_frames(video, Fraction(0), duration, rate=rate, size=size).rgb
        except Exception as error:  # a folder of user footage may hold files we cannot read: skip them
            logger.warning("background %s skipped: %s", video.name, error)
            continue
        step = max(1, len(picked) // per_video)
        frames += [(f"{video.name}#{i}", picked[i].astype(np.float32)) for i in range(0, len(picked), step)][:per_video]
    if not frames:
        raise ValueError(f"--backgrounds {folder} holds no readable videos; give a folder of video files.")
    return frames


def _texture(rng: np.random.Generator, shape: tuple[int, int]) -> tuple[str, np.ndarray]:
    """A procedural background: flat, gradient, noise at some scale, stripes or checks."""
    h, w = shape
    base, other = rng.integers(10, 200, 3).astype(np.float32), rng.integers(10, 200, 3).astype(np.float32)
    yy, xx = np.mgrid[:h, :w] / max(h, w)
    style = ["flat", "gradient", "noise", "stripes", "checks"][int(rng.integers(5))]
    if style == "flat":
        mix = np.zeros((h, w))
    elif style == "gradient":
        angle = rng.uniform(0, 2 * np.pi)
        mix = np.clip(0.5 + (np.cos(angle) * xx + np.sin(angle) * yy - 0.5), 0, 1)
    elif style == "noise":
        cells = int(rng.integers(3, 24))
        coarse = rng.random((cells, cells))
        mix = coarse[(yy * (cells - 1)).round().astype(int), (xx * (cells - 1)).round().astype(int)]
    else:
        period = rng.uniform(0.05, 0.3)
        stripes = np.floor(xx / period) + (np.floor(yy / period) if style == "checks" else 0)
        mix = stripes % 2
    contrast = rng.uniform(0.05, 0.6)
    return style, base + contrast * mix[..., None] * (other - base)


def _look(rng: np.random.Generator, margin: float, backgrounds: Sequence[tuple[str, np.ndarray]] | None,
          randomise: bool) -> Look:
    height = 96
    aspect = float(rng.choice([1.0, 4 / 3, 16 / 9])) if randomise else 1.0
    pad = int(round(margin * height))
    shape = (height + 2 * pad, 2 * round(height * aspect / 2) + 2 * pad)
    if not randomise:  # the classic scene: a dark textured wall, 25 fps, no lighting change
        texture = rng.integers(20, 90, 3) + rng.integers(-12, 12, (*shape, 1))
        floor_colour = rng.integers(40, 110, 3).astype(np.float32)
        return Look(Fraction(MODEL_FPS), height, aspect, texture.astype(np.float32), floor_colour, 0.85, np.ones(3), 0.0, 3.0,
                    "texture")
    if backgrounds and rng.random() < 0.5:
        source, image = backgrounds[int(rng.integers(len(backgrounds)))]
        background = _resized(image, shape)
    else:
        source, background = _texture(rng, shape)
    floor_colour = rng.integers(20, 230, 3).astype(np.float32)
    return Look(FRAME_RATES[int(rng.integers(len(FRAME_RATES)))], height, aspect, background, floor_colour,
                rng.uniform(0.72, 0.92), rng.uniform(0.6, 1.3, 3), rng.uniform(0, 0.15) * (rng.random() < 0.3),
                rng.uniform(0.5, 5.0), source)


def _resized(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    from PIL import Image

    picture = Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).resize((shape[1], shape[0]))
    return np.asarray(picture, np.float32)


# -- rendering --------------------------------------------------------------------------------------------------

def _body_mask(body: Body, cx: float, cy: float, r: float, yy: np.ndarray, xx: np.ndarray) -> np.ndarray:
    if body.shape == "square":
        return (np.abs(xx - cx) <= r) & (np.abs(yy - cy) <= r)
    if body.shape == "diamond":
        return np.abs(xx - cx) + np.abs(yy - cy) <= 1.3 * r
    return (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r


def _render(scene: Scene, look: Look, seconds: float, rng: np.random.Generator) -> np.ndarray:
    """Every frame at the look's rate: background, floor (lit at floor impacts), walls, bodies, occluder, then the
    camera crop, lighting and noise."""
    h, w = look.height, look.width
    pad = (look.background.shape[0] - h) // 2
    scale = h / SCENE_METRES  # pixels per metre
    floor = pad + look.floor_row * h
    yy, xx = np.mgrid[: look.background.shape[0], : look.background.shape[1]]
    x_offset = pad + (w - scene.width * scale) / 2  # the scene's metres centred in the frame
    flashes = [e.time for e in scene.events if e.kind == "impact"] if scene.flash else []
    count = math.ceil(seconds * look.fps)
    frames = np.empty((count, h, w, 3), np.uint8)
    for index in range(count):
        t = float(index / look.fps)
        canvas = look.background.copy()
        lit = any(0 <= t - hit < 0.07 for hit in flashes)
        canvas[int(floor):] = (200, 200, 90) if lit else look.floor_colour
        for wall in scene.walls:
            left = wall < scene.width / 2
            edge = x_offset + wall * scale
            canvas[(xx < edge) if left else (xx > edge)] = 0.8 * look.floor_colour
        for body in scene.bodies:
            x, y = body.path(t)
            r = body.radius * scale
            canvas[_body_mask(body, x_offset + x * scale, floor - r - y * scale, r, yy, xx)] = body.colour
        if scene.occluder:
            left, right, bottom = scene.occluder
            canvas[: int(floor - bottom * scale), int(x_offset + left * scale): int(x_offset + right * scale)] = 0.5 * (
                look.gain * 120)
        dx, dy = scene.camera(t) if scene.camera else (0.0, 0.0)
        top, side = int(round(pad + dy * h)), int(round(pad + dx * h))
        top, side = min(max(top, 0), 2 * pad), min(max(side, 0), 2 * pad)
        picture = canvas[top: top + h, side: side + w] * look.gain * (1 + look.flicker * math.sin(2.1 * t))
        picture = picture + rng.normal(0, look.noise, picture.shape)
        frames[index] = np.clip(picture, 0, 255).astype(np.uint8)
    return frames


# -- sound ------------------------------------------------------------------------------------------------------

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


def _sound(scene: Scene, seconds: float, rng: np.random.Generator) -> np.ndarray:
    """Ambience, then each sounding body's impacts and slides at their exact times."""
    audio = rng.uniform(0.005, 0.015) * _band_noise(int(seconds * SAMPLE_RATE), (50, 3000), rng)
    for body in scene.bodies:
        for event in body.events:
            first = int(event.time * SAMPLE_RATE)
            if event.kind == "impact":
                sound = _impact(body.material, event.strength, body.radius / 0.18, rng)
            else:  # friction: level follows the decaying sliding speed
                length = int(event.duration * SAMPLE_RATE)
                envelope = np.exp(-np.arange(length) / SAMPLE_RATE / 0.6) * event.strength
                sound = 0.3 * envelope * _band_noise(length, MATERIALS[body.material][3], rng)
            end = min(len(audio), first + len(sound))
            audio[first:end] += sound[: end - first]
    return (0.8 * audio / max(1.0, np.abs(audio).max())).astype(np.float32)


# -- clips and sets ---------------------------------------------------------------------------------------------

def make_clip(seed: int, seconds: float = 4.0, fps: int | None = None, size: int = 96, kind: SceneKind = "drop",
              backgrounds: Sequence[tuple[str, np.ndarray]] | None = None) -> Clip:
    """One deterministic clip of `kind`: pictures, sound and labels from `seed` (and the backgrounds given).
    `fps` forces the frame rate (default: 25 for "drop", 23.976-30 for the randomised kinds)."""
    if kind not in SCENE_KINDS:
        raise ValueError(f"kind={kind!r} is not a scene kind; choose from {', '.join(SCENE_KINDS)}.")
    rng = np.random.default_rng([seed, list(SCENE_KINDS).index(kind)])
    randomise = kind != "drop"
    look = _look(rng, 0.15 if kind in ("pan", "shake") else 0.0, backgrounds, randomise)
    if fps is not None:
        look = replace(look, fps=Fraction(fps))
    scene = SCENE_KINDS[kind](rng, seconds, SCENE_METRES * look.aspect)
    frames = _render(scene, look, seconds, rng)
    if size != look.height:
        frames = _scaled(frames, size / look.height)
    sounding = [b for b in scene.bodies if b.events] or list(scene.bodies)
    return Clip(seed, sounding[0].material, look.fps, frames, _sound(scene, seconds, rng), scene.events, kind,
                look.source)


def _scaled(frames: np.ndarray, factor: float) -> np.ndarray:
    from PIL import Image

    h, w = (2 * round(n * factor / 2) for n in frames.shape[1:3])
    return np.stack([np.asarray(Image.fromarray(f).resize((w, h))) for f in frames])


def write_clip(clip: Clip, folder: Path) -> Path:
    """`<seed>.mp4`, `<seed>.wav` and `<seed>.json` (labels) in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    stem = folder / f"{clip.seed:07d}"
    write_video(stem.with_suffix(".mp4"), clip.frames, [Fraction(i) / clip.fps for i in range(len(clip.frames))],
                clip.fps)
    soundfile.write(stem.with_suffix(".wav"), clip.audio, SAMPLE_RATE, subtype="PCM_16")
    labels = {"format": "FoleyLabels.1", "seed": clip.seed, "kind": clip.kind, "material": clip.material,
              "fps": MODEL_FPS, "render_fps": str(clip.fps), "background": clip.background,
              "sample_rate": SAMPLE_RATE, "events": [asdict(e) for e in clip.events]}
    stem.with_suffix(".json").write_text(json.dumps(labels, indent=1))
    return stem.with_suffix(".mp4")


def seeds_for(split: str, count: int) -> range:
    """Training seeds count up from 0; held-out seeds from HELD_OUT_SEEDS, so the splits never meet."""
    return range(count) if split == "train" else range(HELD_OUT_SEEDS, HELD_OUT_SEEDS + count)


def kinds_for(split: str, kinds: Sequence[str] | None = None) -> tuple[str, ...]:
    """The scene kinds of a split: training never draws the held-out kinds; held-out draws every kind."""
    chosen = tuple(kinds) if kinds else tuple(SCENE_KINDS)
    unknown = [k for k in chosen if k not in SCENE_KINDS]
    if unknown:
        raise ValueError(f"unknown scene kind(s) {', '.join(unknown)}; choose from {', '.join(SCENE_KINDS)}.")
    if split == "train":
        held = [k for k in chosen if k in HELD_OUT_KINDS]
        if held and kinds:
            raise ValueError(f"--kinds {','.join(held)} are held-out scene kinds (HELD_OUT_KINDS) and never go in "
                             "the training split, so that they measure sync on scenes the model never saw.")
        chosen = tuple(k for k in chosen if k not in HELD_OUT_KINDS)
    return chosen


def plan(split: str, count: int, kinds: Sequence[str] | None = None) -> list[tuple[int, str]]:
    """(seed, kind) of every clip of a set: the kinds in turn over the split's seeds."""
    chosen = kinds_for(split, kinds)
    return [(seed, chosen[number % len(chosen)]) for number, seed in enumerate(seeds_for(split, count))]
