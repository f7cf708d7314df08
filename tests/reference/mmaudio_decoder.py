"""Reference outputs of MMAudio's VAE decoder and BigVGAN vocoders at tiny sizes, for tests/test_mmaudio_decoder.py.

Run with the reference venv (torch CPU, einops, omegaconf, huggingface_hub) against a checkout of MMAudio:

    git -C /work/.mirror/hkchengrex+MMAudio/repo worktree add /tmp/mmaudio-ref-decoder HEAD
    /work/refvenv/bin/python tests/reference/mmaudio_decoder.py --mmaudio /tmp/mmaudio-ref-decoder

(or export only the package, `git archive HEAD mmaudio | tar -x -C DIR`, and pass `--commit <sha>`).

It builds THEIR modules with a fixed seed and writes tests/fixtures/mmaudio/decoder.safetensors:
- `vae.state.*`: their whole tiny `VAE` (data_dim 80, embed_dim 4, hidden_dim 8) state dict as the published
  v1-*.pth holds it (raw MPConv weights, encoder included), `vae.latents` [B, C, T] and `vae.mel`, the output of
  `VAE.decode` after `remove_weight_norm()` (what `AutoEncoderModule.decode` runs).
- `v1.*`: their BigVGAN v1 (`mmaudio.ext.bigvgan.BigVGAN`, loaded from a `{"generator": ...}` file and a yml as
  `AutoEncoderModule` loads best_netG.pt) at our `tiny` preset; `v2.*`: their BigVGAN v2 via
  `BigVGAN.from_pretrained(<local dir>)` at our `tiny_44k` preset (no bias, clamp at the end); `snake.*`: v2 with
  plain Snake, alpha not log-scaled. Each has `<p>.state.*` (the generator in published spelling), `<p>.mel`,
  `<p>.wave`.

Parameters are redrawn from wider distributions than the training inits (which make near-silent outputs), so that
every path matters. The generator is stored in the published spelling of NVIDIA's weight norm (`weight_g`,
`weight_v`); their parametrized modules read that spelling through torch's load hook, which this run exercises.
No timm or torchvision stand-ins are needed: these modules import neither.
"""

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
from safetensors.torch import save_file

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "tests" / "fixtures" / "mmaudio" / "decoder.safetensors"

TINY_VOCODER = {
    "resblock": "1",
    "num_mels": 8,
    "upsample_rates": [4, 2],
    "upsample_kernel_sizes": [8, 4],
    "upsample_initial_channel": 16,
    "resblock_kernel_sizes": [3, 5],
    "resblock_dilation_sizes": [[1, 3, 5], [1, 3, 5]],
    "activation": "snakebeta",
    "snake_logscale": True,
}
TINY_V2 = {**TINY_VOCODER, "use_tanh_at_final": False, "use_bias_at_final": False}
TINY_SNAKE = {**TINY_V2, "activation": "snake", "snake_logscale": False}


def commit_of(checkout: Path, given: str | None) -> str:
    """The MMAudio commit of the checkout: `--commit` for an exported tree, else what git says."""
    if given:
        return given
    result = subprocess.run(["git", "-C", str(checkout), "rev-parse", "HEAD"], capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"{checkout} is not a git checkout; say which commit it is with --commit")
    return result.stdout.strip()


def published_spelling(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """torch.nn.utils.weight_norm's names (weight_g, weight_v) for torch's parametrization names."""
    renamed = {}
    for key, value in state.items():
        key = key.replace("parametrizations.weight.original0", "weight_g")
        renamed[key.replace("parametrizations.weight.original1", "weight_v")] = value.detach().clone().contiguous()
    return renamed


def randomise_vocoder(module: torch.nn.Module, logscale: bool) -> None:
    """Redraw parameters so the waveform is neither silent nor saturated."""
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name.endswith("original0"):  # weight_g: per-filter gain
                p.uniform_(0.3, 0.9)
            elif name.endswith("original1"):  # weight_v: direction only
                p.normal_()
            elif name.endswith("bias"):
                p.normal_(0.0, 0.1)
            elif name.endswith(("alpha", "beta")):
                p.copy_(0.3 * torch.randn_like(p) if logscale else 0.5 + torch.rand_like(p))


def vae_case() -> dict[str, torch.Tensor]:
    from mmaudio.ext.autoencoder.vae import VAE

    torch.manual_seed(0)
    vae = VAE(data_dim=80, embed_dim=4, hidden_dim=8).eval()
    with torch.no_grad():
        vae.decoder.learnable_gain.fill_(0.4)
        vae.encoder.learnable_gain.fill_(-0.2)
    state = {f"vae.state.{k}": v.detach().clone().contiguous() for k, v in vae.state_dict().items()}
    vae.remove_weight_norm()
    latents = torch.randn(2, 4, 6)
    with torch.inference_mode():
        mel = vae.decode(latents)
    return {**state, "vae.latents": latents, "vae.mel": mel.clone()}


def v1_case(tmp: Path) -> dict[str, torch.Tensor]:
    from mmaudio.ext.bigvgan import BigVGAN
    from mmaudio.ext.bigvgan.models import BigVGANVocoder
    from omegaconf import OmegaConf

    torch.manual_seed(1)
    config = OmegaConf.create(TINY_VOCODER)
    generator = BigVGANVocoder(config)
    randomise_vocoder(generator, logscale=True)
    state = published_spelling(generator.state_dict())
    torch.save({"generator": state}, tmp / "best_netG.pt")
    OmegaConf.save(config, tmp / "bigvgan_vocoder.yml")
    vocoder = BigVGAN(str(tmp / "best_netG.pt"), config_path=str(tmp / "bigvgan_vocoder.yml")).eval()
    mel = torch.randn(2, 8, 12) - 1.0
    wave = vocoder(mel)  # AutoEncoderModule.vocode for 16k
    return {**{f"v1.state.{k}": v for k, v in state.items()}, "v1.mel": mel, "v1.wave": wave.clone()}


def v2_case(tmp: Path, prefix: str, hparams: dict, seed: int) -> dict[str, torch.Tensor]:
    from mmaudio.ext.bigvgan_v2.bigvgan import BigVGAN
    from mmaudio.ext.bigvgan_v2.env import AttrDict

    torch.manual_seed(seed)
    generator = BigVGAN(AttrDict(dict(hparams)))
    randomise_vocoder(generator, logscale=hparams["snake_logscale"])
    state = published_spelling(generator.state_dict())
    folder = tmp / prefix
    folder.mkdir()
    torch.save({"generator": state}, folder / "bigvgan_generator.pt")
    (folder / "config.json").write_text(json.dumps(hparams))
    vocoder = BigVGAN.from_pretrained(str(folder), use_cuda_kernel=False)  # as AutoEncoderModule does for 44k
    vocoder.remove_weight_norm()
    vocoder.eval()
    mel = torch.randn(2, 8, 12) - 1.0
    with torch.inference_mode():
        wave = vocoder(mel)
    tensors = {f"{prefix}.state.{k}": v for k, v in state.items()}
    return {**tensors, f"{prefix}.mel": mel, f"{prefix}.wave": wave.clone()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mmaudio", type=Path, required=True, help="a checkout of hkchengrex/MMAudio")
    parser.add_argument("--commit", help="the MMAudio commit of an exported (non-git) checkout")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    sys.path.insert(0, str(args.mmaudio.resolve()))
    torch.set_grad_enabled(False)

    with tempfile.TemporaryDirectory() as tmp:
        tensors = {**vae_case(), **v1_case(Path(tmp)), **v2_case(Path(tmp), "v2", TINY_V2, seed=2),
                   **v2_case(Path(tmp), "snake", TINY_SNAKE, seed=3)}
    metadata = {
        "mmaudio_commit": commit_of(args.mmaudio, args.commit),
        "command": "/work/refvenv/bin/python tests/reference/mmaudio_decoder.py " + " ".join(sys.argv[1:]),
        "torch": torch.__version__,
        "vae": "mmaudio.ext.autoencoder.vae.VAE(data_dim=80, embed_dim=4, hidden_dim=8), seed 0",
        "v1": "mmaudio.ext.bigvgan.BigVGAN " + json.dumps(TINY_VOCODER) + ", seed 1",
        "v2": "mmaudio.ext.bigvgan_v2.bigvgan.BigVGAN " + json.dumps(TINY_V2) + ", seed 2",
        "snake": "mmaudio.ext.bigvgan_v2.bigvgan.BigVGAN " + json.dumps(TINY_SNAKE) + ", seed 3",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in tensors.items()}, args.out, metadata=metadata)
    for name in ("vae.mel", "v1.wave", "v2.wave", "snake.wave"):
        t = tensors[name]
        print(f"{name}: shape {tuple(t.shape)} std {t.std():.4f} |max| {t.abs().max():.4f}")
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e3:.0f} kB)")


if __name__ == "__main__":
    main()
