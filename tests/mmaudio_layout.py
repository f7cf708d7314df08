"""Tiny MMAudio checkpoints in the exact published layout (file names, folders, keys, nesting), as a user has them
after downloading MMAudio's weights, its v0.1 release files and the two hub repos: for import and end-to-end tests."""

import json
from dataclasses import asdict
from pathlib import Path

import torch

from engine.mmaudio.checkpoint import network_file, vae_file, vocoder_file
from engine.mmaudio.config import PRESETS
from engine.mmaudio.stages import build_modules


def _randomised(module: torch.nn.Module, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """The module's state with every float tensor perturbed: MMAudio zero-initialises its output layers, and a
    network that always says zero would hide a wrong wiring."""
    state = module.state_dict()
    return {key: value + 0.05 * torch.randn(value.shape, generator=generator) if value.is_floating_point() else value
            for key, value in state.items()}


def write_published(folder: Path, variant: str = "tiny", seed: int = 0) -> Path:
    """Write the files of `variant` under `folder` as they are published; returns `folder`."""
    config = PRESETS[variant]
    generator = torch.Generator().manual_seed(seed)
    stages = build_modules(config)
    (folder / "weights").mkdir(parents=True, exist_ok=True)
    (folder / "ext_weights").mkdir(exist_ok=True)
    torch.save(_randomised(stages.network, generator), folder / "weights" / network_file(variant))
    vae = _randomised(stages.vae, generator)
    vae["encoder.conv_in.weight"] = torch.randn(8, config.vae.mel_dim, 7, generator=generator)  # the unused side
    torch.save(vae, folder / "ext_weights" / vae_file(config))
    vocoder = {"generator": _randomised(stages.vocoder, generator)}
    if config.sample_rate == 16000:
        torch.save(vocoder, folder / "ext_weights" / vocoder_file(config))
    else:  # a hub snapshot of nvidia/bigvgan_v2_44khz_128band_512x
        hub = folder / "bigvgan_v2_44khz_128band_512x"
        hub.mkdir(exist_ok=True)
        torch.save(vocoder, hub / vocoder_file(config))
        hparams = {**asdict(config.vocoder), "resblock": "1"}
        (hub / "config.json").write_text(json.dumps({key: value for key, value in hparams.items()
                                                     if key != "sampling_rate"} | {"sampling_rate": 44100}))
    sync = _randomised(stages.synchformer, generator)
    sync["vfeat_extractor.patch_embed.proj.weight"] = torch.zeros(4, 3, 16, 16)  # the 2D stem that never runs
    sync["afeat_extractor.blocks.0.weight"] = torch.zeros(4)  # the audio branch MMAudio does not use
    torch.save(sync, folder / "ext_weights" / "synchformer_state_dict.pth")
    clip = _randomised(stages.clip, generator)
    clip["text_projection"] = torch.randn(config.clip.text.width, config.clip.embed_dim, generator=generator)
    clip["logit_scale"] = torch.tensor(4.6)
    hub = folder / "DFN5B-CLIP-ViT-H-14-384"
    hub.mkdir(exist_ok=True)
    torch.save(clip, hub / "open_clip_pytorch_model.bin")
    return folder
