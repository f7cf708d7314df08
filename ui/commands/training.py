"""`foley synth`, `foley train` and `foley eval`: the synthetic set, training and measuring models."""

from __future__ import annotations

import argparse
import json
import logging
from dataclasses import asdict, replace
from pathlib import Path

from engine.config import SAMPLING_PRESETS
from engine.vta_ldm.config import PRESETS
from ui.commands.common import ProgressBar


def cmd_synth(args: argparse.Namespace) -> None:
    """Write a synthetic foley set: video, sound and exact labels per clip."""
    from engine.progress import StepInfo
    from engine.training.synthetic import load_backgrounds, make_clip, plan, write_clip

    out = Path(args.output)
    clips = plan(args.split, args.count, args.kinds.split(",") if args.kinds else None)
    backgrounds = load_backgrounds(Path(args.backgrounds)) if args.backgrounds else None
    bar = ProgressBar(job=False)
    for number, (seed, kind) in enumerate(clips, start=1):
        write_clip(make_clip(seed, seconds=args.seconds, kind=kind, backgrounds=backgrounds), out)
        bar(StepInfo("synth", number, len(clips)))
    bar.close()
    kinds = sorted({kind for _, kind in clips})
    print(f"{len(clips)} {args.split} clips in {out} (scene kinds: {', '.join(kinds)})")


def cmd_eval(args: argparse.Namespace) -> None:
    """Score a model (or, with --reference, the set's own sound) on a labelled synthetic set; or score WAVs
    against a clip."""
    if Path(args.set).is_file() or args.wavs:
        _eval_clip(Path(args.set), [Path(w) for w in args.wavs], args.model)
        return
    import numpy as np
    import soundfile

    from engine.models import best_installed, open_model
    from engine.training.evaluate import evaluate, model_audio

    if args.reference:
        def audio_for(video: Path, labels: dict) -> np.ndarray:
            return soundfile.read(str(video.with_suffix(".wav")), dtype="float32")[0]
    else:
        components = open_model(args.model or best_installed(), args.device, args.precision)
        sampling = SAMPLING_PRESETS[args.preset]
        audio_for = model_audio(components, replace(sampling, steps=args.steps) if args.steps else sampling)
    result = evaluate(Path(args.set), audio_for)
    what = "reference sound" if args.reference else f"model {args.model or best_installed()}"
    print(f"{what} on {result['clips']} clips: onset accuracy (±1 frame) {result['onset_accuracy']:.3f}, "
          f"false onsets per 4 s {result['false_onsets_per_4s']:.2f}, AV-Align {result['av_align']:.3f}, "
          "Fréchet distance (mel features) "
          + (f"{result['frechet_mel']:.2f}" if result["frechet_mel"] is not None else "n/a (needs 3 clips)"))
    if len(result["per_kind"]) > 1:
        for kind, scores in result["per_kind"].items():
            print(f"  {kind}: {scores['clips']} clips, onset accuracy {scores['onset_accuracy']:.3f}, "
                  f"false onsets per 4 s {scores['false_onsets_per_4s']:.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))


def _eval_clip(video: Path, wavs: list[Path], model: str | None) -> None:
    """Print each WAV's sync score against `video`, the picture sampled as `model` sees it (the score the
    sidecars carry); a WAV with a sidecar is placed at its range's start, others at 0 s."""
    if not wavs or not video.is_file():
        raise ValueError("give a video file and the WAVs to score: foley eval CLIP.mp4 VARIANT.wav ... "
                         "(or a folder written by `foley synth`).")
    from engine.models import best_installed, model_config
    from engine.training.evaluate import clip_sync_score

    config = model_config(model or best_installed())
    for wav in wavs:
        print(f"{clip_sync_score(video, wav, config.frame_rate, config.vision.image_size):.3f}  {wav}")


def cmd_train(args: argparse.Namespace) -> None:
    import numpy as np
    import torch
    from safetensors.torch import load_file

    from engine.models import load_model, model_folder, models_dir
    from engine.training.dataset import clean, load_training_set
    from engine.training.train import STAGE_RECIPES, grown, save_trained, train_model, training_source, with_switches
    from engine.vta_ldm.vae import ENCODER_FILE

    if args.threads:
        torch.set_num_threads(args.threads)
    logging.getLogger("engine.training").setLevel(logging.INFO)  # what is read and kept, without --verbose
    base = load_model(args.base) if args.base else None
    config = base.config if base else PRESETS[args.preset]
    if base is None:
        config = with_switches(config, pe=not args.no_pe,
                               flow_grid=config.vision.flow_grid if args.flow is None else args.flow,
                               aligned=config.unet.aligned_channels if args.aligned is None else args.aligned)
    if any(value is not None and value < 1 for value in (args.onset_grid, args.onset_width)):
        raise ValueError("--onset-grid and --onset-width take a whole number of at least 1 (the starter preset's "
                         "detector: 8 and 24); to train without a detector use --onsets 0.")
    branches = {"motion_kernel": args.motion, "onset_kernel": args.onsets, "onset_grid": args.onset_grid,
                "onset_width": args.onset_width, "onset_threshold": args.onset_threshold}
    branches = {name: value for name, value in branches.items() if value is not None}
    if any(getattr(config.vision, name) != value for name, value in branches.items()):
        config = replace(config, vision=replace(config.vision, **branches))
        base = grown(base, config) if base else None
    common = {"seed": args.seed, "checkpoint_every": args.checkpoint_every, "keep_every": args.keep_every}
    if args.batch:
        common["batch"] = args.batch
    recipes = {stage: replace(recipe, **common) for stage, recipe in STAGE_RECIPES.items()}
    recipes["vae"] = replace(recipes["vae"], steps=args.vae_steps or recipes["vae"].steps)
    recipes["vocoder"] = replace(recipes["vocoder"], steps=args.vocoder_steps or recipes["vocoder"].steps)
    recipes["ldm"] = replace(recipes["ldm"], steps=recipes["ldm"].steps if args.steps is None else args.steps,
                             lr=args.lr or recipes["ldm"].lr, warmup=args.warmup, concat=args.concat,
                             lora_rank=args.lora if base else 0)
    if args.onset_steps is not None and not config.vision.onset_kernel:
        raise ValueError("--onset-steps trains the onset detector, and this model has no detector: add one with "
                         "--onsets KERNEL (5 in the starter preset), or leave --onset-steps out.")
    lora = recipes["ldm"].lora_rank > 0  # LoRA keeps the vision side, detector too, as it is unless asked
    onset_steps = args.onset_steps if args.onset_steps is not None else 0 if lora else recipes["onsets"].steps
    recipes["onsets"] = replace(recipes["onsets"], steps=onset_steps)
    encoder = None
    if base is not None:
        encoder_path = model_folder(args.base) / ENCODER_FILE
        if not encoder_path.is_file():
            raise ValueError(f"'{args.base}' was installed without its VAE encoder ({encoder_path}), which "
                             "fine-tuning needs to encode your sound. Train it with `foley train` or import a "
                             "snapshot that includes the encoder.")
        encoder = load_file(str(encoder_path))
    work = Path(args.work) if args.work else models_dir() / f".train-{args.name}"
    dataset = load_training_set(Path(args.data), config, args.limit, cache=work / "training-set.pt")
    if args.clean is not None:
        dataset = clean(dataset, config.frame_rate, config.sample_rate, args.clean)
    bar = ProgressBar(job=False)
    try:
        result = train_model(dataset, config, work, recipes, base=base, encoder_state=encoder,
                             progress=bar.training_step)
    finally:
        bar.close()
    licences = list(base.licences) if base else [  # weights trained from scratch on the user's data are the user's
        {"component": "all", "licence": "yours: trained with `foley train` on your own data", "source": "foley train"}]
    facts = {"training": {"data": training_source(Path(args.data)), "windows": len(dataset), "base": args.base,
                          "recipes": {k: asdict(v) for k, v in recipes.items()},
                          "final_loss": {k: float(np.mean(v[-50:])) for k, v in result["losses"].items() if v}}}
    folder = save_trained(models_dir(), args.name, config, result, licences, facts)
    print(f"installed '{args.name}' in {folder}")


def add_commands(sub) -> None:
    synth = sub.add_parser("synth", help="write a synthetic foley set with exact event labels (for training)")
    synth.add_argument("output")
    synth.add_argument("--count", type=int, default=100)
    synth.add_argument("--split", choices=["train", "held-out"], default="train")
    synth.add_argument("--seconds", type=float, default=4.0)
    synth.add_argument("--kinds", help="comma-separated scene kinds, in turn (default: every kind the split allows; "
                       "the training split never takes the held-out kinds)")
    synth.add_argument("--backgrounds", metavar="DIR", help="a folder of videos whose frames become backgrounds")
    synth.set_defaults(func=cmd_synth)

    evaluation = sub.add_parser("eval", help="score foley: a labelled synthetic set (onsets, AV-Align, Fréchet), or "
                                "WAVs against a clip (sync score)")
    evaluation.add_argument("set", help="a folder written by `foley synth`, or a video clip to score WAVs against")
    evaluation.add_argument("wavs", nargs="*", metavar="WAV", help="with a clip: the WAVs to score (sync score 0-1)")
    evaluation.add_argument("--reference", action="store_true", help="score the set's own sound (the upper bound)")
    evaluation.add_argument("--model", help="installed model name, or 'builtin' (default: best installed)")
    evaluation.add_argument("--preset", choices=list(SAMPLING_PRESETS), default="fast")
    evaluation.add_argument("--steps", type=int, help="override the preset's steps")
    evaluation.add_argument("--device", default="auto")
    evaluation.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16"],
                            help="UNet precision, as generate's (auto: bf16 on CPUs with bf16 units); fp32 compares "
                                 "with scores measured before auto meant bf16")
    evaluation.add_argument("--json", help="also write per-clip results to this file")
    evaluation.set_defaults(func=cmd_eval)

    train = sub.add_parser("train", help="train a model on videos with their sound, or fine-tune an installed one")
    train.add_argument("data", help="folder of videos with their sound (a same-name .wav beside a video is used)")
    train.add_argument("--name", default="starter", help="install the result under this name")
    train.add_argument("--preset", choices=list(PRESETS), default="starter", help="model size to train from scratch")
    train.add_argument("--from", dest="base", metavar="MODEL", help="fine-tune this installed model (LoRA)")
    train.add_argument("--lora", type=int, default=8, help="LoRA rank when fine-tuning (default 8)")
    train.add_argument("--steps", type=int, help="LDM (vision + UNet) steps (default: the LDM recipe's; 0 with --from "
                       "keeps the base's LDM, to train only its onset detector)")
    train.add_argument("--vae-steps", type=int, help="default: the VAE recipe's")
    train.add_argument("--vocoder-steps", type=int, help="default: the vocoder recipe's")
    train.add_argument("--batch", type=int, help="every stage's batch (default: each stage's own: 8, the onset "
                       "detector's 16)")
    train.add_argument("--lr", type=float, help="LDM learning rate (default: the LDM recipe's)")
    train.add_argument("--warmup", type=int, default=100)
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--no-pe", action="store_true", help="ablation: no sinusoidal frame position table")
    train.add_argument("--flow", type=int, metavar="GRID",
                       help="optical-flow features on a GRIDxGRID layout (0: none; default: the preset's)")
    train.add_argument("--aligned", type=int, help="frame-aligned conditioning channels (0: cross-attention only)")
    train.add_argument("--motion", type=int, metavar="KERNEL",
                       help="event features (camera-compensated flow, its change, picture change) through a "
                            "temporal convolution of KERNEL frames (0: none; default: the preset's). With --from, "
                            "the model grows the branch, starting at zero, and keeps every other weight")
    train.add_argument("--concat", action="store_true", help="concat augmentation (splice two clips at 25-75 %%)")
    train.add_argument("--onsets", type=int, metavar="KERNEL",
                       help="an onset detector (convolutions of KERNEL frames and 3x3 cells over the motion in each "
                            "cell of a grid) that tells the UNet where sounds start (0: none; default: the "
                            "preset's). With --from, the model grows it, marking no onsets at first")
    train.add_argument("--onset-grid", type=int, metavar="CELLS",
                       help="the onset detector's grid: CELLS x CELLS cells (default 8)")
    train.add_argument("--onset-width", type=int, metavar="CHANNELS",
                       help="the onset detector's channels per cell in each convolution (default 24)")
    train.add_argument("--onset-steps", type=int, metavar="N",
                       help="onset detector steps (default: its recipe's, 1500, or 0 with LoRA; 0 keeps the base's "
                            "detector)")
    train.add_argument("--onset-threshold", type=float, metavar="P",
                       help="the detector's probability above which a peak is an onset (default 0.5; choose it on "
                            "validation clips with bench/onset_detector.py: the built-in model uses 0.3)")
    train.add_argument("--clean", type=float, metavar="AV_ALIGN", help="drop training windows below this AV-Align")
    train.add_argument("--limit", type=int, help="use only the first N videos")
    train.add_argument("--work", help="checkpoint folder (an interrupted run resumes from it)")
    train.add_argument("--checkpoint-every", type=int, default=200)
    train.add_argument("--keep-every", type=int, default=0, metavar="N",
                       help="also keep the state of every N steps in the checkpoint folder (train-state-ldm-stepN.pt); "
                            "to install one, copy it into an empty --work folder as train-state-ldm.pt and run the "
                            "same command with --steps N")
    train.add_argument("--threads", type=int, help="CPU threads (default: torch's choice)")
    train.set_defaults(func=cmd_train)
