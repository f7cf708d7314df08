"""Reference fixtures for engine/mmaudio/clip.py and tokenizer.py, computed by MMAudio's and open_clip's own code.

Run with the reference venv (torch; open_clip_torch==3.3.0 installed with --no-deps; ftfy and regex, which open_clip's
tokenizer imports) on a checkout of MMAudio:

    /work/refvenv/bin/python tests/reference/mmaudio_clip.py --mmaudio /tmp/mmaudio-ref-clip

It builds open_clip's `CLIP` at the tiny sizes of `engine.mmaudio.clip.TINY` (seed 0, every parameter perturbed so
no bias or norm is trivially zero or one), patches it with MMAudio's `patch_clip`, and runs MMAudio's
`FeaturesUtils.encode_video_with_clip` and `FeaturesUtils.encode_text` (unbound, on a namespace holding the tiny
model, since FeaturesUtils' constructor would download the published one) on fixed frames and token ids. Token ids
for a set of prompts come from `open_clip.get_tokenizer('ViT-H-14-378-quickgelu')`, the call MMAudio makes. The
shapes of the published state dict come from open_clip's `CLIP` built on the meta device with the hub's config.

Stand-ins put into sys.modules before their code is imported (none is on a path these fixtures measure):
- torchvision, which must not be installed here: open_clip imports image transforms and FrozenBatchNorm2d from it
  (placeholders that refuse to be constructed); MMAudio's features_utils takes `transforms.Normalize` from it, stood
  in for by a minimal per-channel (x - mean) / std.
- mmaudio.ext.autoencoder, mmaudio.ext.mel_converter, mmaudio.ext.synchformer and
  mmaudio.model.utils.distributions: features_utils imports them for the VAE and Synchformer, which are not run here
  (they would pull in librosa, timm and more).

Writes tests/fixtures/mmaudio/clip.safetensors (tiny weights in the published layout, frames as uint8, token ids,
MMAudio's image and text features) and tests/fixtures/mmaudio/clip_tokenizer.safetensors (open_clip's ids).
"""

import argparse
import json
import subprocess
import sys
import types
from pathlib import Path

import torch
from safetensors.torch import save_file

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "mmaudio"
SEED = 0

# The hub's open_clip_config.json model_cfg (apple/DFN5B-CLIP-ViT-H-14-378, formerly -384).
PUBLISHED_CFG = {
    "embed_dim": 1024,
    "quick_gelu": True,
    "vision_cfg": {"image_size": 378, "layers": 32, "width": 1280, "head_width": 80, "patch_size": 14},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 1024, "heads": 16, "layers": 24},
}
# engine.mmaudio.clip.TINY in open_clip's terms (384-pixel frames, as MMAudio asserts).
TINY_CFG = {
    "embed_dim": 16,
    "quick_gelu": True,
    "vision_cfg": {"image_size": 384, "layers": 2, "width": 32, "head_width": 16, "patch_size": 14},
    "text_cfg": {"context_length": 77, "vocab_size": 320, "width": 32, "heads": 2, "layers": 2},
}

# Prompts whose every character ftfy leaves alone (the engine tokenizes these without ftfy), and the rest.
PLAIN_PROMPTS = [
    "",
    "A dog barks",
    "footsteps on gravel, then a door slams!",
    "  multiple   spaces\tand\nnewlines  ",
    "it's they're we've I'm you'll he'd DON'T",
    "LOUD Thunder 1234567 and 3.14 ... --- ???",
    "<start_of_text> inside a prompt <end_of_text>",
    "glass-shattering, high-pitched (squeal) [metal] {wood} @#$%^*~`|\\/",
    " ".join(["rain on a tin roof with distant rolling thunder and wind"] * 8),  # far past 77 tokens
    "x" * 300,
    "supercalifragilisticexpialidocious pneumonoultramicroscopic",
]
UNICODE_PROMPTS = [
    "Café crème brûlée — sizzling",
    "\u201cQuoted\u201d glass shatter\u2019s",
    "ｆｕｌｌｗｉｄｔｈ ＡＢＣ １２３",
    "日本語のテキスト 雨の音",
    "🔥 fire crackling 🎸 guitar",
    "&amp; html &lt;b&gt; entities &amp;amp;amp;",
    "ﬁre ﬂame",
    "cafÃ© mojibake",
    "\x1b[31mred\x1b[0m terminal",
    "vertical\x0btab",
    "Ünïcödé ÀÉÎÕÜ ß ǅ Σ",
    "٣ arabic digit ½ ² Ⅻ",
    "naïve\u00a0no-break\u2003em-space",
]


def install_stand_ins(mmaudio: Path) -> None:
    """The stand-in modules the docstring lists, then MMAudio's checkout on the path."""

    class Unavailable:
        def __init__(self, *args, **kwargs):
            raise RuntimeError("torchvision stand-in: not available in the reference harness")

    class InterpolationMode:
        NEAREST, BILINEAR, BICUBIC = "nearest", "bilinear", "bicubic"

    class Normalize:
        def __init__(self, mean, std):
            self.mean = torch.tensor(mean).view(-1, 1, 1)
            self.std = torch.tensor(std).view(-1, 1, 1)

        def __call__(self, x):
            return (x - self.mean) / self.std

    def placeholder(attr):
        if attr.startswith("__"):  # module dunders (__file__, ...) stay absent, as tools that inspect modules expect
            raise AttributeError(attr)
        return InterpolationMode if attr == "InterpolationMode" else Unavailable

    names = ["torchvision", "torchvision.ops", "torchvision.ops.misc", "torchvision.transforms",
             "torchvision.transforms.functional"]
    for name in names:
        module = types.ModuleType(name)
        module.__path__ = []
        module.__getattr__ = placeholder
        sys.modules[name] = module
        parent, _, leaf = name.rpartition(".")
        if parent:
            setattr(sys.modules[parent], leaf, module)
    sys.modules["torchvision.transforms"].Normalize = Normalize

    unused = {
        "mmaudio.ext.autoencoder": "AutoEncoderModule",
        "mmaudio.ext.mel_converter": "get_mel_converter",
        "mmaudio.ext.synchformer": "Synchformer",
        "mmaudio.model.utils.distributions": "DiagonalGaussianDistribution",
    }
    for name, attr in unused.items():
        module = types.ModuleType(name)
        setattr(module, attr, Unavailable)
        sys.modules[name] = module
    sys.path.insert(0, str(mmaudio))


def perturb(model: torch.nn.Module) -> None:
    """Move every parameter off its initial value (zero biases, unit norms) by seeded noise."""
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))


def tiny_tokens(vocab_size: int, context_length: int) -> torch.Tensor:
    """Ids laid out like the tokenizer's (start, text, end, zero padding) in the tiny vocabulary; one row full."""
    start, end = vocab_size - 2, vocab_size - 1
    rows = torch.zeros(3, context_length, dtype=torch.long)
    for row, length in enumerate([3, 20, context_length - 2]):
        rows[row, 0] = start
        rows[row, 1 : length + 1] = torch.randint(0, start, (length,))
        rows[row, length + 1] = end
    return rows


def published_shapes(open_clip) -> dict[str, list[int]]:
    """Key -> shape of open_clip's CLIP at the hub config's sizes (built on the meta device)."""
    with torch.device("meta"):
        model = open_clip.model.CLIP(**PUBLISHED_CFG)
    return {key: list(value.shape) for key, value in model.state_dict().items()}


def mmaudio_commit(mmaudio: Path, given: str | None) -> str:
    """The MMAudio commit the fixtures come from: `--commit`, else the checkout's HEAD."""
    if given:
        return given
    result = subprocess.run(["git", "-C", str(mmaudio), "rev-parse", "HEAD"], capture_output=True, text=True,
                            check=False)
    if result.returncode:
        raise SystemExit(f"{mmaudio} is not a git checkout; name its MMAudio commit with --commit.")
    return result.stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mmaudio", type=Path, required=True, help="a checkout of hkchengrex/MMAudio")
    parser.add_argument("--commit", help="its commit, when the checkout is an exported tree (git archive)")
    args = parser.parse_args()
    install_stand_ins(args.mmaudio)

    import open_clip
    from mmaudio.model.utils import features_utils

    torch.manual_seed(SEED)
    model = open_clip.model.CLIP(**TINY_CFG).eval()
    perturb(model)
    model = features_utils.patch_clip(model)
    text_cfg = TINY_CFG["text_cfg"]
    tokens = tiny_tokens(text_cfg["vocab_size"], text_cfg["context_length"])
    frames_u8 = torch.randint(0, 256, (1, 2, 3, 384, 384), dtype=torch.uint8)  # [B, T, C, H, W]

    utils = types.SimpleNamespace(
        clip_model=model,
        clip_preprocess=sys.modules["torchvision.transforms"].Normalize(
            mean=[0.48145466, 0.4578275, 0.40821073], std=[0.26862954, 0.26130258, 0.27577711]),
        tokenizer=lambda texts: tokens,  # stands for open_clip's tokenizer: the tiny vocabulary has no real words
        device=torch.device("cpu"),
    )
    image_features = features_utils.FeaturesUtils.encode_video_with_clip(utils, frames_u8.float() / 255)
    text_features = features_utils.FeaturesUtils.encode_text(utils, ["a", "b", "c"])

    command = "python tests/reference/mmaudio_clip.py --mmaudio <checkout> [--commit <sha>]"
    provenance = {"mmaudio_commit": mmaudio_commit(args.mmaudio, args.commit), "open_clip": open_clip.__version__,
                  "torch": torch.__version__, "harness": command, "seed": str(SEED)}
    FIXTURES.mkdir(parents=True, exist_ok=True)
    tensors = {f"weights.{key}": value.contiguous() for key, value in model.state_dict().items()}
    tensors.update({"frames_u8": frames_u8, "tokens": tokens, "image_features": image_features.contiguous(),
                    "text_features": text_features.contiguous()})
    metadata = {**provenance, "config": json.dumps(TINY_CFG), "published_config": json.dumps(PUBLISHED_CFG),
                "published_shapes": json.dumps(published_shapes(open_clip))}
    save_file(tensors, FIXTURES / "clip.safetensors", metadata=metadata)

    tokenizer = open_clip.get_tokenizer("ViT-H-14-378-quickgelu")  # as features_utils builds it
    save_file({"plain_ids": tokenizer(PLAIN_PROMPTS), "unicode_ids": tokenizer(UNICODE_PROMPTS)},
              FIXTURES / "clip_tokenizer.safetensors",
              metadata={**provenance, "tokenizer": type(tokenizer).__name__,
                        "plain_prompts": json.dumps(PLAIN_PROMPTS), "unicode_prompts": json.dumps(UNICODE_PROMPTS)})
    print(f"image features {tuple(image_features.shape)} std {image_features.std():.4g}; "
          f"text features {tuple(text_features.shape)} std {text_features.std():.4g}; wrote {FIXTURES}")


if __name__ == "__main__":
    main()
