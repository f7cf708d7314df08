"""Build the parity fixture of the Synchformer visual branch from MMAudio's own code (run with the reference venv).

    /work/refvenv/bin/python tests/reference/mmaudio_synchformer.py --mmaudio /tmp/mmaudio-ref-synchformer

It builds MMAudio's `Synchformer` (their MotionFormer, at our `tiny` sizes: the `divided_224_16x4.yaml` config
with EMBED_DIM/DEPTH/NUM_HEADS overridden as it is loaded), gives every parameter seeded random values (their
initialisation leaves the tubelet stem and the time embedding at zero, which would make the output independent
of the frames), and runs their `FeaturesUtils.encode_video_with_sync` on a fixed clip of 35 frames (3 segments
and 3 trailing frames) for a batch of 2, 4 segments per forward pass. The clip is random 28 x 28 uint8 pictures,
enlarged x8 (nearest) to 224 x 224 so the fixture stays small; their input is it / 255 normalised as their
`load_video` does ((x - 0.5) / 0.5). Saved: their state dict under `state.` (the published key layout), the
uint8 pictures as `input.pixels`, their features as `output.features`; metadata names the commit and command.

Stand-ins put into `sys.modules` before their code is imported (none of them is used on the path measured):
`timm.layers` (`trunc_normal_` = torch's `nn.init.trunc_normal_`, `to_2tuple`), `torchvision.transforms`
(`Normalize`, only constructed for CLIP), `open_clip`, `librosa.filters` and `requests` (CLIP, the mel
converter and downloads, imported by `features_utils` and `synchformer/utils.py`).
"""

import argparse
import json
import subprocess
import sys
import types
from pathlib import Path

import torch
from safetensors.torch import save_file

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "tests/fixtures/mmaudio/synchformer.safetensors"
TINY_OVERRIDES = {"EMBED_DIM": 32, "DEPTH": 2, "NUM_HEADS": 2}
BATCH, FRAMES, SMALL, ENLARGE, SEGMENTS_PER_PASS = 2, 35, 28, 8, 4


def _module(name: str, **attributes) -> None:
    module = types.ModuleType(name)
    module.__dict__.update(attributes)
    sys.modules[name] = module


def _unavailable(*args, **kwargs):
    raise RuntimeError("stand-in: not available in the parity harness")


def install_stand_ins() -> None:
    """Minimal modules for the imports their code makes but the measured path never runs (see the docstring)."""
    _module("timm")
    _module("timm.layers", trunc_normal_=torch.nn.init.trunc_normal_, to_2tuple=lambda x: (x, x))
    _module("torchvision")
    _module("torchvision.transforms", Normalize=lambda mean, std: None)
    _module("open_clip", create_model_from_pretrained=_unavailable, get_tokenizer=_unavailable)
    _module("librosa")
    _module("librosa.filters", mel=_unavailable)
    _module("requests", get=_unavailable)


def build_theirs(checkout: Path) -> torch.nn.Module:
    """Their Synchformer at the tiny sizes, every parameter seeded random."""
    sys.path.insert(0, str(checkout))
    from mmaudio.ext.synchformer import motionformer
    from mmaudio.ext.synchformer.synchformer import Synchformer
    from omegaconf import OmegaConf

    class TinyOmegaConf:
        """OmegaConf whose `load` applies the tiny overrides to the MotionFormer config."""

        @staticmethod
        def load(path):
            config = OmegaConf.load(path)
            for key, value in TINY_OVERRIDES.items():
                config.VIT[key] = value
            return config

    motionformer.OmegaConf = TinyOmegaConf
    torch.manual_seed(0)
    model = Synchformer().eval()
    randomise(model)
    return model


@torch.no_grad()
def randomise(model: torch.nn.Module) -> None:
    """Seeded random values of a realistic scale: weights ~ N(0, 1/fan_in), norm gains near 1, small biases,
    embeddings and CLS tokens ~ N(0, 0.5^2)."""
    generator = torch.Generator().manual_seed(1)
    for name, parameter in model.named_parameters():
        noise = torch.randn(parameter.shape, generator=generator)
        if name.endswith(("cls_token", "pos_embed", "temp_embed")):
            parameter.copy_(0.5 * noise)
        elif parameter.ndim >= 2:
            parameter.copy_(noise / parameter[0].numel() ** 0.5)
        elif "norm" in name and name.endswith("weight"):
            parameter.copy_(1 + 0.1 * noise)
        else:
            parameter.copy_(0.1 * noise)


def clip_pixels() -> torch.Tensor:
    """The fixed clip's small pictures: uint8 [BATCH, FRAMES, 3, SMALL, SMALL]."""
    generator = torch.Generator().manual_seed(2)
    return torch.randint(0, 256, (BATCH, FRAMES, 3, SMALL, SMALL), generator=generator, dtype=torch.uint8)


def enlarge(pixels: torch.Tensor) -> torch.Tensor:
    """uint8 pictures -> float frames in [0, 1] at 224 x 224 (nearest, x ENLARGE); the test does the same."""
    return pixels.repeat_interleave(ENLARGE, dim=-1).repeat_interleave(ENLARGE, dim=-2).float() / 255


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mmaudio", type=Path, required=True, help="a checkout of hkchengrex/MMAudio")
    parser.add_argument("--commit", help="the checkout's MMAudio commit, when it has no git metadata")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    install_stand_ins()
    model = build_theirs(args.mmaudio)
    from mmaudio.model.utils.features_utils import FeaturesUtils

    pixels = clip_pixels()
    theirs_in = (enlarge(pixels) - 0.5) / 0.5  # their load_video's Normalize(mean=0.5, std=0.5)
    holder = types.SimpleNamespace(synchformer=model)  # encode_video_with_sync only uses self.synchformer
    features = FeaturesUtils.encode_video_with_sync(holder, theirs_in, batch_size=SEGMENTS_PER_PASS)
    commit = subprocess.run(["git", "-C", str(args.mmaudio), "rev-parse", "HEAD"], capture_output=True, text=True)
    tensors = {f"state.{key}": value.contiguous() for key, value in model.state_dict().items()}
    tensors["input.pixels"] = pixels
    tensors["output.features"] = features.clone().contiguous()
    metadata = {
        "mmaudio_commit": args.commit or commit.stdout.strip() or "unknown",
        "harness": "/work/refvenv/bin/python tests/reference/mmaudio_synchformer.py --mmaudio <checkout>",
        "torch": torch.__version__,
        "tiny_overrides": json.dumps(TINY_OVERRIDES),
        "input": f"frames = input.pixels enlarged x{ENLARGE} (nearest) / 255; theirs got (frames - 0.5) / 0.5",
        "call": f"FeaturesUtils.encode_video_with_sync(x, batch_size={SEGMENTS_PER_PASS})",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(args.out), metadata=metadata)
    print(f"{args.out}: features {tuple(features.shape)}, std {features.std():.4f}, {args.out.stat().st_size} bytes")


if __name__ == "__main__":
    main()
