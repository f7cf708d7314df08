"""MMAudio import: the published files (as MMAudio's README and `download_utils.py` lay them out, or as the hub
caches them) -> one strict-checked safetensors model directory per variant.

    weights/mmaudio_<variant>.pth                  the network (hkchengrex/MMAudio on the hub), CC-BY-NC-4.0
    ext_weights/v1-16.pth | v1-44.pth              the mel VAE (its decoder is kept)
    ext_weights/best_netG.pt                       BigVGAN, 16 kHz variants
    bigvgan_generator.pt + config.json             nvidia/bigvgan_v2_44khz_128band_512x, 44.1 kHz variants
    ext_weights/synchformer_state_dict.pth         Synchformer (its visual branch is kept)
    open_clip_pytorch_model.bin                    apple/DFN5B-CLIP-ViT-H-14-384 (open_clip layout)

Files are found by name anywhere under the folder given. Every file is read with `torch.load(weights_only=True)`
and no allow-list: each is a plain dict of tensors (the vocoders' nested under "generator"), so a file that needs
any other object is refused by name (engine.checkpoints.load_state).
"""

import hashlib
import json
import os
import time
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

import platformdirs
import torch

from engine import __version__
from engine.checkpoints import MANIFEST_FORMAT, load_state, write_model
from engine.errors import CheckpointError
from engine.mmaudio.clip import HUB_REPO as CLIP_REPO
from engine.mmaudio.clip import load_clip
from engine.mmaudio.config import PRESETS, MMAudioConfig
from engine.mmaudio.network import MMAudioNetwork, network_weights
from engine.mmaudio.synchformer import load_synchformer
from engine.mmaudio.vae import load_vae_decoder
from engine.mmaudio.vocoder import config_from_hparams, load_vocoder

NETWORK_REPO = "hkchengrex/MMAudio"
VOCODER_44K_REPO = "nvidia/bigvgan_v2_44khz_128band_512x"
RELEASE = "https://github.com/hkchengrex/MMAudio/releases/download/v0.1"
NON_COMMERCIAL = "CC-BY-NC-4.0 (non-commercial)"
# the release files' checksums as MMAudio's download code lists them
RELEASE_MD5 = {
    "v1-16.pth": "69f56803f59a549a1a507c93859fd4d7",
    "best_netG.pt": "eeaf372a38a9c31c362120aba2dde292",
    "v1-44.pth": "fab020275fa44c6589820ce025191600",
    "synchformer_state_dict.pth": "5b2f5594b0730f70e41e549b7c94390c",
}


@dataclass(frozen=True)
class Files:
    """The published files one variant is made of."""

    network: Path
    vae: Path
    vocoder: Path
    synchformer: Path
    clip: Path
    vocoder_config: Path | None = None  # BigVGAN v2's config.json (44.1 kHz)


def network_file(variant: str) -> str:
    return f"mmaudio_{variant}.pth"


def vae_file(config: MMAudioConfig) -> str:
    return "v1-16.pth" if config.sample_rate == 16000 else "v1-44.pth"


def vocoder_file(config: MMAudioConfig) -> str:
    return "best_netG.pt" if config.sample_rate == 16000 else "bigvgan_generator.pt"


def licences(config: MMAudioConfig, files: Files) -> list[dict]:
    """What each stage's weights may be used for, as their publishers state it; shown wherever the model is."""
    vocoder = ({"component": "BigVGAN v2 vocoder (44.1 kHz)", "licence": "MIT", "source": VOCODER_44K_REPO}
               if config.sample_rate != 16000 else
               {"component": "BigVGAN vocoder (16 kHz)", "licence": NON_COMMERCIAL,
                "source": f"{RELEASE}/best_netG.pt"})
    return [
        {"component": f"MMAudio network ({config.name})", "licence": NON_COMMERCIAL, "source": NETWORK_REPO},
        {"component": "MMAudio mel VAE", "licence": NON_COMMERCIAL, "source": f"{RELEASE}/{files.vae.name}"},
        vocoder,
        {"component": "Synchformer visual branch", "licence": NON_COMMERCIAL,
         "source": f"{RELEASE}/synchformer_state_dict.pth"},
        {"component": "CLIP DFN5B ViT-H/14 image and text towers",
         "licence": "apple-amlr (Apple Machine Learning Research Model License: research, non-commercial)",
         "source": CLIP_REPO},
        {"component": "CLIP tokenizer vocabulary", "licence": "MIT (OpenAI CLIP)", "source": "open_clip"},
    ]


def _found(folder: Path, name: str) -> Path | None:
    matches = sorted(folder.rglob(name))
    return matches[0] if matches else None


def variants_in(folder: Path) -> list[str]:
    return sorted(path.name.removeprefix("mmaudio_").removesuffix(".pth") for path in folder.rglob("mmaudio_*.pth"))


def find_files(folder: Path, variant: str) -> Files:
    """The files of `variant` under `folder`, or one error naming each one missing and where it is published."""
    config = PRESETS[variant]
    wanted = {"network": (network_file(variant), f"{NETWORK_REPO} weights/"),
              "vae": (vae_file(config), RELEASE),
              "vocoder": (vocoder_file(config), RELEASE if config.sample_rate == 16000 else VOCODER_44K_REPO),
              "synchformer": ("synchformer_state_dict.pth", RELEASE),
              "clip": ("open_clip_pytorch_model.bin", CLIP_REPO)}
    found = {part: _found(folder, name) for part, (name, _) in wanted.items()}
    missing = [f"{name} (from {where})" for part, (name, where) in wanted.items() if found[part] is None]
    if missing:
        raise CheckpointError(f"{folder} lacks files of MMAudio {variant}: {', '.join(missing)}. Download them "
                              "(or run `foley models pull mmaudio-" + variant.replace("_", "-") + "`).")
    config_json = found["vocoder"].with_name("config.json") if config.sample_rate != 16000 else None
    if config_json is not None and not config_json.is_file():
        raise CheckpointError(f"{found['vocoder']} has no config.json beside it; download both files of "
                              f"{VOCODER_44K_REPO}.")
    return Files(**found, vocoder_config=config_json)


def _plain(loaded, path: Path) -> dict[str, torch.Tensor]:
    if not isinstance(loaded, dict):
        raise CheckpointError(f"{path.name} holds a {type(loaded).__name__}, not a state dict. Is it the right file?")
    return loaded


def convert(files: Files, config: MMAudioConfig) -> dict[str, torch.Tensor]:
    """Every stage loaded from its published file with the strict check, as the tensors of one weights file."""
    if files.vocoder_config is not None:
        published = config_from_hparams(json.loads(files.vocoder_config.read_text()), config.sample_rate)
        if published != config.vocoder:
            raise CheckpointError(f"{files.vocoder_config} describes another vocoder than MMAudio {config.name} "
                                  f"uses ({published} != {config.vocoder}); download {VOCODER_44K_REPO} again.")
    with torch.device("meta"):
        network = MMAudioNetwork(config.network)
    stages = {
        "network": network_weights(_plain(load_state(files.network), files.network), network),
        "vae": load_vae_decoder(config.vae, _plain(load_state(files.vae), files.vae), files.vae.name).state_dict(),
        "vocoder": load_vocoder(config.vocoder, load_state(files.vocoder), files.vocoder.name).state_dict(),
        "synchformer": load_synchformer(files.synchformer, config.synchformer).state_dict(),
        "clip": load_clip(_plain(load_state(files.clip), files.clip), config.clip, source=files.clip.name).state_dict(),
    }
    return {f"{part}.{key}": value.contiguous() for part, state in stages.items() for key, value in state.items()}


def import_files(files: Files, models_dir: Path, variant: str, *, name: str | None = None,
                 force: bool = False) -> dict:
    """Convert and install one variant; returns its manifest."""
    config = PRESETS[variant]
    name = name or "mmaudio-" + variant.replace("_", "-")
    if (models_dir / name).exists() and not force:
        raise CheckpointError(f"A model named '{name}' is already installed. Use --force to replace it or --name.")
    tensors = convert(files, config)
    manifest = {
        "format": MANIFEST_FORMAT,
        "name": name,
        "family": "mmaudio",
        "variant": variant,
        "preset": config.name,
        "takes_text": True,
        "trained": True,
        "licences": licences(config, files),
        "files": {part: path.name for part, path in asdict(files).items() if path is not None},
        "imported_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "engine_version": __version__,
    }
    write_model(models_dir, name, tensors, manifest)
    return manifest


def import_folder(folder: str | Path, models_dir: Path, *, variant: str | None = None, name: str | None = None,
                  force: bool = False) -> dict:
    """`foley models import FOLDER` for MMAudio's files: the one variant there, or `variant` of several."""
    folder = Path(folder)
    found = variants_in(folder)
    if variant is None:
        if len(found) != 1:
            raise CheckpointError(f"{folder} holds the networks of {', '.join(found) or 'no variant'}; choose one "
                                  "with --variant.")
        variant = found[0]
    if variant not in PRESETS:
        raise CheckpointError(f"'{variant}' is not an MMAudio variant; known: {', '.join(PRESETS)}.")
    return import_files(find_files(folder, variant), models_dir, variant, name=name, force=force)


def is_mmaudio_folder(folder: Path) -> bool:
    return any(Path(folder).rglob("mmaudio_*.pth"))


def downloads_dir() -> Path:
    """Where release files are kept once downloaded and verified (beside the models under FOLEY_HOME)."""
    home = os.environ.get("FOLEY_HOME")
    return (Path(home) if home else Path(platformdirs.user_data_dir("foley-desk"))) / "downloads" / "mmaudio"


def _md5(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "md5").hexdigest()


def release_file(name: str) -> Path:
    """A file of MMAudio's v0.1 release: kept copy, or downloaded, checked against its published MD5, then kept."""
    target = downloads_dir() / name
    if target.is_file():
        return target
    if os.environ.get("HF_HUB_OFFLINE") not in (None, "", "0"):
        raise CheckpointError(f"{name} is not downloaded and HF_HUB_OFFLINE is set. Download {RELEASE}/{name} by "
                              "hand and run `foley models import FOLDER`.")
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(f".{name}.part")
    try:
        urllib.request.urlretrieve(f"{RELEASE}/{name}", part)
        if _md5(part) != RELEASE_MD5[name]:
            raise CheckpointError(f"{name} downloaded with another checksum than MMAudio publishes; try again.")
        part.rename(target)
    except OSError as exc:
        raise CheckpointError(f"Could not download {RELEASE}/{name} ({exc}). Check the network, or download the "
                              "files by hand and run `foley models import FOLDER`.") from None
    finally:
        part.unlink(missing_ok=True)
    return target


def _hub_file(repo: str, name: str) -> Path:
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    try:
        return Path(hf_hub_download(repo, name))
    except (LocalEntryNotFoundError, HfHubHTTPError, OSError) as exc:
        raise CheckpointError(f"Could not download {name} of {repo} ({exc}). Check the network, or download the "
                              "files by hand and run `foley models import FOLDER`.") from None


def pull(variant: str) -> Files:
    """Every file of `variant`, from the Hugging Face hub (network, CLIP, the 44.1 kHz vocoder) and MMAudio's
    release (VAE, 16 kHz vocoder, Synchformer), as MMAudio's own download code fetches them."""
    if variant not in PRESETS:
        raise CheckpointError(f"'{variant}' is not an MMAudio variant; known: {', '.join(PRESETS)}.")
    config = PRESETS[variant]
    vocoder, vocoder_config = (
        (release_file(vocoder_file(config)), None) if config.sample_rate == 16000 else
        (_hub_file(VOCODER_44K_REPO, vocoder_file(config)), _hub_file(VOCODER_44K_REPO, "config.json")))
    return Files(network=_hub_file(NETWORK_REPO, f"weights/{network_file(variant)}"),
                 vae=release_file(vae_file(config)), vocoder=vocoder,
                 synchformer=release_file("synchformer_state_dict.pth"),
                 clip=_hub_file(CLIP_REPO, "open_clip_pytorch_model.bin"), vocoder_config=vocoder_config)
