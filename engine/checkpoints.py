"""Checkpoint files, the same for every model family: loading torch files without running pickled code, the strict
key and shape check that names what is wrong, and installing a converted model atomically."""

import json
import pickle
import shutil
import tempfile
import zipfile
from collections.abc import Mapping
from pathlib import Path

import torch
from safetensors.torch import save_file
from torch import nn

from engine.errors import CheckpointError

MANIFEST_FORMAT = "FoleyModel.1"

# Module-name prefixes of the non-tensor objects a Lightning training checkpoint pickles (callbacks,
# hyper-parameters, numpy scalars). They are rebuilt as `_Inert` placeholders: no code of theirs runs.
INERT_PREFIXES = (
    "pytorch_lightning.",
    "lightning.",
    "lightning_fabric.",
    "omegaconf.",
    "argparse.Namespace",
    "numpy.",
    "copyreg._reconstructor",
    "collections.defaultdict",
    "typing.",
)

class _Inert:
    """Placeholder for a pickled non-tensor object: keeps its arguments and state as data, runs nothing."""

    def __init__(self, *args, **kwargs):
        self.args = args

    def __setstate__(self, state):
        self.state = state


# what unpickling a damaged or foreign file can raise besides UnpicklingError
CORRUPT_ERRORS = (RuntimeError, EOFError, OSError, ValueError, IndexError, KeyError, TypeError)


def _corrupt(path: Path, exc: Exception) -> CheckpointError:
    return CheckpointError(f"{path.name} is truncated or corrupt ({exc}). Delete it and download it again.")


def _unsafe_globals(path: Path, exc: Exception) -> list[str]:
    """Names of the non-tensor globals a checkpoint would unpickle; a file with none is simply corrupt."""
    try:
        needed = torch.serialization.get_unsafe_globals_in_checkpoint(str(path))
    except CORRUPT_ERRORS as inner:
        raise _corrupt(path, inner) from None
    if not needed:
        raise _corrupt(path, exc)
    return needed


def load_state(path: Path) -> dict:
    """Load a torch checkpoint without executing pickled code; Lightning extras become placeholders."""
    mmap = zipfile.is_zipfile(path)  # memory-map the zip format (all checkpoints since torch 1.6)
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as exc:
        needed = _unsafe_globals(path, exc)
    except CORRUPT_ERRORS as exc:
        raise _corrupt(path, exc) from None
    foreign = [name for name in needed if not name.startswith(INERT_PREFIXES)]
    if foreign:
        raise CheckpointError(
            f"{path.name} asks to run code from {', '.join(sorted(foreign))} while loading; Foley Desk refuses "
            "to unpickle it. Use the files from the official snapshot."
        )
    with torch.serialization.safe_globals([(_Inert, name) for name in needed]):
        return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)


def _shape(value) -> tuple[int, ...] | str:
    return tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__


def state_problems(module: nn.Module, state: Mapping[str, torch.Tensor]) -> list[str]:
    """'missing: ...', 'unexpected: ...', 'wrong shape: key (file) != (model)' lines; none when `state` fits."""
    expected = {key: tuple(value.shape) for key, value in module.state_dict().items()}
    missing = sorted(expected.keys() - state.keys())
    unexpected = sorted(state.keys() - expected.keys())
    wrong = [f"{key} {_shape(state[key])} != {expected[key]}" for key in sorted(expected.keys() & state.keys())
             if _shape(state[key]) != expected[key]]
    lines = []
    for title, names in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong)):
        if names:
            shown = ", ".join(names[:8]) + (f", ... ({len(names)} in all)" if len(names) > 8 else "")
            lines.append(f"  {title}: {shown}")
    return lines


def check_state(module: nn.Module, state: Mapping[str, torch.Tensor], problem: str, advice: str) -> None:
    """Raise one CheckpointError, `problem` then every missing, unexpected and mis-shaped tensor then `advice`,
    unless `state` has exactly the module's keys and shapes."""
    lines = state_problems(module, state)
    if lines:
        raise CheckpointError("\n".join([problem, *lines, advice]))


def write_model(models_dir: Path, name: str, tensors: dict[str, torch.Tensor], manifest: dict,
                extra: dict[str, dict[str, torch.Tensor]] | None = None) -> Path:
    """Install `models_dir/<name>` (weights.safetensors, manifest.json and any `extra` safetensors files)
    atomically: a model being replaced stays whole until the new one is in place."""
    models_dir.mkdir(parents=True, exist_ok=True)
    target = models_dir / name
    staging = Path(tempfile.mkdtemp(prefix=f".import-{name}-", dir=models_dir))
    previous = models_dir / f".replaced-{name}"
    try:
        save_file(tensors, str(staging / "weights.safetensors"))
        for file_name, extra_tensors in (extra or {}).items():
            save_file(extra_tensors, str(staging / file_name))
        (staging / "manifest.json").write_text(json.dumps(manifest, indent=2))
        if target.exists():
            target.rename(previous)
        staging.rename(target)
        shutil.rmtree(previous, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if previous.exists() and not target.exists():
            previous.rename(target)
    return target


