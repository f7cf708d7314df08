"""Output: variants as 16-bit WAV files with JSON sidecars, written atomically (all or nothing).

The level is an output step: each file gets the gain `engine.core.levels.variant_level` chose (recorded in the
sidecar), while the generation's own arrays stay as the model made them.
"""

import json
import os
import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path, PurePath

import numpy as np
import soundfile

from engine import __version__
from engine.core.generate import Generation
from engine.core.levels import LevelMode, apply_gain, variant_level
from engine.metrics import sync_score
from engine.models import Components

SIDECAR_FORMAT = "FoleySidecar.1"


@dataclass(frozen=True)
class Layer:
    """One of several prompts generated for the same range: summed with the others in a mix, never an alternate."""

    number: int
    of: int
    prompt: str

    @property
    def slug(self) -> str:
        words = re.sub(r"[^a-z0-9]+", "-", self.prompt.lower()).strip("-")[:24].strip("-")
        return f"L{self.number}" + (f"-{words}" if words else "")


def to_pcm16(audio: np.ndarray) -> np.ndarray:
    """Float [-1, 1] -> int16 with clipping (the reference's plain cast wraps a full-scale 1.0 to -32768)."""
    return np.round(np.clip(audio, -1.0, 1.0) * 32767.0).astype(np.int16)


def sidecar(generation: Generation, components: Components, source: str, seed: int, level: dict,
            sync: float, layer: Layer | None = None) -> dict:
    """Everything needed to reproduce or credit one variant, the gain its file was written with and its sync score
    (`engine.metrics.sync_score`)."""
    return {
        "format": SIDECAR_FORMAT,
        "model": {"name": components.name, "family": components.family, "preset": components.config.name,
                  "trained": components.trained},
        "licences": list(components.licences),
        "runtime": {"device": components.device, "precision": components.precision, "encoder": components.encoder},
        "sampler": generation.sampling.sampler,
        "spacing": generation.sampling.spacing,
        "steps": generation.sampling.steps,
        "guidance": generation.sampling.guidance,
        "seed": seed,
        "prompt": generation.prompt.text,
        "negative_prompt": generation.prompt.negative,
        **({"layer": {"number": layer.number, "of": layer.of, "prompt": layer.prompt}} if layer else {}),
        "sync_score": round(sync, 4),
        "source": {
            "path": source,
            "start": str(generation.start),
            "end": str(generation.end),
            "start_seconds": float(generation.start),
            "end_seconds": float(generation.end),
            "frame_times": [str(t) for t in generation.frame_times],
        },
        "window_joins": [str(t) for t in generation.joins],
        "sample_rate": generation.sample_rate,
        "samples": int(generation.variants[0].audio.shape[0]),
        "level": level,
        "engine_version": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def write_variants(generation: Generation, components: Components, source: str, out_dir: Path,
                   level: LevelMode = "normalised", layer: Layer | None = None) -> list[Path]:
    """Write `<source>_<start>-<end>[_L<k>-<prompt>]_v<N>_seed<S>.wav` + `.json` per variant; on any failure,
    write nothing.

    `source` is the path of the media the frames came from, as the user knows it (recorded in the sidecar);
    `level` "normalised" writes each variant at the documented level, "raw" as the model made it.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    name_part = PurePath(source).stem or "foley"
    stem = f"{name_part}_{float(generation.start):.3f}-{float(generation.end):.3f}"
    stem += f"_{layer.slug}" if layer else ""
    staged: list[tuple[Path, Path]] = []
    try:
        for number, variant in enumerate(generation.variants, start=1):
            name = f"{stem}_v{number}_seed{variant.seed}"
            wav_tmp = out_dir / f".{name}.wav.part"
            staged.append((wav_tmp, out_dir / f"{name}.wav"))
            gain = variant_level(variant.audio, generation.sample_rate, level)
            audio = apply_gain(variant.audio, gain.gain_db) if gain.gain_db else variant.audio
            pcm = to_pcm16(audio)
            soundfile.write(wav_tmp, pcm, generation.sample_rate, subtype="PCM_16", format="WAV")
            # scored as written (read back as x / 32768), so `foley eval` of the file gives the same score
            sync = sync_score(generation.motion, components.config.frame_rate, pcm / 32768.0, generation.sample_rate)
            json_tmp = out_dir / f".{name}.json.part"
            staged.append((json_tmp, out_dir / f"{name}.json"))
            record = sidecar(generation, components, source, variant.seed, asdict(gain), sync, layer)
            json_tmp.write_text(json.dumps(record, indent=2))
        for tmp, final in staged:
            os.replace(tmp, final)
    finally:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)
    return [final for _, final in staged if final.suffix == ".wav"]
