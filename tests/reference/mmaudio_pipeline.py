"""Record MMAudio's whole `demo.py` path at the tiny sizes on a real video, for tests/test_mmaudio_pipeline.py.

Run with the reference venv (torch CPU, einops, torchdiffeq, omegaconf, open_clip_torch --no-deps, ftfy, regex,
and PyAV, `pip install av==18.1.0`, the version the engine decodes with) on a tree holding MMAudio's `demo.py` and
`mmaudio/` package:

    git -C /work/.mirror/hkchengrex+MMAudio/repo archive HEAD mmaudio demo.py | tar -x -C /tmp/mmaudio-ref-pipeline
    /work/refvenv/bin/python tests/reference/mmaudio_pipeline.py --mmaudio /tmp/mmaudio-ref-pipeline \
        --commit 974010a026c731054592d8f777218bd9d85a6c24

What is theirs: `demo.py`'s `main()` itself, run with the command line
`--variant tiny --video <clip> --prompt ... --negative_prompt ... --duration 2 --seed 42 --full_precision
--skip_video_composite` (CPU, fp32): their `get_my_mmaudio`-built `MMAudio` (its constructor at the tiny sizes of
our `PRESETS["tiny"]`) with `load_weights` of `weights/mmaudio_tiny.pth`, their `FeaturesUtils` (its own
constructor: open_clip's `CLIP` patched by their `patch_clip`, their `Synchformer` loading
`synchformer_state_dict.pth`, open_clip's real `ViT-H-14-378-quickgelu` tokenizer, their `AutoEncoderModule` with
their `VAE` loading `v1-16.pth` and their BigVGAN v1 loading `best_netG.pt`), their `load_video` (their PyAV
`read_frames`, their frame picking, their transform pipelines), their `FlowMatching` and `eval_utils.generate`
with the seeded `torch.Generator` demo.py makes. The tiny weights are written first, in the published files'
layout, by their own modules (seeded random values, rounded to float16 so the fixture stores them exactly); every
stage then reads them back through their own loading code.

Stand-ins (put into `sys.modules` or patched into their module namespaces before `main()` runs):
- the sizes: `demo.get_my_mmaudio("tiny")`, `autoencoder.get_my_vae("16k")` (VAE(80, 4, 8)), the vocoder's yml
  (`autoencoder.BigVGAN` given the tiny config path), the MotionFormer yml (EMBED_DIM/DEPTH/NUM_HEADS overridden as
  it is loaded), `features_utils.create_model_from_pretrained` (open_clip's `CLIP` at the tiny config, its state
  loaded from the tiny `open_clip_pytorch_model.bin`), and `all_model_cfg["tiny"]` whose `download_if_needed`
  does nothing (the files are local; no download).
- torchvision (not installable here): `transforms.v2` `Compose`, `Resize`, `CenterCrop`, `ToImage`, `ToDtype`,
  `Normalize` and `InterpolationMode`, and `transforms.Normalize`, written from torchvision's source for plain
  tensors (resize: `_compute_resized_output_size`, the uint8 CPU path that calls `interpolate(mode="bicubic",
  align_corners=False, antialias=True)` on uint8 itself, the batch-of-one restride; crop anchors
  `int(round((h - s) / 2.0))`; `to(float32).mul_(1 / 255)`; `sub(mean).div(std)`); every other torchvision name
  open_clip imports is a placeholder that refuses to be constructed.
- timm.layers (`trunc_normal_` = torch's, `to_2tuple`), librosa.filters.mel (zeros: only their mel converter's
  constructor calls it, for encode_audio, which generation never runs), requests (downloads), colorlog
  (`ColoredFormatter` = logging.Formatter without the colour fields), PIL.Image (eval_utils' `load_image`, for still pictures), torchaudio (`save` records the tensor demo.py would encode as FLAC:
  the fixture holds that float tensor, not the 16-bit file).

Recorded (the fixture, tests/fixtures/mmaudio/pipeline.safetensors): the video file's bytes (24 fps, 320x240, 3 s,
`engine.training.sample_video.make_demo_video`, so its 25 fps Synchformer grid falls between frames); every
published file's tensors (`<file>/<key>`, float16 where the value is exact, the token embedding stored as the rows
the two prompts use, every other row zero in the file their code read); their frames per stream after
`load_video` as uint8 (zlib-compressed: clip = 255 x, sync = 255 (x / 2 + 1/2), both exact) and which decoded frame
each is; CLIP, Synchformer, prompt and negative prompt features; the start noise; the latent before and after
`unnormalize`; the mel; the audio.
"""

import argparse
import json
import logging
import subprocess
import sys
import tempfile
import types
import zlib
from fractions import Fraction
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from safetensors.torch import save_file

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "tests" / "fixtures" / "mmaudio" / "pipeline.safetensors"
PROMPT = "a red ball bounces on a wooden floor"
NEGATIVE = "music, speech"
DURATION = 2.0
SEED = 42
VIDEO_SECONDS, VIDEO_RATE = 3.0, Fraction(24)
# our PRESETS["tiny"] in their terms
NETWORK = {"latent_dim": 4, "clip_dim": 16, "sync_dim": 32, "text_dim": 32, "hidden_dim": 8, "depth": 3,
           "fused_depth": 1, "num_heads": 2, "latent_seq_len": 250, "clip_seq_len": 64, "sync_seq_len": 192,
           "text_seq_len": 77}
CLIP = {"embed_dim": 16, "quick_gelu": True,
        "vision_cfg": {"image_size": 384, "layers": 2, "width": 32, "head_width": 16, "patch_size": 14},
        "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2}}
SYNCHFORMER = {"EMBED_DIM": 32, "DEPTH": 2, "NUM_HEADS": 2}
VAE = {"data_dim": 80, "embed_dim": 4, "hidden_dim": 8}
VOCODER = {"resblock": "1", "num_mels": 80, "upsample_rates": [8, 8, 4], "upsample_kernel_sizes": [16, 16, 8],
           "upsample_initial_channel": 16, "resblock_kernel_sizes": [3, 5],
           "resblock_dilation_sizes": [[1, 3, 5], [1, 3, 5]], "activation": "snakebeta", "snake_logscale": True}
FILES = {"network": "weights/mmaudio_tiny.pth", "vae": "ext_weights/v1-16.pth", "vocoder": "ext_weights/best_netG.pt",
         "synchformer": "ext_weights/synchformer_state_dict.pth",
         "clip": "DFN5B-CLIP-ViT-H-14-384/open_clip_pytorch_model.bin"}


# ---- torchvision stand-in (see the docstring) ----

class InterpolationMode:
    NEAREST, BILINEAR, BICUBIC = "nearest", "bilinear", "bicubic"


def _resized_size(height: int, width: int, size) -> tuple[int, int]:
    if isinstance(size, int) or len(size) == 1:
        requested = size if isinstance(size, int) else size[0]
        short, long = (width, height) if width <= height else (height, width)
        new_short, new_long = requested, int(requested * long / short)
        return (new_long, new_short) if width <= height else (new_short, new_long)
    return size[0], size[1]


class Resize:
    def __init__(self, size, interpolation=InterpolationMode.BILINEAR, antialias=True):
        assert interpolation == InterpolationMode.BICUBIC and antialias  # the only case load_video uses
        self.size = size

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        shape = image.shape
        channels, height, width = shape[-3:]
        new_height, new_width = _resized_size(height, width, self.size)
        if (new_height, new_width) == (height, width):
            return image
        assert image.dtype == torch.uint8 and image.device.type == "cpu"  # native uint8 bicubic: no cast
        image = image.reshape(-1, channels, height, width)
        strides = image.stride()
        if image.is_contiguous(memory_format=torch.channels_last) and image.shape[0] == 1 and image.numel() != strides[0]:
            image = image.as_strided((1, channels, height, width), [image.numel(), *strides[1:]])
        image = torch.nn.functional.interpolate(image, size=[new_height, new_width], mode="bicubic",
                                                align_corners=False, antialias=True)
        return image.reshape(shape[:-3] + (channels, new_height, new_width))


class CenterCrop:
    def __init__(self, size: int):
        self.size = size

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        height, width = image.shape[-2:]
        assert height >= self.size and width >= self.size  # torchvision pads smaller pictures; none here
        top, left = round((height - self.size) / 2.0), round((width - self.size) / 2.0)
        return image[..., top : top + self.size, left : left + self.size]


class ToImage:
    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        return image  # wraps the same data as a tv_tensors.Image


class ToDtype:
    def __init__(self, dtype, scale: bool = False):
        assert dtype == torch.float32 and scale
        self.dtype = dtype

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        return image.to(self.dtype).mul_(1.0 / 255)


class Normalize:
    def __init__(self, mean, std):
        self.mean, self.std = mean, std

    def __call__(self, tensor: torch.Tensor) -> torch.Tensor:
        mean = torch.as_tensor(self.mean, dtype=tensor.dtype).view(-1, 1, 1)
        std = torch.as_tensor(self.std, dtype=tensor.dtype).view(-1, 1, 1)
        return tensor.clone().sub_(mean).div_(std)


class Compose:
    def __init__(self, transforms):
        self.transforms = transforms

    def __call__(self, image):
        for transform in self.transforms:
            image = transform(image)
        return image


def _module(name: str, getattr_=None, **attributes) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__path__ = []
    module.__dict__.update(attributes)
    if getattr_ is not None:
        module.__getattr__ = getattr_
    sys.modules[name] = module
    parent, _, leaf = name.rpartition(".")
    if parent in sys.modules:
        setattr(sys.modules[parent], leaf, module)
    return module


def _unavailable(*args, **kwargs):
    raise RuntimeError("stand-in: not available in the pipeline harness")


class Unavailable:
    """A torchvision name open_clip imports (some it subclasses) but the measured path never constructs."""

    def __init__(self, *args, **kwargs):
        _unavailable()


class AudioRecorder:
    """torchaudio: `save` keeps what demo.py writes."""

    saved: ClassVar[list[tuple[str, torch.Tensor, int]]] = []

    @classmethod
    def save(cls, path, tensor, sample_rate):
        cls.saved.append((str(path), tensor.clone(), sample_rate))


def install_stand_ins() -> None:
    def placeholder(attr):
        if attr.startswith("__"):
            raise AttributeError(attr)
        return InterpolationMode if attr == "InterpolationMode" else Unavailable

    for name in ("torchvision", "torchvision.ops", "torchvision.ops.misc", "torchvision.transforms",
                 "torchvision.transforms.functional"):
        _module(name, placeholder)
    sys.modules["torchvision.transforms"].Normalize = Normalize
    _module("torchvision.transforms.v2", Compose=Compose, Resize=Resize, CenterCrop=CenterCrop, ToImage=ToImage,
            ToDtype=ToDtype, Normalize=Normalize, InterpolationMode=InterpolationMode)
    _module("timm")
    _module("timm.layers", trunc_normal_=torch.nn.init.trunc_normal_, to_2tuple=lambda x: (x, x))
    _module("librosa")
    _module("librosa.filters", mel=lambda *, sr, n_fft, n_mels, fmin, fmax: np.zeros((n_mels, n_fft // 2 + 1)))
    _module("requests", get=_unavailable)
    _module("colorlog", ColoredFormatter=lambda fmt: logging.Formatter(
        fmt.replace("%(log_color)s", "").replace("%(reset)s", "")))
    _module("torchaudio", save=AudioRecorder.save)
    _module("PIL")
    _module("PIL.Image", open=_unavailable)


# ---- tiny weights, written in the published files' layout by their modules ----

@torch.no_grad()
def fp16_exact(module: torch.nn.Module) -> None:
    """Round every float parameter and buffer to a float16 value, so the fixture stores it exactly."""
    for tensor in [*module.parameters(), *module.buffers()]:
        if tensor.is_floating_point():
            tensor.copy_(tensor.half().float())


@torch.no_grad()
def randomise(module: torch.nn.Module, seed: int, kind: str) -> None:
    """Seeded values of a sensible scale (their inits zero the adaLN and output layers and the stems)."""
    generator = torch.Generator().manual_seed(seed)
    for name, p in module.named_parameters():
        noise = torch.randn(p.shape, generator=generator)
        if kind == "vocoder":
            if name.endswith("original0"):
                value = 0.3 + 0.6 * torch.rand(p.shape, generator=generator)
            elif name.endswith("original1"):
                value = noise
            elif name.endswith(("alpha", "beta")):
                value = 0.3 * noise
            else:
                value = 0.1 * noise
        elif name.endswith("latent_std"):
            value = 0.5 + torch.rand(p.shape, generator=generator)
        elif name.endswith(("q_norm.weight", "k_norm.weight")) or ("norm" in name and name.endswith("weight")):
            value = 1 + 0.1 * noise
        elif name.endswith(("cls_token", "pos_embed", "temp_embed")) or name.startswith(("empty_", "sync_pos_emb",
                                                                                           "latent_")):
            value = 0.5 * noise
        elif p.ndim >= 2:
            value = noise / p[0].numel() ** 0.5
        else:
            value = 0.1 * noise
        p.copy_(value)
    fp16_exact(module)


def published_spelling(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """NVIDIA's weight_norm names (weight_g, weight_v), as best_netG.pt stores them."""
    out = {}
    for key, value in state.items():
        key = key.replace("parametrizations.weight.original0", "weight_g")
        out[key.replace("parametrizations.weight.original1", "weight_v")] = value.detach().clone()
    return out


def write_weights(folder: Path, tokens: torch.Tensor) -> dict[str, dict[str, torch.Tensor]]:
    """Their tiny modules' states in the published files under `folder`; returns them per part."""
    import open_clip
    from mmaudio.ext.autoencoder.vae import VAE as TheirVAE
    from mmaudio.ext.bigvgan.models import BigVGANVocoder
    from mmaudio.ext.synchformer.synchformer import Synchformer
    from mmaudio.model.networks import MMAudio
    from omegaconf import OmegaConf

    torch.manual_seed(0)
    net = MMAudio(**NETWORK)
    randomise(net, 1, "network")
    clip = open_clip.model.CLIP(**CLIP)
    randomise(clip, 2, "clip")
    with torch.no_grad():  # only the rows the prompts look up are stored; the rest of the table is zero
        used = torch.zeros(CLIP["text_cfg"]["vocab_size"], dtype=torch.bool)
        used[tokens.unique()] = True
        clip.token_embedding.weight[~used] = 0
    synchformer = Synchformer()
    randomise(synchformer, 3, "synchformer")
    vae = TheirVAE(**VAE)
    randomise(vae, 4, "vae")
    with torch.no_grad():
        vae.decoder.learnable_gain.fill_(0.4)
        vae.encoder.learnable_gain.fill_(-0.2)
    generator = BigVGANVocoder(OmegaConf.create(VOCODER))
    randomise(generator, 5, "vocoder")
    states = {"network": net.state_dict(), "clip": clip.state_dict(), "synchformer": synchformer.state_dict(),
              "vae": vae.state_dict(), "vocoder": published_spelling(generator.state_dict())}
    states = {part: {k: v.detach().clone().contiguous() for k, v in state.items()} for part, state in states.items()}
    for part, relative in FILES.items():
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"generator": states[part]} if part == "vocoder" else states[part], path)
    OmegaConf.save(OmegaConf.create(VOCODER), folder / "bigvgan_vocoder.yml")
    return states


# ---- running demo.py ----

def patch_sizes(folder: Path, eval_utils, demo) -> None:
    """Their factories and config loads at the tiny sizes (see the docstring)."""
    import functools

    import open_clip
    from mmaudio.ext.autoencoder import autoencoder
    from mmaudio.ext.autoencoder.vae import VAE as TheirVAE
    from mmaudio.ext.synchformer import motionformer
    from mmaudio.model.networks import MMAudio
    from mmaudio.model.utils import features_utils
    from omegaconf import OmegaConf

    class TinyOmegaConf:
        @staticmethod
        def load(path):
            config = OmegaConf.load(path)
            for key, value in SYNCHFORMER.items():
                config.VIT[key] = value
            return config

    def create_model_from_pretrained(name, return_transform=True):
        assert name == "hf-hub:apple/DFN5B-CLIP-ViT-H-14-384" and not return_transform
        model = open_clip.model.CLIP(**CLIP)
        model.load_state_dict(torch.load(folder / FILES["clip"], weights_only=True))
        return model.eval()

    motionformer.OmegaConf = TinyOmegaConf
    features_utils.create_model_from_pretrained = create_model_from_pretrained
    autoencoder.get_my_vae = lambda mode: TheirVAE(**VAE) if mode == "16k" else None
    autoencoder.BigVGAN = functools.partial(autoencoder.BigVGAN, config_path=str(folder / "bigvgan_vocoder.yml"))
    demo.get_my_mmaudio = lambda name: MMAudio(**NETWORK) if name == "tiny" else None
    tiny = eval_utils.ModelConfig(model_name="tiny", model_path=folder / FILES["network"],
                                  vae_path=folder / FILES["vae"], bigvgan_16k_path=folder / FILES["vocoder"],
                                  mode="16k", synchformer_ckpt=folder / FILES["synchformer"])
    tiny.download_if_needed = lambda: None
    demo.all_model_cfg["tiny"] = tiny


def record_stages(eval_utils, demo) -> dict[str, object]:
    """Wrap their functions so each stage's output is kept."""
    from mmaudio.model.flow_matching import FlowMatching
    from mmaudio.model.networks import MMAudio
    from mmaudio.model.utils.features_utils import FeaturesUtils

    out: dict[str, object] = {}

    def wrap(owner, name, record):
        original = getattr(owner, name)

        def wrapper(*args, **kwargs):
            result = original(*args, **kwargs)
            record(result, *args, **kwargs)
            return result

        setattr(owner, name, wrapper)

    read_frames = eval_utils.read_frames

    def recording_read_frames(*args, **kwargs):
        output, all_frames, fps = read_frames(*args, **kwargs)
        out["decoded"], out["picked"] = np.stack(all_frames), output
        return output, all_frames, fps

    eval_utils.read_frames = recording_read_frames
    wrap(demo, "load_video", lambda info, *a, **k: out.update(video_info=info))
    texts = []
    wrap(FeaturesUtils, "encode_video_with_clip", lambda r, *a, **k: out.update(clip_features=r.clone()))
    wrap(FeaturesUtils, "encode_video_with_sync", lambda r, *a, **k: out.update(sync_features=r.clone()))
    wrap(FeaturesUtils, "encode_text", lambda r, *a, **k: texts.append(r.clone()))
    wrap(FeaturesUtils, "decode", lambda r, *a, **k: out.update(mel=r.clone()))
    wrap(FeaturesUtils, "vocode", lambda r, *a, **k: out.update(vocoded=r.clone()))
    wrap(FlowMatching, "to_data", lambda r, self, fn, x0: out.update(noise=x0.clone(), latent_normalized=r.clone()))
    wrap(MMAudio, "unnormalize", lambda r, *a, **k: out.update(latent=r.clone()))
    out["texts"] = texts
    return out


def picked_indices(frames: np.ndarray, decoded: np.ndarray) -> torch.Tensor:
    """Which decoded frame each frame their `read_frames` picked is (the demo clip's frames all differ)."""
    flat = decoded.reshape(len(decoded), -1)
    return torch.tensor([int(np.flatnonzero((flat == f.reshape(-1)).all(axis=1))[0]) for f in frames])


def pack(u8: torch.Tensor) -> torch.Tensor:
    return torch.frombuffer(bytearray(zlib.compress(u8.numpy().tobytes(), 9)), dtype=torch.uint8)


def stored(tensor: torch.Tensor) -> torch.Tensor:
    """float16 where that holds the value exactly."""
    if tensor.is_floating_point() and torch.equal(tensor.half().float(), tensor):
        return tensor.half().contiguous()
    return tensor.contiguous()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mmaudio", type=Path, required=True, help="a tree holding MMAudio's demo.py and mmaudio/")
    parser.add_argument("--commit", help="its MMAudio commit, when the tree has no git metadata")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    install_stand_ins()
    checkout = args.mmaudio.resolve()
    sys.path.insert(0, str(checkout))
    sys.path.insert(1, str(ROOT))
    import open_clip
    from mmaudio import eval_utils

    from engine.training.sample_video import make_demo_video

    demo = types.ModuleType("demo")  # their demo.py, as a module so its names can be patched
    demo.__file__ = str(checkout / "demo.py")
    exec(compile((checkout / "demo.py").read_text(), str(checkout / "demo.py"), "exec"), demo.__dict__)  # noqa: S102

    tokens = open_clip.get_tokenizer("ViT-H-14-378-quickgelu")([PROMPT, NEGATIVE])
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        video = make_demo_video(folder / "ball-24fps.mp4", seconds=VIDEO_SECONDS, rate=VIDEO_RATE)
        patch_sizes(folder, eval_utils, demo)
        states = write_weights(folder, tokens)
        out = record_stages(eval_utils, demo)
        sys.argv = ["demo.py", "--variant", "tiny", "--video", str(video), "--prompt", PROMPT, "--negative_prompt",
                    NEGATIVE, "--duration", str(DURATION), "--seed", str(SEED), "--full_precision",
                    "--skip_video_composite", "--output", str(folder / "output")]
        demo.main()
        video_bytes = torch.frombuffer(bytearray(video.read_bytes()), dtype=torch.uint8)

    (_, audio, sample_rate), = AudioRecorder.saved
    info = out["video_info"]
    clip_u8 = torch.round(info.clip_frames * 255).to(torch.uint8)
    sync_u8 = torch.round((info.sync_frames * 0.5 + 0.5) * 255).to(torch.uint8)
    assert torch.equal(clip_u8.float().mul_(1.0 / 255), info.clip_frames)
    assert torch.equal(Normalize([0.5] * 3, [0.5] * 3)(sync_u8.float().mul_(1.0 / 255)), info.sync_frames)
    clip_hwc, sync_hwc = clip_u8.permute(0, 2, 3, 1).contiguous(), sync_u8.permute(0, 2, 3, 1).contiguous()
    text, negative = out["texts"]
    assert torch.equal(out["vocoded"].float()[0], audio)
    tensors = {"video": video_bytes}
    for part, state in states.items():
        for key, value in state.items():
            if part == "clip" and key == "token_embedding.weight":
                rows = value.abs().sum(1).nonzero()[:, 0]
                tensors[f"{part}/{key}.rows"] = rows
                tensors[f"{part}/{key}.values"] = stored(value[rows])
            else:
                tensors[f"{part}/{key}"] = stored(value)
    tensors.update({
        "frames/clip": pack(clip_hwc), "frames/sync": pack(sync_hwc),
        "frames/clip_index": picked_indices(out["picked"][0], out["decoded"]),
        "frames/sync_index": picked_indices(out["picked"][1], out["decoded"]),
        "features/clip": out["clip_features"], "features/sync": out["sync_features"], "features/text": text,
        "features/negative_text": negative, "noise": out["noise"], "latent_normalized": out["latent_normalized"],
        "latent": out["latent"], "mel": out["mel"], "audio": audio,
    })
    tensors = {key: value.contiguous() for key, value in tensors.items()}
    commit = args.commit or subprocess.run(["git", "-C", str(checkout), "rev-parse", "HEAD"], capture_output=True,
                                           text=True, check=False).stdout.strip() or "unknown"
    import av

    metadata = {
        "mmaudio_commit": commit,
        "command": "/work/refvenv/bin/python tests/reference/mmaudio_pipeline.py --mmaudio <tree> [--commit <sha>]",
        "demo_argv": json.dumps(sys.argv[1:4] + sys.argv[5:-2]),
        "torch": torch.__version__, "av": av.__version__, "open_clip": open_clip.__version__,
        "prompt": PROMPT, "negative_prompt": NEGATIVE, "duration": str(DURATION), "seed": str(SEED),
        "sample_rate": str(sample_rate),
        "video": f"make_demo_video(seconds={VIDEO_SECONDS}, rate={VIDEO_RATE}) bytes",
        "files": json.dumps(FILES),
        "frames": json.dumps({"clip": list(clip_hwc.shape), "sync": list(sync_hwc.shape),
                              "encoding": "zlib of uint8 [T, H, W, 3]; theirs = clip / 255, (sync / 255 - 0.5) / 0.5"}),
        "sizes": json.dumps({"network": NETWORK, "clip": CLIP, "synchformer": SYNCHFORMER, "vae": VAE,
                             "vocoder": VOCODER}),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(args.out), metadata=metadata)
    for name in ("features/clip", "features/sync", "features/text", "noise", "latent", "mel", "audio"):
        t = tensors[name]
        print(f"{name}: {tuple(t.shape)} std {t.float().std():.4g}")
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB, {len(tensors)} tensors)")


if __name__ == "__main__":
    main()
