"""`foley train`: train a video-to-audio model of the VTA-LDM family from scratch, or fine-tune an installed one.

Four stages, each resumable from its last checkpoint and deterministic by seed (every step draws its batch,
timesteps, noise and augmentation from a generator seeded by (seed, step)):
  vae      an AudioLDM-style KL autoencoder on log-mel (its decoder is what inference runs; the encoder is kept
           beside the model for later training);
  vocoder  a HiFi-GAN generator on log-mel -> waveform, with mel and multi-resolution STFT losses only (no
           discriminators: two CPU cores cannot afford the adversarial stage);
  onsets   a model's onset detector, on where each window's own sound starts (binary cross-entropy);
  ldm      vision encoder + projection + UNet, as the paper: v-prediction, Min-SNR-gamma weighting, AdamW with
           linear warmup, 10 % of rows trained with the all-zeros unconditional context (for guidance), and the
           paper's ablation switches (frame position table, optical-flow features, concat augmentation, AV-Align
           data cleaning); a model with an onset detector has the UNet read the true onsets where the detector's
           go, so that it learns to sound where it is told. Fine-tuning an installed model trains low-rank
           adapters on the UNet's attention projections (LoRA) and merges them into the saved weights.
The detector reads only the motion and the UNet, in training, only the true onsets, so the two stages are
independent: either can be retrained alone (`foley train --from MODEL --steps 0` trains just the detector).
"""

import json
import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import torch
import torch.nn.functional as F
from diffusers.models.autoencoders.vae import DiagonalGaussianDistribution
from torch import nn

from engine.metrics import audio_onsets
from engine.models import Components
from engine.progress import StepInfo
from engine.training.dataset import TrainingSet
from engine.vta_ldm.checkpoint import MANIFEST_FORMAT, write_model
from engine.vta_ldm.config import ModelConfig, config_to_dict
from engine.vta_ldm.mel import log_mel
from engine.vta_ldm.sampling import get_alphas_cumprod
from engine.vta_ldm.stages import build_modules
from engine.vta_ldm.unet import aligned_features, build_unet
from engine.vta_ldm.vae import ENCODER_FILE, VAEDecoder, VAEEncoder
from engine.vta_ldm.vision_encoder import with_onset_map

logger = logging.getLogger(__name__)

STATE_FILE = "train-state-{stage}.pt"


@dataclass(frozen=True)
class Recipe:
    """One stage's training settings (defaults: the paper's choices scaled to a CPU budget)."""

    steps: int = 2000
    batch: int = 8
    lr: float = 2e-4
    warmup: int = 100
    weight_decay: float = 0.01
    seed: int = 0
    min_snr_gamma: float = 5.0
    uncond_rate: float = 0.1
    concat: bool = False  # splice two clips at a random cut between 25 % and 75 %
    lora_rank: int = 0  # > 0: fine-tune low-rank adapters on the UNet attention instead of every weight
    cosine: bool = False  # after the warmup the rate falls to zero along a half cosine (else it stays)
    checkpoint_every: int = 200
    keep_every: int = 0  # > 0: also keep the state of every this many steps (train-state-<stage>-step<N>.pt)
    kl_weight: float = 1e-4
    crop_frames: int = 32  # vae and vocoder train on random crops of this many mel frames


class VAETrainer(nn.Module):
    """The whole KL autoencoder for training: the encoder side and the model's inference decoder."""

    def __init__(self, config: ModelConfig, decoder: VAEDecoder):
        super().__init__()
        self.encoder = VAEEncoder(config.vae)
        self.vae = decoder

    def posterior(self, mel: torch.Tensor) -> DiagonalGaussianDistribution:
        return self.encoder(mel)

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        return self.vae.decoder(self.vae.post_quant_conv(latents))[:, 0]


class LoRALinear(nn.Module):
    """y = W x + (alpha / r) B A x with A random and B zero at the start, so training starts from the model."""

    def __init__(self, base: nn.Linear, rank: int, alpha: float | None = None):
        super().__init__()
        self.base = base
        self.scale = (alpha or rank) / rank
        self.down = nn.Parameter(torch.randn(rank, base.in_features) / math.sqrt(base.in_features))
        self.up = nn.Parameter(torch.zeros(base.out_features, rank))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + F.linear(F.linear(x, self.down), self.up) * self.scale

    def merged(self) -> nn.Linear:
        """The plain layer with the adapter folded into its weight."""
        self.base.weight.data += self.scale * self.up.data @ self.down.data
        return self.base


LORA_TARGETS = ("to_q", "to_k", "to_v", "to_out.0")


def add_lora(unet: nn.Module, rank: int) -> list[nn.Parameter]:
    """Freeze the UNet and wrap its attention projections with adapters; returns the trainable parameters."""
    unet.requires_grad_(False)
    attentions = [module for name, module in unet.named_modules() if name.endswith((".attn1", ".attn2"))]
    trainable = []
    for attention in attentions:
        for target in LORA_TARGETS:
            parent_name, _, leaf = target.rpartition(".")
            parent = attention.get_submodule(parent_name) if parent_name else attention
            adapter = LoRALinear(getattr(parent, leaf), rank)
            setattr(parent, leaf, adapter)  # a ModuleList's item "0" is set the same way
            trainable += [adapter.down, adapter.up]
    return trainable


def merge_lora(unet: nn.Module) -> None:
    """Fold every adapter into its layer, leaving a plain UNet."""
    for module in list(unet.modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, LoRALinear):
                setattr(module, child_name, child.merged())


def _step_generator(seed: int, step: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed * 1_000_003 + step)


def _lr_at(step: int, recipe: Recipe) -> float:
    rate = recipe.lr * min(1.0, (step + 1) / max(1, recipe.warmup))
    return rate * 0.5 * (1 + math.cos(math.pi * step / recipe.steps)) if recipe.cosine else rate


def _save_state(path: Path, step: int, modules: dict[str, nn.Module], optimizer: torch.optim.Optimizer) -> None:
    state = {"step": step, "optimizer": optimizer.state_dict(),
             **{f"module.{name}": module.state_dict() for name, module in modules.items()}}
    partial = path.with_suffix(".partial")
    torch.save(state, partial)
    os.replace(partial, path)


def _run(stage: str, modules: dict[str, nn.Module], parameters: list[nn.Parameter], loss_at: Callable,
         recipe: Recipe, work: Path, progress: Callable | None) -> list[float]:
    """The loop every stage shares: AdamW with warmup, resumable from `work/train-state-<stage>.pt`."""
    optimizer = torch.optim.AdamW(parameters, lr=recipe.lr, weight_decay=recipe.weight_decay)
    work.mkdir(parents=True, exist_ok=True)
    state_path = work / STATE_FILE.format(stage=stage)
    first = 0
    if state_path.is_file():
        state = torch.load(state_path, weights_only=True)
        for name, module in modules.items():
            module.load_state_dict(state[f"module.{name}"])
        optimizer.load_state_dict(state["optimizer"])
        first = state["step"]
        logger.info("%s: resuming at step %d from %s", stage, first, state_path)
    for module in modules.values():
        module.train()
    started = time.monotonic()
    losses = []
    for step in range(first, recipe.steps):
        for group in optimizer.param_groups:
            group["lr"] = _lr_at(step, recipe)
        loss = loss_at(_step_generator(recipe.seed, step))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(parameters, 1.0)
        optimizer.step()
        losses.append(float(loss.detach()))
        if (step + 1) % recipe.checkpoint_every == 0 or step + 1 == recipe.steps:
            _save_state(state_path, step + 1, modules, optimizer)
        if recipe.keep_every and (step + 1) % recipe.keep_every == 0:  # to choose a step by measurement later
            _save_state(state_path.with_name(f"{state_path.stem}-step{step + 1}.pt"), step + 1, modules, optimizer)
        if progress is not None:  # the step, with the time left at the pace so far, and its loss
            left = (recipe.steps - step - 1) * (time.monotonic() - started) / (step + 1 - first)
            progress(StepInfo(stage, step + 1, recipe.steps, eta=left), losses[-1])
    for module in modules.values():
        module.eval()
    return losses


def mels_of(audio: torch.Tensor, config: ModelConfig) -> torch.Tensor:
    return log_mel(audio, config.mel_frames, config.vocoder.num_mels, config.sample_rate)


STAGE_RECIPES = {  # per stage defaults, measured on the starter model (2 CPU cores)
    "vae": Recipe(steps=1500, lr=5e-4, crop_frames=96),
    "vocoder": Recipe(steps=3000, lr=5e-4, crop_frames=32),
    "onsets": Recipe(steps=1500, batch=16, lr=2e-3, cosine=True),
    "ldm": Recipe(steps=2400, lr=4e-4),
}


def _crops(generator: torch.Generator, recipe: Recipe, rows: int, frames: int) -> list[tuple[int, int]]:
    """`recipe.batch` random (row, first mel frame) pairs for crops of `recipe.crop_frames`."""
    picked = torch.randint(rows, (recipe.batch,), generator=generator)
    starts = torch.randint(frames - recipe.crop_frames + 1, (recipe.batch,), generator=generator)
    return [(int(r), int(s)) for r, s in zip(picked, starts)]


def train_vae(mels: torch.Tensor, trainer: VAETrainer, recipe: Recipe, work: Path, progress=None) -> list[float]:
    """L1 reconstruction of log-mel plus a small KL term, on random crops (the autoencoder is convolutional).
    A new decoder starts with its output bias at the mean log-mel (Adam would need thousands of steps to walk
    there from zero)."""
    if not (work / STATE_FILE.format(stage="vae")).is_file():
        with torch.no_grad():
            trainer.vae.decoder.conv_out.bias.fill_(float(mels.mean()))

    def loss_at(generator: torch.Generator) -> torch.Tensor:
        crop = recipe.crop_frames
        batch = torch.stack([mels[r, s:s + crop] for r, s in _crops(generator, recipe, len(mels), mels.shape[1])])
        posterior = trainer.posterior(batch)
        latents = posterior.mean + posterior.std * torch.randn(posterior.mean.shape, generator=generator)
        return F.l1_loss(trainer.decode(latents), batch) + recipe.kl_weight * posterior.kl().mean() / latents[0].numel()

    return _run("vae", {"vae": trainer}, list(trainer.parameters()), loss_at, recipe, work, progress)


@torch.no_grad()
def latents_of(trainer: VAETrainer, mels: torch.Tensor) -> torch.Tensor:
    """Posterior means, in chunks (the LDM is trained on these, scaled to unit variance)."""
    return torch.cat([trainer.posterior(part).mean for part in mels.split(32)])


def stft_loss(fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """Multi-resolution STFT loss (Yamamoto et al. 2020): spectral convergence + log magnitude, 3 resolutions."""
    total = fake.new_zeros(())
    for n_fft, hop in ((512, 128), (1024, 256), (256, 64)):
        window = torch.hann_window(n_fft)
        a, b = (torch.stft(x, n_fft, hop, n_fft, window, return_complex=True).abs().clamp(min=1e-7) for x in (fake, real))
        total = total + torch.linalg.norm(b - a) / torch.linalg.norm(b) + F.l1_loss(a.log(), b.log())
    return total


def train_vocoder(audio: torch.Tensor, vocoder: nn.Module, config: ModelConfig, recipe: Recipe, work: Path,
                  progress=None) -> list[float]:
    """HiFi-GAN generator on random crops: mel L1 (weight 45, as HiFi-GAN) + multi-resolution STFT."""
    hop, crop = config.vocoder.hop_length, recipe.crop_frames
    mels = mels_of(audio, config)

    def loss_at(generator: torch.Generator) -> torch.Tensor:
        crops = _crops(generator, recipe, len(audio), config.mel_frames)
        mel = torch.stack([mels[r, s:s + crop] for r, s in crops])
        real = torch.stack([audio[r, s * hop:(s + crop) * hop] for r, s in crops])
        fake = vocoder(mel)[:, : real.shape[1]]
        fake_mel = log_mel(fake, crop, config.vocoder.num_mels, config.sample_rate)
        return 45 * F.l1_loss(fake_mel, mel) / 10 + stft_loss(fake, real)

    return _run("vocoder", {"vocoder": vocoder}, list(vocoder.parameters()), loss_at, recipe, work, progress)


def train_onsets(dataset: TrainingSet, vision: nn.Module, config: ModelConfig, recipe: Recipe, work: Path,
                 progress=None) -> list[float]:
    """The onset detector of `vision` alone, on the onsets of each window's own sound (`onset_targets`), binary
    cross-entropy; half the batches are mirrored left to right (an impact seen in a mirror is still one)."""
    detector, grid = vision.onsets, config.vision.onset_grid
    targets = onset_targets(dataset.audio, config)

    def loss_at(generator: torch.Generator) -> torch.Tensor:
        rows = torch.randint(len(dataset), (recipe.batch,), generator=generator)
        cells = dataset.cells[rows]
        if torch.rand((), generator=generator) < 0.5:
            cells = mirrored(cells, grid)
        return F.binary_cross_entropy_with_logits(detector(cells, grid), targets[rows])

    return _run("onsets", {"onsets": detector}, list(detector.parameters()), loss_at, recipe, work, progress)


def mirrored(cells: torch.Tensor, grid: int) -> torch.Tensor:
    """Detector cells [..., 4 * grid**2] of the picture mirrored left to right: columns reversed, x flow negated."""
    motion = cells.unflatten(-1, (4, grid, grid)).flip(-1)
    return torch.cat([-motion[..., :1, :, :], motion[..., 1:, :, :]], dim=-3).flatten(-3)


def splice(frames: torch.Tensor, latents: torch.Tensor, flow: torch.Tensor | None, onsets: torch.Tensor | None,
           config: ModelConfig, generator: torch.Generator):
    """Concat augmentation: every row continues with the next row's clip after a cut between 25 % and 75 %
    (frames, their optical flow, the latents and the onset targets cut at the same moment)."""
    count = frames.shape[1]
    cut = int(torch.randint(count // 4, 3 * count // 4 + 1, (1,), generator=generator))
    latent_cut = int(cut * config.latent_rate / config.frame_rate)
    frames = torch.cat([frames[:, :cut], frames.roll(1, 0)[:, cut:]], dim=1)
    latents = torch.cat([latents[:, :, :latent_cut], latents.roll(1, 0)[:, :, latent_cut:]], dim=2)
    if flow is not None:
        flow = torch.cat([flow[:, :cut], flow.roll(1, 0)[:, cut:]], dim=1)
        flow[:, cut] = 0  # no motion is measured across the splice
    if onsets is not None:  # per video frame, like the frames
        onsets = torch.cat([onsets[:, :cut], onsets.roll(1, 0)[:, cut:]], dim=1)
    return frames, latents, flow, onsets


def onset_targets(audio: torch.Tensor, config: ModelConfig) -> torch.Tensor:
    """Per window, per video frame: 1 where the sound has an onset (the detector `foley eval` scores with),
    0.5 on the frames either side (the ±1 frame the score allows), else 0 -> [N, frames]."""
    count = int(config.window_seconds * config.frame_rate)
    targets = torch.zeros(len(audio), count)
    for row, sound in enumerate(audio.numpy()):
        for onset in audio_onsets(sound, config.sample_rate):
            frame = int(round(onset * config.frame_rate))
            for near, value in ((frame - 1, 0.5), (frame, 1.0), (frame + 1, 0.5)):
                if 0 <= near < count:
                    targets[row, near] = max(float(targets[row, near]), value)
    return targets


def train_ldm(dataset: TrainingSet, latents: torch.Tensor, modules: dict[str, nn.Module], config: ModelConfig,
              recipe: Recipe, work: Path, progress=None) -> list[float]:
    """`modules["vision"]` (vision encoder + projection) and `modules["unet"]` on v-prediction with Min-SNR-gamma
    weights (Hang et al. 2023: for v, w = min(SNR, gamma) / (SNR + 1)). With `recipe.lora_rank` only UNet attention
    adapters train. In a model with an onset detector (`vision.onset_kernel`) the UNet reads the true sound's onsets
    in the tokens' onset channel, so it learns to sound where it is told; the detector is not trained here
    (`train_onsets`)."""
    vision, unet = modules["vision"], modules["unet"]
    alphas = get_alphas_cumprod(config.scheduler)
    if recipe.lora_rank:
        vision.requires_grad_(False)
        parameters = add_lora(unet, recipe.lora_rank)
    else:
        parameters = [*(p for name, p in vision.named_parameters() if not name.startswith("onsets.")),
                      *unet.parameters()]
    detecting = bool(config.vision.onset_kernel)
    onsets = onset_targets(dataset.audio, config) if detecting else None

    def loss_at(generator: torch.Generator) -> torch.Tensor:
        rows = torch.randint(len(dataset), (recipe.batch,), generator=generator)
        frames, x0 = dataset.frames[rows], latents[rows]
        flow = dataset.flow[rows] if dataset.flow is not None else None
        target_onsets = onsets[rows] if onsets is not None else None
        if recipe.concat:
            frames, x0, flow, target_onsets = splice(frames, x0, flow, target_onsets, config, generator)
        context = vision.tokens(frames.permute(0, 1, 4, 2, 3).float() / 255, flow)
        if detecting:
            context = with_onset_map(context, target_onsets)
        keep = (torch.rand(recipe.batch, generator=generator) >= recipe.uncond_rate).float()
        context = context * keep[:, None, None]  # dropped rows learn the all-zeros unconditional context
        t = torch.randint(config.scheduler.num_train_timesteps, (recipe.batch,), generator=generator)
        a = alphas[t][:, None, None, None]
        noise = torch.randn(x0.shape, generator=generator)
        noisy = a.sqrt() * x0 + (1 - a).sqrt() * noise
        target = a.sqrt() * noise - (1 - a).sqrt() * x0
        aligned = aligned_features(context, config)
        inputs = noisy if aligned is None else torch.cat([noisy, aligned], dim=1)
        predicted = unet(inputs, t, encoder_hidden_states=context).sample
        snr = alphas[t] / (1 - alphas[t])
        weight = snr.clamp(max=recipe.min_snr_gamma) / (snr + 1)
        return (weight * (predicted - target).pow(2).mean(dim=(1, 2, 3))).mean()

    losses = _run("ldm", {"vision": vision, "unet": unet}, parameters, loss_at, recipe, work, progress)
    if recipe.lora_rank:
        merge_lora(unet)
    return losses


def train_model(dataset: TrainingSet, config: ModelConfig, work: Path, recipes: dict[str, Recipe],
                base: Components | None = None, encoder_state: dict | None = None, progress=None) -> dict:
    """Run the stages: from scratch (all), or on top of `base` (its VAE and vocoder kept, the onset detector and
    the LDM trained further). Returns the stages, the VAE encoder state, the scale factor and the losses."""
    if config.vision.onset_kernel and not config.unet.aligned_channels:
        raise ValueError("an onset detector writes into the last frame-aligned channel: it needs a model with them "
                         "(aligned_channels > 0).")
    with torch.random.fork_rng():
        torch.manual_seed(recipes["ldm"].seed)
        stages = build_modules(config) if base is None else replace(base.stages)
        # trained with diffusers' own attention; the same weights go behind the inference processors afterwards
        unet = rebuilt_unet(stages.unet, config, skip_zero_context=False)
        trainer = VAETrainer(config, stages.vae)
    if encoder_state is not None:
        trainer.encoder.load_state_dict(encoder_state)
    mels = mels_of(dataset.audio, config)
    losses = {}
    if base is None:
        losses["vae"] = train_vae(mels, trainer, recipes["vae"], work, progress)
        losses["vocoder"] = train_vocoder(dataset.audio, stages.vocoder, config, recipes["vocoder"], work, progress)
    elif encoder_state is None:
        raise ValueError("fine-tuning needs the base model's VAE encoder")
    if config.vision.onset_kernel and recipes["onsets"].steps:
        losses["onsets"] = train_onsets(dataset, stages.vision, config, recipes["onsets"], work, progress)
    raw = latents_of(trainer, mels)
    scale = base.scale_factor if base is not None else float(1 / raw.flatten().std())
    training = {"vision": stages.vision, "unet": unet}
    losses["ldm"] = train_ldm(dataset, raw * scale, training, config, recipes["ldm"], work, progress)
    stages.unet = rebuilt_unet(unet, config)
    return {"stages": stages, "encoder": trainer.encoder.state_dict(), "scale_factor": scale, "losses": losses}


def rebuilt_unet(source: nn.Module, config: ModelConfig, *, skip_zero_context: bool = True) -> nn.Module:
    """A UNet with `source`'s weights behind the chosen attention processors: the inference ones (zero-context
    skip, cached K/V) or diffusers' own, which training needs."""
    unet = build_unet(config.unet, skip_zero_context=skip_zero_context)
    unet.load_state_dict(source.state_dict())
    return unet


def save_trained(models_dir: Path, name: str, config: ModelConfig, result: dict, licences: list[dict],
                 facts: dict) -> Path:
    """Install a trained model like an imported one (weights + manifest), its VAE encoder beside it."""
    tensors = {f"{part}.{key}": value.detach().contiguous() for part, module in result["stages"].parts().items()
               for key, value in module.state_dict().items()}
    manifest = {"format": MANIFEST_FORMAT, "name": name, "preset": config.name, "config": config_to_dict(config),
                "trained": True, "licences": licences, "scale_factor": result["scale_factor"],
                "trained_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **facts}
    encoder = {k: v.detach().contiguous() for k, v in result["encoder"].items()}
    return write_model(models_dir, name, tensors, manifest, {ENCODER_FILE: encoder})


def training_source(folder: Path) -> str:
    """What a model was trained on, for its manifest: the folder's name and, for a `foley synth` set, its scene
    kinds. Never a machine path (manifests are shipped and shared)."""
    kinds = set()
    for path in folder.glob("*.json"):
        labels = json.loads(path.read_text())
        if labels.get("format") == "FoleyLabels.1":
            kinds.add(labels.get("kind", "drop"))
    return f"{folder.name} (foley synth, scene kinds {', '.join(sorted(kinds))})" if kinds else folder.name


GROWN_BRANCHES = ("motion.", "onsets.")  # the vision parts a trained model can grow: event features, onset detector


def grown(base: Components, config: ModelConfig) -> Components:
    """`base` rebuilt as `config`, which may only add or change a branch (`vision.motion_kernel`, the onset
    detector's `vision.onset_*`): every other weight of the base is kept, and a branch the base has in the same
    shape too; a new or changed branch starts at zero (an event branch adds nothing, a detector marks no onsets)."""
    stages = build_modules(config)
    for name, module in stages.parts().items():
        ours, theirs = module.state_dict(), getattr(base.stages, name).state_dict()
        foreign = [key for key in ours if not key.startswith(GROWN_BRANCHES) and
                   (key not in theirs or theirs[key].shape != ours[key].shape)]
        foreign += [key for key in theirs if key not in ours and not key.startswith(GROWN_BRANCHES)]
        if foreign:
            raise ValueError(f"'{base.name}' cannot grow into this architecture: its {name} differs in "
                             f"{', '.join(foreign[:3])}; train from scratch instead.")
        for branch in GROWN_BRANCHES:  # a branch is kept whole or not at all
            mine = {key for key in ours if key.startswith(branch)}
            given = {key for key in theirs if key.startswith(branch)}
            if mine != given or any(theirs[key].shape != ours[key].shape for key in mine):
                theirs = {key: value for key, value in theirs.items() if not key.startswith(branch)}
        module.load_state_dict(theirs, strict=False)
    return replace(base, config=config, stages=stages)


def with_switches(config: ModelConfig, *, pe: bool, flow_grid: int, aligned: int) -> ModelConfig:
    """The config with the paper's architecture switches set (frame PE, optical-flow grid) and ours (aligned)."""
    vision = replace(config.vision, frame_pe=pe, flow_grid=flow_grid)
    return replace(config, vision=vision, unet=replace(config.unet, aligned_channels=aligned))
