"""The engine's commands of `foley`: generate, demo, serve, and model management (the entry point is ui.cli)."""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import sys
import typing
from dataclasses import asdict, dataclass, fields, replace
from fractions import Fraction
from pathlib import Path

from engine.config import LEVEL_MODES, SAMPLING_PRESETS, SamplerName, SamplingConfig
from engine.serving.client import FINAL_STATES, EngineClient, EngineError, discovery_path, progress_text, read_discovery
from engine.vta_ldm.config import PRESETS

if typing.TYPE_CHECKING:
    from engine.core.sampling import StepInfo
    from engine.video import EditFrames, EditSpan, Frames

# Heavy modules (torch, diffusers, av, soundfile, the server) are imported inside the commands that use them,
# so that `foley --help` and argument errors answer at once (bench/startup.py measures it).

logger = logging.getLogger(__name__)

DEFAULT_OUTPUT = "foley-out"  # generate without a project; with one, `Foley Desk` beside the project file


def seconds(text: str) -> Fraction:
    """Parse a time in seconds ("2", "9.5", "1001/30000") exactly."""
    try:
        value = Fraction(text)
    except (ValueError, ZeroDivisionError):
        raise argparse.ArgumentTypeError(f"'{text}' is not a time in seconds (examples: 2, 9.5, 1001/30000)") from None
    return value


class ProgressBar:
    """Progress on stderr: one line redrawn in place on a terminal, a line per tenth of each stage in a log."""

    def __init__(self, job: bool = True):
        self.stream = sys.stderr
        self.interactive = self.stream.isatty()
        self.job = job  # a generation job: show its window, variants and ETA

    def __call__(self, info: StepInfo) -> None:
        shown = asdict(info) if self.job else {"stage": info.stage, "step": info.step, "total": info.total}
        line = progress_text(shown, bar=30)
        if self.interactive:
            self.stream.write(f"\r{line}   ")
        elif info.step == info.total or info.step % max(1, info.total // 10) == 0:
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.interactive:
            self.stream.write("\n")


def _announce(name: str, licences, trained: bool, sampling: SamplingConfig, seeds: tuple[int, ...]) -> None:
    from engine.models import EMBEDDED

    if not trained:
        print("note: this model is untrained (random weights): the pipeline runs end to end, but the sound means "
              "nothing.", file=sys.stderr)
    if name == EMBEDDED:
        print("note: the built-in starter model learned from synthetic scenes (objects dropping, bouncing, sliding): "
              "it times impacts and friction to what moves, it does not know real-world sounds. Install the "
              "published model with `foley models pull vta-ldm` for realistic foley.", file=sys.stderr)
    print(f"model {name}; {sampling.sampler} {sampling.steps} steps, guidance {sampling.guidance}; "
          f"seeds {', '.join(map(str, seeds))}", file=sys.stderr)
    print("licences:\n" + "\n".join(f"  {item['component']}: {item['licence']}" for item in licences), file=sys.stderr)


@dataclass(frozen=True)
class Source:
    """What to generate from: an edit (one span for a plain video) over [start, end), named as the user knows it."""

    edit: tuple[EditSpan, ...]
    start: Fraction
    end: Fraction
    name: str


def video_source(video: Path, start: Fraction, end: Fraction | None, args: argparse.Namespace) -> Source:
    """A range of one video file; without an end, up to the end of the video."""
    from engine.video import EditSpan, check_range, probe_video

    info = probe_video(video)
    if end is None:
        end = info.duration
    check_range(info, start, end)
    return Source((EditSpan(info.path, start, end, start),), start, end, str(video.resolve()))


def decode_source(source: Source, rate: int, size: int, legacy: bool) -> Frames | EditFrames:
    """Frames for `generate`: decoded window by window, or all at once by the reference's legacy rule."""
    from engine.video import EditFrames, decode_frames

    if not legacy:
        return EditFrames(source.edit, source.start, source.end, rate, size)
    (span,) = source.edit
    return decode_frames(span.media, source.start, source.end, rate=rate, size=size, legacy=True)


def run_generation(source: Source, args: argparse.Namespace) -> list[Path]:
    """Generate here or on an engine server, write the variants, print their paths."""
    if args.legacy_frames and len(source.edit) != 1:
        raise ValueError("--legacy-frames samples one video file by the reference's rule; it does not apply to edits.")
    sampling = SAMPLING_PRESETS[args.preset]
    if args.sampler is not None:
        sampling = replace(sampling, sampler=args.sampler)
    if args.steps is not None:
        sampling = replace(sampling, steps=args.steps)
    if args.guidance is not None:
        sampling = replace(sampling, guidance=args.guidance)
    seed = args.seed if args.seed is not None else random.randrange(2**31)
    seeds = tuple(seed + i for i in range(args.variants))
    _check_seeds(args.variants, seeds)
    run = _generate_on_engine if args.engine else _generate_here
    paths = run(source, sampling, seeds, args)
    for path in paths:  # stdout stays one WAV path a line; the score goes beside it on stderr
        score = json.loads(path.with_suffix(".json").read_text()).get("sync_score")
        print(f"sync score {score:.2f}  {path.name}" if score is not None else path.name, file=sys.stderr)
        print(path)
    return paths


def _check_seeds(variants: int, seeds: tuple[int, ...]) -> None:
    """Refuse a bad --variants or --seed before any model loads (the engine checks the seeds again)."""
    from engine.core.generate import MAX_SEED, MAX_VARIANTS

    if not 1 <= variants <= MAX_VARIANTS:
        raise ValueError(f"--variants {variants}: ask for 1 to {MAX_VARIANTS} variants.")
    if not 0 <= seeds[0] <= seeds[-1] <= MAX_SEED:
        more = f" (with {variants} variants the seeds run to seed + {variants - 1})" if variants > 1 else ""
        raise ValueError(f"--seed {seeds[0]} is out of range; use a whole number from 0 to {MAX_SEED - variants + 1}"
                         f"{more}.")


def _generate_here(source: Source, sampling: SamplingConfig, seeds: tuple[int, ...], args) -> list[Path]:
    from engine.core.generate import check_request, generate
    from engine.core.output import write_variants
    from engine.models import best_installed, load_model, place

    components = load_model(args.model or best_installed(), Path(args.encoder) if args.encoder else None)
    components = place(components, args.device, args.precision)
    config = components.config
    check_request(source.start, source.end, config, sampling, seeds)
    _announce(components.name, components.licences, components.trained, sampling, seeds)
    bar = ProgressBar()
    try:
        frames = decode_source(source, config.frame_rate, config.vision.image_size, args.legacy_frames)
        generation = generate(frames, components=components, sampling=sampling, seeds=seeds, callback=bar)
    finally:
        bar.close()
    return write_variants(generation, components, source.name, Path(args.output), args.level)


def announce_started(client: EngineClient, until: str) -> None:
    """Say on stderr that an engine was started for us, where it logs, and when it stops."""
    if client.started is not None:
        print(f"started an engine at {client.url} (pid {client.started.pid}; log {client.started.log}); it stops "
              f"{until} unless other clients have jobs on it", file=sys.stderr)


def _engine_client(url: str, token: str | None) -> EngineClient:
    """`auto`: the discovered engine, started if needed; a URL: that engine, with the token given or discovered."""
    if url == "auto":
        client = EngineClient.connect(start=True)
        announce_started(client, "when this command ends")
        return client
    token = token or os.environ.get("FOLEY_ENGINE_TOKEN")
    discovered = read_discovery()
    if token is None and discovered is not None and discovered.url == url.rstrip("/"):
        token = discovered.token
    if token is None:
        raise EngineError(f"The engine at {url} needs its token: pass --token or set FOLEY_ENGINE_TOKEN "
                          "(the engine's discovery file holds it).")
    return EngineClient(url, token)


def _engine_model(client: EngineClient, name: str | None) -> dict:
    """The engine's entry for model `name`, or its default model."""
    entries = client.models()
    wanted = [m for m in entries if (m["name"] == name if name else m["default"])]
    if not wanted:
        raise EngineError(f"The engine has no model '{name}'; it has: {', '.join(m['name'] for m in entries)}.")
    return wanted[0]


def _generate_on_engine(source: Source, sampling: SamplingConfig, seeds: tuple[int, ...], args) -> list[Path]:
    """Generate on an engine server; one this command started stops at the end (`EngineClient.release`)."""
    client = _engine_client(args.engine, args.token)
    try:
        return _run_on_engine(client, source, sampling, seeds, args)
    finally:
        client.release()


def _run_on_engine(client: EngineClient, source: Source, sampling: SamplingConfig, seeds: tuple[int, ...],
                   args) -> list[Path]:
    """Decode frames here, send them to the engine, follow its progress, then download the variants."""
    from engine.core.sampling import StepInfo

    model = _engine_model(client, args.model)
    _announce(model["name"], model["licences"], model["trained"], sampling, seeds)
    rate, size = model["frame_rate"], model["image_size"]
    bar = ProgressBar()
    bar(StepInfo("decode", 0, 1, 0, len(seeds)))
    frames = decode_source(source, rate, size, args.legacy_frames).window(source.start, source.end)
    bar(StepInfo("decode", 1, 1, 0, len(seeds)))
    job = client.submit_frames(
        frames.rgb.tobytes(), count=len(frames.rgb), width=size, height=size, fps=rate, start=str(source.start),
        end=str(source.end), frame_times=[str(t) for t in frames.times], seeds=list(seeds), source=source.name,
        model=model["name"], steps=sampling.steps, guidance=sampling.guidance, sampler=sampling.sampler,
        level=args.level, spacing=sampling.spacing,
    )
    step_fields = [f.name for f in fields(StepInfo)]

    def show(event: dict) -> None:
        if event["event"] == "progress":  # an older engine may send fewer fields
            bar(StepInfo(**{name: event[name] for name in step_fields if name in event}))

    try:
        client.wait(job["id"], on_event=show)
    except KeyboardInterrupt:
        client.cancel(job["id"])
        raise
    finally:
        bar.close()
    return client.download(job["id"], args.output)


def cmd_generate(args: argparse.Namespace) -> None:
    if args.video is None:
        raise ValueError("give a video file to generate from (or --project PROJECT for a timeline selection).")
    if args.output is None:
        args.output = DEFAULT_OUTPUT
    run_generation(video_source(Path(args.video), args.start, args.end, args), args)


def cmd_demo(args: argparse.Namespace) -> None:
    from engine.models import EMBEDDED, best_installed
    from engine.training.sample_video import demo_impacts, make_demo_video

    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    video = make_demo_video(out / "demo-bouncing-ball.mp4")
    print(f"sample video: {video}", file=sys.stderr)
    if (args.model or best_installed()) == EMBEDDED:
        print(f"you will hear the built-in starter model: synthetic knocks on each of the ball's "
              f"{len(demo_impacts())} floor impacts "
              "(it knows simple objects hitting floors and walls); for realistic sound on real footage run "
              "`foley models pull vta-ldm`", file=sys.stderr)
    run_generation(video_source(video, Fraction(0), None, args), args)


def cmd_synth(args: argparse.Namespace) -> None:
    """Write a synthetic foley set: video, sound and exact labels per clip."""
    from engine.core.sampling import StepInfo
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

    from engine.models import best_installed, load_model, place
    from engine.training.evaluate import evaluate, model_audio

    if args.reference:
        def audio_for(video: Path, labels: dict) -> np.ndarray:
            return soundfile.read(str(video.with_suffix(".wav")), dtype="float32")[0]
    else:
        components = place(load_model(args.model or best_installed()), args.device, "auto")
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
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    base = load_model(args.base) if args.base else None
    config = base.config if base else PRESETS[args.preset]
    if base is None:
        config = with_switches(config, pe=not args.no_pe,
                               flow_grid=config.vision.flow_grid if args.flow is None else args.flow,
                               aligned=config.unet.aligned_channels if args.aligned is None else args.aligned)
    if args.motion is not None and args.motion != config.vision.motion_kernel:
        config = replace(config, vision=replace(config.vision, motion_kernel=args.motion))
        base = grown(base, config) if base else None
    dataset = load_training_set(Path(args.data), config, args.limit)
    if args.clean is not None:
        dataset = clean(dataset, config.frame_rate, config.sample_rate, args.clean)
    common = {"batch": args.batch, "seed": args.seed, "checkpoint_every": args.checkpoint_every}
    recipes = {stage: replace(recipe, **common) for stage, recipe in STAGE_RECIPES.items()}
    recipes["vae"] = replace(recipes["vae"], steps=args.vae_steps or recipes["vae"].steps)
    recipes["vocoder"] = replace(recipes["vocoder"], steps=args.vocoder_steps or recipes["vocoder"].steps)
    recipes["ldm"] = replace(recipes["ldm"], steps=args.steps or recipes["ldm"].steps, lr=args.lr or recipes["ldm"].lr,
                             warmup=args.warmup, concat=args.concat, lora_rank=args.lora if base else 0)
    encoder = None
    if base is not None:
        encoder_path = model_folder(args.base) / ENCODER_FILE
        if not encoder_path.is_file():
            raise ValueError(f"'{args.base}' was installed without its VAE encoder ({encoder_path}), which "
                             "fine-tuning needs to encode your sound. Train it with `foley train` or import a "
                             "snapshot that includes the encoder.")
        encoder = load_file(str(encoder_path))
    work = Path(args.work) if args.work else models_dir() / f".train-{args.name}"
    result = train_model(dataset, config, work, recipes, base=base, encoder_state=encoder)
    licences = list(base.licences) if base else [  # weights trained from scratch on the user's data are the user's
        {"component": "all", "licence": "yours: trained with `foley train` on your own data", "source": "foley train"}]
    facts = {"training": {"data": training_source(Path(args.data)), "windows": len(dataset), "base": args.base,
                          "recipes": {k: asdict(v) for k, v in recipes.items()},
                          "final_loss": {k: float(np.mean(v[-50:])) for k, v in result["losses"].items() if v}}}
    folder = save_trained(models_dir(), args.name, config, result, licences, facts)
    print(f"installed '{args.name}' in {folder}")


def cmd_serve(args: argparse.Namespace) -> None:
    from engine.serving.server import serve

    serve(host=args.host, port=args.port, allow_remote=args.allow_remote,
          cache_dir=Path(args.cache) if args.cache else None, max_queue=args.max_queue,
          max_request_bytes=args.max_request_mb << 20, device=args.device, precision=args.precision)


def _running_engine() -> EngineClient | None:
    """The engine the discovery file names, when it answers."""
    info = read_discovery()
    client = EngineClient(info.url, info.token) if info is not None else None
    return client if client is not None and client.alive() else None


def cmd_engine_status(args: argparse.Namespace) -> None:
    """Print the local engine's address, process, queue and log; exit 1 when none runs."""
    client = _running_engine()
    if client is None:
        print(f"no engine is running (discovery file {discovery_path()}); `foley serve` starts one")
        sys.exit(1)
    info, health = read_discovery(), client.health()
    unfinished = [job for job in client.jobs() if job["state"] not in FINAL_STATES]
    print(f"engine {health['version']} at {info.url} (pid {info.pid}, device {health['device']}); "
          f"{len(unfinished)} unfinished job(s), model loaded: {health['model_loaded'] or 'none'}")
    print(f"log: {info.log or 'the terminal that ran `foley serve`'}; discovery file {discovery_path()}")


def cmd_engine_stop(args: argparse.Namespace) -> None:
    """Stop the local engine through its API (its running job is cancelled, queued ones are reported failed)."""
    client = _running_engine()
    if client is None:
        print("no engine is running")
        return
    info = read_discovery()
    unfinished = [job for job in client.jobs() if job["state"] not in FINAL_STATES]
    client.shutdown()
    print(f"stopped the engine at {info.url} (pid {info.pid})"
          + (f"; {len(unfinished)} unfinished job(s) were interrupted" if unfinished else ""))


def cmd_models_import(args: argparse.Namespace) -> None:
    from engine.models import models_dir
    from engine.vta_ldm.checkpoint import import_snapshot

    manifest = import_snapshot(args.folder, models_dir(), name=args.name, preset=args.preset, force=args.force)
    _print_installed(manifest)


def cmd_models_pull(args: argparse.Namespace) -> None:
    from engine.models import models_dir
    from engine.vta_ldm.checkpoint import HUB_REPO, import_snapshot, pull_snapshot

    repo = HUB_REPO if args.repo in ("vta-ldm", HUB_REPO) else args.repo
    folder = pull_snapshot(repo, args.revision)
    manifest = import_snapshot(folder, models_dir(), name=args.name, force=args.force)
    _print_installed(manifest)


def _print_installed(manifest: dict) -> None:
    from engine.models import models_dir

    print(f"installed '{manifest['name']}' ({manifest['preset']}) in {models_dir() / manifest['name']}")
    print("licences:")
    for item in manifest["licences"]:
        print(f"  {item['component']}: {item['licence']}")


def cmd_models_export_encoder(args: argparse.Namespace) -> None:
    from engine.models import load_model
    from engine.vta_ldm.vision_encoder import export_onnx

    components = load_model(args.name)
    path = export_onnx(components.modules["vision"], Path(args.output), args.precision)
    print(f"{path} ({args.precision}); use it with `foley generate --encoder {path}`")


def cmd_models_list(args: argparse.Namespace) -> None:
    from engine.models import EMBEDDED, list_models, model_manifest

    licences = "; ".join(item["licence"] for item in model_manifest(EMBEDDED)["licences"])
    print(f"{EMBEDDED}: the built-in starter model (trained on synthetic scenes), always available, {licences}")
    for manifest in list_models():
        licences = "; ".join(item["licence"] for item in manifest["licences"])
        print(f"{manifest['name']}: preset {manifest['preset']}, scale factor {manifest['scale_factor']:.6g}, {licences}")


def cmd_models_remove(args: argparse.Namespace) -> None:
    from engine.models import remove_model

    remove_model(args.name)
    print(f"removed '{args.name}'")


def _add_generation_options(parser: argparse.ArgumentParser, default_output: str | None, output_help: str) -> None:
    parser.add_argument("--variants", type=int, default=1, help="number of variants (seeds seed, seed+1, ...)")
    parser.add_argument("--seed", type=int, help="first seed (random when omitted; always recorded)")
    parser.add_argument("--model", help="installed model name, or 'builtin' (default: best installed)")
    parser.add_argument("--preset", choices=list(SAMPLING_PRESETS), default="fast",
                        help="fast (default): DPM-Solver++(2M) 25 steps; reference: the published DDPM 300 steps "
                             "(the same onset accuracy on the starter model, 12x the time)")
    parser.add_argument("--sampler", choices=list(typing.get_args(SamplerName)), help="override the preset's sampler")
    parser.add_argument("--steps", type=int, help="override the preset's steps")
    parser.add_argument("--guidance", type=float, help="classifier-free guidance scale (reference: 3)")
    parser.add_argument("--device", default="auto", help="auto (CUDA, then MPS, then CPU), cuda, mps or cpu")
    parser.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16"],
                        help="UNet precision: auto = fp16 on GPUs, fp32 on CPUs")
    parser.add_argument("--encoder", metavar="ONNX", help="run the vision encoder from this ONNX export (onnxruntime)")
    parser.add_argument("--legacy-frames", action="store_true", help="sample frames with the reference's int(fps) rule")
    parser.add_argument("--level", choices=LEVEL_MODES, default="normalised",
                        help="normalised (default): -23 LUFS, true peak under -1 dBTP, by a gain the sidecar records; "
                        "raw: the model's output unchanged")
    parser.add_argument("-o", "--output", default=default_output, help=output_help)
    parser.add_argument("--engine", metavar="URL",
                        help="run on an engine server: its URL, or 'auto' to use (or start) the local one")
    parser.add_argument("--token", help="the engine's token (default: FOLEY_ENGINE_TOKEN or the discovery file)")


def add_engine_commands(sub) -> argparse.ArgumentParser:
    """Add generate, demo, serve and models to the `foley` command; return the generate parser."""
    gen = sub.add_parser("generate", help="generate foley for a range of a video")
    gen.add_argument("video", nargs="?", help="the video file (or use --project)")
    gen.add_argument("--start", type=seconds, default=Fraction(0), help="range start in seconds (default 0)")
    gen.add_argument("--end", type=seconds, help="range end in seconds (default: the end of the video)")
    _add_generation_options(gen, None, f"output folder (default: {DEFAULT_OUTPUT}; with --project, 'Foley Desk' "
                                       "beside the project file)")
    gen.set_defaults(func=cmd_generate)

    demo = sub.add_parser("demo", help="run the whole pipeline offline on a generated sample video")
    _add_generation_options(demo, "foley-demo", "output folder (default: foley-demo)")
    demo.set_defaults(func=cmd_demo)

    srv = sub.add_parser("serve", help="run the engine server that editors and add-ons talk to")
    srv.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1, this machine only)")
    srv.add_argument("--port", type=int, default=0, help="port (default: a free one, announced in the discovery file)")
    srv.add_argument("--allow-remote", action="store_true", help="allow binding an address other machines can reach")
    srv.add_argument("--max-queue", type=int, default=8, help="jobs that may wait; more are refused with 429")
    srv.add_argument("--max-request-mb", type=int, default=256, help="largest accepted request body, in MiB")
    srv.add_argument("--cache", help="results folder (default: the user cache dir)")
    srv.add_argument("--device", default="auto", help="auto (CUDA, then MPS, then CPU), cuda, mps or cpu")
    srv.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16"],
                     help="UNet precision: auto = fp16 on GPUs, fp32 on CPUs")
    srv.set_defaults(func=cmd_serve)

    engine = sub.add_parser("engine", help="the local engine: status, stop").add_subparsers(dest="action", required=True)
    status = engine.add_parser("status", help="address, process, jobs and log of the running engine (exit 1: none)")
    status.set_defaults(func=cmd_engine_status)
    engine.add_parser("stop", help="stop the running engine cleanly").set_defaults(func=cmd_engine_stop)

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
    evaluation.add_argument("--json", help="also write per-clip results to this file")
    evaluation.set_defaults(func=cmd_eval)

    train = sub.add_parser("train", help="train a model on videos with their sound, or fine-tune an installed one")
    train.add_argument("data", help="folder of videos with their sound (a same-name .wav beside a video is used)")
    train.add_argument("--name", default="starter", help="install the result under this name")
    train.add_argument("--preset", choices=list(PRESETS), default="starter", help="model size to train from scratch")
    train.add_argument("--from", dest="base", metavar="MODEL", help="fine-tune this installed model (LoRA)")
    train.add_argument("--lora", type=int, default=8, help="LoRA rank when fine-tuning (default 8)")
    train.add_argument("--steps", type=int, help="LDM (vision + UNet) steps (default: the LDM recipe's)")
    train.add_argument("--vae-steps", type=int, help="default: the VAE recipe's")
    train.add_argument("--vocoder-steps", type=int, help="default: the vocoder recipe's")
    train.add_argument("--batch", type=int, default=8)
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
    train.add_argument("--clean", type=float, metavar="AV_ALIGN", help="drop training windows below this AV-Align")
    train.add_argument("--limit", type=int, help="use only the first N videos")
    train.add_argument("--work", help="checkpoint folder (an interrupted run resumes from it)")
    train.add_argument("--checkpoint-every", type=int, default=200)
    train.add_argument("--threads", type=int, help="CPU threads (default: torch's choice)")
    train.set_defaults(func=cmd_train)

    models = sub.add_parser("models", help="install, list and remove models").add_subparsers(dest="action", required=True)
    imp = models.add_parser("import", help="import a downloaded VTA-LDM snapshot folder")
    imp.add_argument("folder")
    imp.add_argument("--name", help="install under this name (default: the preset name)")
    imp.add_argument("--preset", help="model preset, when summary.jsonl does not say")
    imp.add_argument("--force", action="store_true", help="replace an installed model of the same name")
    imp.set_defaults(func=cmd_models_import)
    pull = models.add_parser("pull", help="download a model from the Hugging Face hub and import it")
    pull.add_argument("repo", nargs="?", default="vta-ldm", help="'vta-ldm' (the published checkpoint) or a Hugging Face repo id")
    pull.add_argument("--revision")
    pull.add_argument("--name")
    pull.add_argument("--force", action="store_true")
    pull.set_defaults(func=cmd_models_pull)
    models.add_parser("list", help="list installed models").set_defaults(func=cmd_models_list)
    onnx = models.add_parser("export-encoder", help="export a model's vision encoder to ONNX (fp32, fp16, int8)")
    onnx.add_argument("name", help="installed model name, or 'builtin'")
    onnx.add_argument("--precision", choices=["fp32", "fp16", "int8"], default="fp32",
                      help="fp16 for GPUs (TensorRT/CUDA), int8 (dynamic quantisation) for CPUs")
    onnx.add_argument("-o", "--output", required=True, help="the .onnx file to write")
    onnx.set_defaults(func=cmd_models_export_encoder)
    rm = models.add_parser("remove", help="remove an installed model")
    rm.add_argument("name")
    rm.set_defaults(func=cmd_models_remove)
    return gen
