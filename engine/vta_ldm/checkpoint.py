"""Checkpoint import: a published VTA-LDM snapshot folder -> a strict-checked safetensors model directory.

Accepts the Hugging Face folder as published (`pytorch_model_2.bin` for UNet + CLIP vision + projection;
`audioldm-s-full.ckpt` and/or `pytorch_model.bin` for the AudioLDM VAE and vocoder; `summary.jsonl` for the
training arguments). Nothing is unpickled with code execution: plain state dicts load with
`weights_only=True`; a Lightning checkpoint's non-tensor entries are replaced by inert placeholders.
"""

import hashlib
import json
import logging
import time
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from torch import nn

from engine import __version__
from engine.checkpoints import MANIFEST_FORMAT, check_state, load_state, write_model
from engine.errors import CheckpointError
from engine.vta_ldm.config import PRESETS, UNET_CONFIG_FILES, ModelConfig
from engine.vta_ldm.stages import build_modules
from engine.vta_ldm.vae import ENCODER_FILE, VAEEncoder

logger = logging.getLogger(__name__)

HUB_REPO = "ariesssxu/vta-ldm-clip4clip-v-large"
HUB_FILES = ["summary.jsonl", "pytorch_model_2.bin", "audioldm-s-full.ckpt"]

LICENCES = {
    "vta-ldm-clip4clip-v-large": [
        {"component": "VTA-LDM UNet and projection", "licence": "CC-BY-4.0", "source": HUB_REPO},
        {"component": "CLIP ViT-L/14 vision tower", "licence": "MIT (OpenAI CLIP)", "source": HUB_REPO},
        {
            "component": "AudioLDM VAE decoder and HiFi-GAN vocoder",
            "licence": "CC-BY-NC-SA-4.0 (non-commercial, share-alike)",
            "source": "audioldm-s-full",
        },
    ],
    "tiny": [{"component": "all", "licence": "none (test-sized checkpoint)", "source": "local"}],
}

# Buffers older transformers saved with CLIP; newer CLIP modules recompute them.
IGNORABLE_KEYS = {"clip_vision.vision_model.embeddings.position_ids"}


@dataclass(frozen=True)
class Snapshot:
    """The files of a published snapshot folder that the import uses."""

    folder: Path
    main: Path
    lightning: Path | None
    vae_bin: Path | None
    summary: Path | None


def find_snapshot(folder: Path) -> Snapshot:
    """Check that `folder` looks like the published snapshot and name what is missing."""
    if not folder.is_dir():
        raise CheckpointError(f"{folder} is not a folder. Pass the downloaded snapshot folder of {HUB_REPO}.")
    main = folder / "pytorch_model_2.bin"
    lightning = folder / "audioldm-s-full.ckpt"
    vae_bin = folder / "pytorch_model.bin"
    summary = folder / "summary.jsonl"
    if not main.is_file():
        raise CheckpointError(
            f"{folder} has no pytorch_model_2.bin (the UNet + vision encoder). Download the whole snapshot of "
            f"{HUB_REPO}, or run `foley models pull vta-ldm`."
        )
    if not lightning.is_file() and not vae_bin.is_file():
        raise CheckpointError(
            f"{folder} has neither audioldm-s-full.ckpt nor pytorch_model.bin (the AudioLDM VAE and vocoder). "
            "Download one of them into the same folder."
        )
    return Snapshot(
        folder,
        main,
        lightning if lightning.is_file() else None,
        vae_bin if vae_bin.is_file() else None,
        summary if summary.is_file() else None,
    )


def read_training_args(summary: Path | None) -> dict:
    """First line of summary.jsonl: the training arguments the model was built from."""
    if summary is None:
        return {}
    try:
        return json.loads(summary.read_text().splitlines()[0])
    except (IndexError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{summary} is not valid JSON lines ({exc}). Re-download summary.jsonl.") from None


def config_from_training_args(args: dict, preset: str | None) -> ModelConfig:
    """Pick the preset named by the run's UNet config file (or `preset`) and apply the run's switches."""
    if preset is None:
        unet_file = Path(str(args.get("unet_model_config") or "")).name
        preset = UNET_CONFIG_FILES.get(unet_file, "vta-ldm-clip4clip-v-large")
    if preset not in PRESETS:
        raise CheckpointError(f"Unknown model preset '{preset}'. Known presets: {', '.join(PRESETS)}.")
    config = PRESETS[preset]
    embedding_dim = args.get("embedding_dim")
    if embedding_dim is not None and int(embedding_dim) != config.vision.embedding_dim:
        raise CheckpointError(
            f"summary.jsonl says embedding_dim {embedding_dim}, but preset '{preset}' expects "
            f"{config.vision.embedding_dim}. Pass the matching --preset."
        )
    vision = replace(config.vision, frame_pe=bool(args.get("pe")))
    return replace(config, vision=vision)


def _as_state_dict(loaded, path: Path) -> dict[str, torch.Tensor]:
    state = loaded.get("state_dict", loaded) if isinstance(loaded, dict) else None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path.name} is not a state dict of tensors. Is it the right file?")
    return {key.removeprefix("module."): value for key, value in state.items()}


def take_prefix(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {key[len(prefix) :]: value for key, value in state.items() if key.startswith(prefix)}


def check_against(module: nn.Module, state: dict[str, torch.Tensor], part: str, source: str) -> dict:
    """Strict key and shape check (older CLIP buffers aside); the state in the module's dtypes."""
    state = {key: value for key, value in state.items() if key not in IGNORABLE_KEYS}
    check_state(module, state, f"{source}: the {part} weights do not match the model layout.",
                "The file is from another model or is damaged; nothing was installed.")
    expected = module.state_dict()
    return {key: state[key].to(expected[key].dtype) for key in expected}


def ldm_vae_key(key: str, levels: int) -> str | None:
    """Map an LDM/AudioLDM autoencoder key to our VAEDecoder or VAEEncoder (diffusers Decoder/Encoder) key; None
    for keys of neither (losses, the vocoder)."""
    if key.startswith(("post_quant_conv.", "quant_conv.")):
        return key
    side = key.split(".")[0]
    if side not in ("decoder", "encoder"):
        return None
    parts = key.split(".")
    rest = ".".join(parts[1:])
    replacements = {
        "mid.block_1.": "mid_block.resnets.0.",
        "mid.block_2.": "mid_block.resnets.1.",
        "mid.attn_1.norm.": "mid_block.attentions.0.group_norm.",
        "mid.attn_1.q.": "mid_block.attentions.0.to_q.",
        "mid.attn_1.k.": "mid_block.attentions.0.to_k.",
        "mid.attn_1.v.": "mid_block.attentions.0.to_v.",
        "mid.attn_1.proj_out.": "mid_block.attentions.0.to_out.0.",
        "norm_out.": "conv_norm_out.",
    }
    for old, new in replacements.items():
        if rest.startswith(old):
            rest = new + rest[len(old) :]
            break
    if parts[1] == "up":
        # LDM numbers up-levels from the highest resolution; diffusers in the order they run.
        block = levels - 1 - int(parts[2])
        tail = ".".join(parts[3:]).replace("block.", "resnets.", 1).replace("upsample.conv", "upsamplers.0.conv", 1)
        rest = f"up_blocks.{block}.{tail}"
    if parts[1] == "down":
        tail = ".".join(parts[3:]).replace("block.", "resnets.", 1).replace("downsample.conv", "downsamplers.0.conv", 1)
        rest = f"down_blocks.{parts[2]}.{tail}"
    return f"{side}." + rest.replace("nin_shortcut", "conv_shortcut")


def convert_vae(state: dict[str, torch.Tensor], levels: int, side: str = "decoder") -> dict[str, torch.Tensor]:
    """LDM VAE keys -> the keys of one side ("decoder": VAEDecoder, "encoder": VAEEncoder); 1x1 attention
    convolutions become linear weights."""
    keep = ("decoder.", "post_quant_conv.") if side == "decoder" else ("encoder.", "quant_conv.")
    converted = {}
    for key, value in state.items():
        new = ldm_vae_key(key, levels)
        if new is None or not new.startswith(keep):
            continue
        if ".attentions.0.to_" in new and new.endswith("weight"):
            value = value.reshape(value.shape[0], value.shape[1])
        converted[new] = value
    return converted


def convert_vocoder(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """HiFi-GAN keys (`ups.i`) -> transformers SpeechT5HifiGan keys (`upsampler.i`) plus its identity buffers."""
    converted = {("upsampler." + key[4:] if key.startswith("ups.") else key): value for key, value in state.items()}
    num_mels = converted["conv_pre.weight"].shape[1] if "conv_pre.weight" in converted else 0
    converted.setdefault("mean", torch.zeros(num_mels))
    converted.setdefault("scale", torch.ones(num_mels))
    return converted


def _sha256(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _vae_source(snapshot: Snapshot, config: ModelConfig) -> tuple[dict, float, str, Path]:
    """VAE + vocoder state and the latent scale factor, from the Lightning ckpt if present."""
    if snapshot.lightning is not None:
        state = _as_state_dict(load_state(snapshot.lightning), snapshot.lightning)
        if "scale_factor" not in state:
            raise CheckpointError(f"{snapshot.lightning.name} has no scale_factor. Is it audioldm-s-full.ckpt?")
        scale = float(state["scale_factor"])
        return take_prefix(state, "first_stage_model."), scale, snapshot.lightning.name, snapshot.lightning
    state = _as_state_dict(load_state(snapshot.vae_bin), snapshot.vae_bin)
    logger.warning(
        "pytorch_model.bin carries no VAE scale factor; using the published value %s. Add audioldm-s-full.ckpt "
        "to the folder to read it from the checkpoint.",
        config.default_scale_factor,
    )
    return state, config.default_scale_factor, "built-in published value", snapshot.vae_bin


def convert_snapshot(snapshot: Snapshot, config: ModelConfig) -> tuple[dict[str, torch.Tensor], dict, dict]:
    """Load, split, convert and strictly check every part; return the tensors to save, manifest facts, and the
    VAE encoder's tensors when the snapshot has them (fine-tuning needs them; inference does not)."""
    with torch.device("meta"):  # only keys, shapes and dtypes are needed: no memory, no random init
        stages = build_modules(config).parts()
    main = _as_state_dict(load_state(snapshot.main), snapshot.main)
    vae_state, scale, scale_source, vae_path = _vae_source(snapshot, config)
    parts = {
        "unet": (take_prefix(main, "unet."), snapshot.main.name),
        "vision": (take_prefix(main, "vid_fea_extractor."), snapshot.main.name),
        "vae": (convert_vae(vae_state, len(config.vae.ch_mult)), vae_path.name),
        "vocoder": (convert_vocoder(take_prefix(vae_state, "vocoder.")), vae_path.name),
    }
    tensors = {}
    for part, (state, source) in parts.items():
        checked = check_against(stages[part], state, part, source)
        tensors.update({f"{part}.{key}": value.contiguous() for key, value in checked.items()})
    encoder = {}
    if any(key.startswith("encoder.") for key in vae_state):
        with torch.device("meta"):
            encoder_module = VAEEncoder(config.vae)
        encoder = check_against(encoder_module, convert_vae(vae_state, len(config.vae.ch_mult), "encoder"),
                                "vae encoder", vae_path.name)
        encoder = {key: value.contiguous() for key, value in encoder.items()}
    sources = sorted({snapshot.main, vae_path})
    facts = {
        "scale_factor": scale,
        "scale_factor_source": scale_source,
        "sources": [{"file": p.name, "bytes": p.stat().st_size, "sha256": _sha256(p)} for p in sources],
    }
    return tensors, facts, encoder


def import_snapshot(folder: str | Path, models_dir: Path, *, name: str | None = None, preset: str | None = None,
                    force: bool = False) -> dict:
    """Convert a published snapshot folder into `models_dir/<name>` (safetensors + manifest), atomically."""
    snapshot = find_snapshot(Path(folder).expanduser())
    args = read_training_args(snapshot.summary)
    config = config_from_training_args(args, preset)
    name = name or config.name
    target = models_dir / name
    if target.exists() and not force:
        raise CheckpointError(f"A model named '{name}' is already installed. Use --force to replace it or --name.")
    tensors, facts, encoder = convert_snapshot(snapshot, config)
    manifest = {
        "format": MANIFEST_FORMAT,
        "name": name,
        "preset": config.name,
        "frame_pe": config.vision.frame_pe,
        "trained": True,
        "licences": LICENCES[config.name],
        "training_args": args,
        "imported_from": str(snapshot.folder),
        "imported_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "engine_version": __version__,
        **facts,
    }
    write_model(models_dir, name, tensors, manifest, {ENCODER_FILE: encoder} if encoder else None)
    return manifest


def pull_snapshot(repo_id: str = HUB_REPO, revision: str | None = None) -> Path:
    """Download (or find in the Hugging Face cache) the files the import needs; returns the snapshot folder."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    try:
        return Path(snapshot_download(repo_id, revision=revision, allow_patterns=HUB_FILES))
    except (LocalEntryNotFoundError, HfHubHTTPError, OSError) as exc:
        raise CheckpointError(
            f"Could not download {repo_id} ({exc}). Check the network, or download the snapshot by hand and run "
            "`foley models import FOLDER`."
        ) from None
