"""Installed models: where they live, how they are listed, removed and loaded; the embedded default."""

import copy
import json
import logging
import os
import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from types import ModuleType

import platformdirs
import torch
from safetensors.torch import load_file

from engine.errors import CheckpointError, ModelNotInstalledError
from engine.mmaudio import pipeline as mmaudio_pipeline
from engine.mmaudio.config import MMAudioConfig
from engine.mmaudio.stages import Stages as MMAudioStages
from engine.vta_ldm import pipeline as vta_ldm_pipeline
from engine.vta_ldm.config import ModelConfig
from engine.vta_ldm.stages import Stages

logger = logging.getLogger(__name__)

EMBEDDED = "builtin"
# the project's own starter model, trained by `foley train` on `foley synth` scenes, shipped inside the package
EMBEDDED_DIR = Path(__file__).parent / "starter"


# A model family is a module of the same names over its own config and stages (`engine/*/pipeline.py`): TAKES_TEXT,
# SAMPLING_PRESETS, config_of(manifest), build_modules(config), rebuild_unsaved_buffers(stages, config),
# export_encoder(stages, path, precision) and use_onnx_encoder(stages, path) for its picture encoders,
# frame_source(spans, start, end, config), timesteps(config, sampling), check_frames(frames, config) and
# generate_window(...), the steps `engine.core.generate` runs for each window. A manifest names its family; models
# without one are VTA-LDM.
FAMILIES: dict[str, ModuleType] = {"vta-ldm": vta_ldm_pipeline, "mmaudio": mmaudio_pipeline}
DEFAULT_FAMILY = "vta-ldm"


@dataclass(frozen=True)
class Components:
    """A loaded model: its family, config and stages, and the facts a sidecar reports."""

    name: str
    config: ModelConfig | MMAudioConfig
    stages: Stages | MMAudioStages
    scale_factor: float  # VTA-LDM's latent scale (1 for a family without one)
    licences: tuple[dict, ...]
    trained: bool
    device: str = "cpu"
    family: str = DEFAULT_FAMILY


def family_of(components: Components) -> ModuleType:
    """The family module whose steps generate with `components`."""
    return FAMILIES[components.family]


def family_name(manifest: dict) -> str:
    family = manifest.get("family", DEFAULT_FAMILY)
    if family not in FAMILIES:
        raise CheckpointError(f"Model '{manifest.get('name')}' is of family '{family}', which this version of Foley "
                              f"Desk does not run ({', '.join(FAMILIES)}). Update Foley Desk.")
    return family


def model_family(name: str) -> ModuleType:
    """The family module of an installed model or of the built-in one, read from its manifest."""
    return FAMILIES[family_name(model_manifest(name))]


def models_dir() -> Path:
    """The user's model directory (`FOLEY_HOME/models` when that variable is set)."""
    home = os.environ.get("FOLEY_HOME")
    base = Path(home) if home else Path(platformdirs.user_data_dir("foley-desk"))
    return base / "models"


def read_manifest(folder: Path) -> dict:
    try:
        return json.loads((folder / "manifest.json").read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{folder} is not a valid installed model ({exc}). Remove it and import again.") from None


def list_models() -> list[dict]:
    """Manifests of the installed models, by name."""
    root = models_dir()
    if not root.is_dir():
        return []
    return [read_manifest(folder) for folder in sorted(root.iterdir()) if (folder / "manifest.json").is_file()]


def remove_model(name: str) -> None:
    folder = models_dir() / name
    if not (folder / "manifest.json").is_file():
        raise ModelNotInstalledError(f"No installed model named '{name}'. `foley models list` shows what is there.")
    shutil.rmtree(folder)


def installed_manifest(name: str) -> dict:
    """The manifest of installed model `name`, or a clear error naming how to install it."""
    folder = models_dir() / name
    if not (folder / "manifest.json").is_file():
        raise ModelNotInstalledError(
            f"Model '{name}' is not installed. Run `foley models pull vta-ldm` to download the published model, "
            "or `foley models import FOLDER` for a snapshot you downloaded; `foley models list` shows what is "
            "installed."
        )
    return read_manifest(folder)


def model_folder(name: str) -> Path:
    return EMBEDDED_DIR if name == EMBEDDED else models_dir() / name


def model_manifest(name: str) -> dict:
    """The manifest of an installed model or of the built-in one."""
    return read_manifest(EMBEDDED_DIR) if name == EMBEDDED else installed_manifest(name)


def model_config(name: str) -> ModelConfig | MMAudioConfig:
    """The config of a model, read from its manifest without loading weights."""
    manifest = model_manifest(name)
    return FAMILIES[family_name(manifest)].config_of(manifest)


def load_model(name: str, encoder: Path | None = None) -> Components:
    """Load an installed model with a strict key check, or the embedded default for `builtin`; with `encoder`,
    its picture encoders run from that ONNX export (`foley models export-encoder`) on onnxruntime."""
    components = _load(name)
    if encoder is not None:
        if not encoder.is_file():
            raise ModelNotInstalledError(f"No ONNX encoder at {encoder}; make one with `foley models export-encoder`.")
        family_of(components).use_onnx_encoder(components.stages, encoder)
    return components


def _load(name: str) -> Components:
    manifest = model_manifest(name)
    folder = model_folder(name)
    family = FAMILIES[family_name(manifest)]
    config = family.config_of(manifest)
    try:
        tensors = load_file(str(folder / "weights.safetensors"))
    except Exception as exc:  # safetensors raises its own error types for damaged files
        raise CheckpointError(f"{folder / 'weights.safetensors'} is damaged ({exc}). Import the model again.") from None
    # built on the meta device and given the loaded tensors as they are: no random init, one copy in memory
    with torch.device("meta"):
        stages = family.build_modules(config)
    for part, module in stages.parts().items():
        prefix = part + "."
        weights = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
        module.load_state_dict(weights, strict=True, assign=True)
    family.rebuild_unsaved_buffers(stages, config)
    for part, module in stages.parts().items():
        left = [n for n, t in (*module.named_parameters(), *module.named_buffers()) if t.is_meta]
        assert not left, f"{part} kept tensors on the meta device: {left[:3]}"
    return Components(name, config, stages, manifest.get("scale_factor", 1.0), tuple(manifest["licences"]),
                      manifest["trained"], family=family_name(manifest))


def embedded_default() -> Components:
    """The model that ships with the engine: the starter model trained on synthetic foley scenes."""
    return load_model(EMBEDDED)


PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_device(device: str) -> str:
    """'auto' picks CUDA, then Apple's MPS, then the CPU; a device this torch cannot use is refused."""
    kind = device.split(":")[0]
    if kind not in ("auto", "cuda", "mps", "cpu"):
        raise ValueError(f"device '{device}' is unknown; use auto, cuda (or cuda:N), mps or cpu.")
    if kind == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device '{device}': this torch ({torch.__version__}) sees no CUDA GPU; use --device cpu "
                         "(or auto), or install a CUDA build of torch on a machine with an NVIDIA GPU.")
    if kind == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device '{device}': Apple's MPS is not available here; use --device cpu (or auto).")
    if device != "auto":
        return device
    if torch.cuda.is_available():
        return "cuda"
    return "mps" if torch.backends.mps.is_available() else "cpu"


def place(components: Components, device: str = "auto", precision: str = "auto") -> Components:
    """Move the torch modules to `device` and set the UNet's weight precision: 'auto' is fp16 on GPUs and fp32
    on CPUs (bf16 on a CPU is only faster on CPUs with bf16 units: measure with bench/speed.py). A converted
    UNet is a copy, so the caller's modules keep their precision."""
    device = resolve_device(device)
    if precision == "auto":
        precision = "fp32" if device == "cpu" else "fp16"
    if precision not in PRECISIONS:
        raise ValueError(f"precision '{precision}' is not one of {', '.join(PRECISIONS)} (or auto).")
    if precision == "fp16" and device == "cpu":
        raise ValueError("fp16 runs on GPUs; on a CPU use --precision bf16 or fp32.")
    stages = replace(components.stages)
    for name in family_of(components).PRECISION_PARTS:  # converted modules are copies
        module = getattr(stages, name)
        if next(module.parameters()).dtype != PRECISIONS[precision]:
            setattr(stages, name, copy.deepcopy(module).to(PRECISIONS[precision]))
    for module in stages.parts().values():
        module.to(device)
    return replace(components, stages=stages, device=device)


def best_installed() -> str:
    """The model `foley demo` uses: the published model if installed, else any installed, else the built-in."""
    names = [manifest["name"] for manifest in list_models()]
    for preferred in ("vta-ldm-clip4clip-v-large",):
        if preferred in names:
            return preferred
    return names[0] if names else EMBEDDED
