"""Installed models: where they live, how they are listed, removed and loaded; the embedded default."""

import copy
import json
import logging
import os
import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from types import ModuleType
from typing import Literal

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
# export_encoder(stages, path, precision) and use_onnx_encoder(stages, path) -> provider for its picture encoders,
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
    precision: str = "fp32"  # of the family's PRECISION_PARTS (`place`)
    encoder: str = "torch"  # the picture encoders: torch, or which ONNX export on which onnxruntime provider


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


def load_model(name: str, encoder: Path | None = None, precision: str = "fp32") -> Components:
    """Load an installed model with a strict key check, or the embedded default for `builtin`; the family's
    PRECISION_PARTS converted to `precision` as they load; with `encoder`, its picture encoders run from that ONNX
    export (`foley models export-encoder`) on onnxruntime."""
    components = _load(name, precision)
    if encoder is None:
        return components
    if not encoder.is_file():
        raise ModelNotInstalledError(f"No ONNX encoder at {encoder}; make one with `foley models export-encoder`.")
    provider = family_of(components).use_onnx_encoder(components.stages, encoder)
    return replace(components, encoder=f"onnx {encoder.name} on {provider}")


def _load(name: str, precision: str) -> Components:
    manifest = model_manifest(name)
    folder = model_folder(name)
    family = FAMILIES[family_name(manifest)]
    config = family.config_of(manifest)
    # built on the meta device and given the loaded tensors as they are: no random init, one copy in memory
    with torch.device("meta"):
        stages = family.build_modules(config)
    dtype = PRECISIONS[precision]
    converted = family.PRECISION_PARTS if dtype != torch.float32 else ()
    for part, module in stages.parts().items():
        weights = _part_weights(folder / "weights.safetensors", part, dtype if part in converted else None)
        module.load_state_dict(weights, strict=True, assign=True)
    family.rebuild_unsaved_buffers(stages, config)
    for part in converted:  # buffers computed after loading (MMAudio's rotary tables) follow, as `place` does
        module = getattr(stages, part)
        if any(t.is_floating_point() and t.dtype != dtype for t in module.buffers()):
            module.to(dtype)
    for part, module in stages.parts().items():
        left = [n for n, t in (*module.named_parameters(), *module.named_buffers()) if t.is_meta]
        assert not left, f"{part} kept tensors on the meta device: {left[:3]}"
    return Components(name, config, stages, manifest.get("scale_factor", 1.0), tuple(manifest["licences"]),
                      manifest["trained"], family=family_name(manifest), precision=precision)


def _part_weights(path: Path, part: str, dtype: torch.dtype | None) -> dict[str, torch.Tensor]:
    """The tensors of `part` in a model file, converted to `dtype` when given. safetensors maps the file and only
    what is read becomes resident; each call maps it anew, so the fp32 pages a converted part was read from leave
    memory with its mapping instead of staying beside the converted copy (bench/load.py)."""
    try:
        tensors = load_file(str(path))
    except Exception as exc:  # safetensors raises its own error types for damaged files
        raise CheckpointError(f"{path} is damaged ({exc}). Import the model again.") from None
    prefix = part + "."
    weights = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
    if dtype is None:
        return weights
    return {k: v.to(dtype) if v.is_floating_point() else v for k, v in weights.items()}


def open_model(name: str, device: str = "auto", precision: str = "auto",
               encoder: Path | Literal["torch"] | None = None) -> Components:
    """`name` ready to generate on `device`, as `foley generate` and the engine load it: the precision parts
    converted while they load ('auto': `resolve_precision`), the picture encoders from `encoder`, else from the
    model's own ONNX export for the device (`default_encoder`) when one was made, or in torch ('torch')."""
    device = resolve_device(device)
    precision = resolve_precision(precision, device)
    if encoder is None:
        encoder = default_encoder(name, device)
    components = load_model(name, None if encoder == "torch" else encoder, precision)
    components = place(components, device, precision)
    logger.info("model %s runs on %s", name, describe_runtime(components))
    return components


def encoder_export(name: str, precision: str) -> Path:
    """Where `foley models export-encoder NAME --precision P` writes by default: `onnx/pictures-P.onnx` in the
    model's folder (the built-in model's in `models/builtin/`, as its own folder is inside the package)."""
    return models_dir() / name / "onnx" / f"pictures-{precision}.onnx"


def default_encoder(name: str, device: str) -> Path | None:
    """The model's own ONNX export for `device`, if made: int8 on CPUs (dynamic quantisation is the CPU's
    speed-up: 4x on CLIP ViT-L here), fp16 on GPUs (TensorRT, CUDA)."""
    path = encoder_export(name, "int8" if device == "cpu" else "fp16")
    return path if path.is_file() else None


def describe_runtime(components: Components) -> str:
    """Device, precision and picture encoder in one line, as the CLI shows them."""
    return f"{components.device}, {components.precision}, picture encoder {components.encoder}"


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


def cpu_has_bf16_units(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """Whether this CPU computes bf16 in hardware (x86 AVX512-BF16 or AMX-BF16, from /proc/cpuinfo's flags on
    Linux). Elsewhere bf16 is emulated and slower than fp32 (torch.backends.cpu.get_cpu_capability() says AVX512,
    not whether the BF16 extension is there)."""
    try:
        lines = cpuinfo.read_text().splitlines()
    except OSError:
        return False
    flags = {flag for line in lines if line.startswith("flags") for flag in line.split(":", 1)[-1].split()}
    return bool(flags & {"avx512_bf16", "amx_bf16"})


def resolve_precision(precision: str, device: str) -> str:
    """'auto' is fp16 on GPUs, bf16 on CPUs with bf16 units (3.6x the fp32 UNet step on this machine's AMX,
    bench/speed.py), fp32 on other CPUs; a precision the device cannot run is refused."""
    if precision == "auto":
        if device != "cpu":
            return "fp16"
        return "bf16" if cpu_has_bf16_units() else "fp32"
    if precision not in PRECISIONS:
        raise ValueError(f"precision '{precision}' is not one of {', '.join(PRECISIONS)} (or auto).")
    if precision == "fp16" and device == "cpu":
        raise ValueError("fp16 runs on GPUs; on a CPU use --precision bf16 or fp32.")
    return precision


def place(components: Components, device: str = "auto", precision: str = "auto") -> Components:
    """Move the torch modules to `device` and set the precision parts' weights (`resolve_precision`). A converted
    module is a copy, so the caller's modules keep their precision (`open_model` converts while loading instead)."""
    device = resolve_device(device)
    precision = resolve_precision(precision, device)
    stages = replace(components.stages)
    for name in family_of(components).PRECISION_PARTS:  # converted modules are copies
        module = getattr(stages, name)
        if next(module.parameters()).dtype != PRECISIONS[precision]:
            setattr(stages, name, copy.deepcopy(module).to(PRECISIONS[precision]))
    for module in stages.parts().values():
        module.to(device)
    return replace(components, stages=stages, device=device, precision=precision)


def best_installed() -> str:
    """The model `foley demo` uses: the published model if installed, else any installed, else the built-in."""
    names = [manifest["name"] for manifest in list_models()]
    for preferred in ("vta-ldm-clip4clip-v-large",):
        if preferred in names:
            return preferred
    return names[0] if names else EMBEDDED
