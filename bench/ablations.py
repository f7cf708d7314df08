"""The paper's ablations on the starter model: the LDM (vision encoder + projection + UNet) trained from scratch
with one switch at a time against the starter's recipe, every row with the same step budget, batch and seed, on
the same training windows, sharing the VAE and vocoder of an installed trained model; scored on a held-out
synthetic set (make it of the held-out scene kinds: `foley synth DIR --split held-out --kinds throw,collide`).

Usage (sets from `foley synth`; the base model from `foley train`):
  python bench/ablations.py --train DIR --held-out DIR [--base starter] [--steps 400] [--out docs/ablations.md]
"""

import argparse
import logging
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch
from safetensors.torch import load_file

from engine.config import SAMPLING_PRESETS
from engine.models import load_model, model_folder, models_dir
from engine.training.dataset import clean, load_training_set, with_motion
from engine.training.evaluate import evaluate, model_audio
from engine.training.train import (
    STAGE_RECIPES,
    Recipe,
    VAETrainer,
    latents_of,
    mels_of,
    rebuilt_unet,
    train_ldm,
    train_onsets,
    with_switches,
)
from engine.vta_ldm.stages import build_modules
from engine.vta_ldm.unet import build_unet
from engine.vta_ldm.vae import ENCODER_FILE

FLOW_GRID = 4
CLEAN_THRESHOLD = 0.2

MOTION_KERNEL = 5
ONSET_KERNEL = 5
# row -> (frame PE, flow grid, aligned channels, event-feature kernel, concat augmentation, cleaning, onset detector
# kernel)
ROWS = {
    "starter recipe (PE, flow, aligned, event features)": (True, FLOW_GRID, 16, MOTION_KERNEL, False, False, 0),
    "- event features": (True, FLOW_GRID, 16, 0, False, False, 0),
    "- PE": (False, FLOW_GRID, 16, MOTION_KERNEL, False, False, 0),
    "- flow (and the event features built on it)": (True, 0, 16, 0, False, False, 0),
    "+ concat augmentation": (True, FLOW_GRID, 16, MOTION_KERNEL, True, False, 0),
    "+ AV-Align cleaning": (True, FLOW_GRID, 16, MOTION_KERNEL, False, True, 0),
    "+ onset detector": (True, FLOW_GRID, 16, MOTION_KERNEL, False, False, ONSET_KERNEL),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", required=True)
    parser.add_argument("--held-out", required=True)
    parser.add_argument("--base", default="starter", help="installed model whose VAE and vocoder are shared")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--limit", type=int, help="training videos to use")
    parser.add_argument("--eval-steps", type=int, default=25)
    parser.add_argument("--rows", help="comma-separated row numbers to run, from 1 in the order of ROWS (default: all)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", help="also write the table (with this command) to this markdown file")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(args.threads)

    base = load_model(args.base)
    trainer = VAETrainer(base.config, base.stages.vae)
    trainer.encoder.load_state_dict(load_file(str(model_folder(args.base) / ENCODER_FILE)))
    dataset = load_training_set(Path(args.train), base.config, args.limit)
    dataset = dataset if dataset.flow is not None else with_motion(dataset, FLOW_GRID, 0)
    latents = latents_of(trainer, mels_of(dataset.audio, base.config)) * base.scale_factor
    sampling = replace(SAMPLING_PRESETS["fast"], steps=args.eval_steps)
    table = []
    chosen = [int(n) for n in args.rows.split(",")] if args.rows else range(1, len(ROWS) + 1)
    for row, (pe, flow, aligned, motion, concat, cleaning, onset) in (list(ROWS.items())[n - 1] for n in chosen):
        started = time.monotonic()
        config = with_switches(base.config, pe=pe, flow_grid=flow, aligned=aligned)
        config = replace(config, vision=replace(config.vision, motion_kernel=motion, onset_kernel=onset))
        rows = clean(dataset, config.frame_rate, config.sample_rate, CLEAN_THRESHOLD) if cleaning else dataset
        row_latents = latents if rows is dataset else latents[[dataset.sources.index(s) for s in rows.sources]]
        if not flow:
            rows = replace(rows, flow=None)
        with torch.random.fork_rng():
            torch.manual_seed(0)
            stages = replace(build_modules(config), vae=base.stages.vae, vocoder=base.stages.vocoder)
            modules = {"vision": stages.vision, "unet": build_unet(config.unet, skip_zero_context=False)}
        recipe = Recipe(steps=args.steps, batch=args.batch, concat=concat,
                        checkpoint_every=args.steps + 1)
        with_work = Path(models_dir() / ".ablations" / f"row{len(table)}")
        if onset:  # the detector's own stage, as many steps as the LDM's
            train_onsets(rows, stages.vision, config, replace(STAGE_RECIPES["onsets"], steps=args.steps,
                                                              checkpoint_every=args.steps + 1), with_work)
            (with_work / "train-state-onsets.pt").unlink(missing_ok=True)
        losses = train_ldm(rows, row_latents, modules, config, recipe, with_work, progress=lambda step, loss: None)
        (with_work / "train-state-ldm.pt").unlink(missing_ok=True)  # every row starts from scratch
        stages.unet = rebuilt_unet(modules["unet"], config)
        components = replace(base, config=config, stages=stages, name=row)
        result = evaluate(Path(args.held_out), model_audio(components, sampling))
        table.append((row, len(rows), sum(losses[-50:]) / 50, result))
        print(f"{row}: onset {result['onset_accuracy']:.3f} false {result['false_onsets_per_4s']:.2f} "
              f"AV-Align {result['av_align']:.3f} "
              f"Fréchet {result['frechet_mel']:.1f} ({time.monotonic() - started:.0f} s)", file=sys.stderr)
    kinds = sorted(table[0][3]["per_kind"])
    lines = ["| row | training windows | final loss | onset accuracy (±1 frame) | "
             + "".join(f"{kind} | " for kind in kinds) + "false onsets per 4 s | AV-Align | Fréchet (mel) |",
             "|---|---|---|---|" + "---|" * len(kinds) + "---|---|---|"]
    lines += [f"| {row} | {count} | {loss:.4f} | {r['onset_accuracy']:.3f} | "
              + "".join(f"{r['per_kind'][kind]['onset_accuracy']:.3f} | " for kind in kinds)
              + f"{r['false_onsets_per_4s']:.2f} | {r['av_align']:.3f} | {r['frechet_mel']:.1f} |"
              for row, count, loss, r in table]
    text = "\n".join(lines)
    print(text)
    if args.out:
        command = "python bench/ablations.py " + " ".join(sys.argv[1:])
        Path(args.out).write_text(f"# Ablations of the starter model\n\nMade with `{command}`: each row trains the "
                                  f"LDM from scratch for {args.steps} steps of batch {args.batch} (seed 0), sharing "
                                  f"the VAE and vocoder of `{args.base}`; scored on `{args.held_out}` with "
                                  f"{sampling.sampler} {sampling.steps} steps, guidance {sampling.guidance}.\n\n"
                                  f"{text}\n")


if __name__ == "__main__":
    main()
