"""The `foley` command: generate, demo, and model management."""

import argparse
import logging
import random
import sys
import tempfile
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

from engine import __version__
from engine.checkpoint import HUB_REPO, import_snapshot, pull_snapshot
from engine.config import SAMPLING_PRESETS
from engine.errors import FoleyError
from engine.generate import check_request, generate
from engine.models import EMBEDDED, best_installed, list_models, load_model, models_dir, remove_model
from engine.output import write_variants
from engine.sample_video import make_demo_video
from engine.sampling import StepInfo
from engine.video import decode_frames, probe_video

logger = logging.getLogger("foley")


def seconds(text: str) -> Fraction:
    """Parse a time in seconds ("2", "9.5", "1001/30000") exactly."""
    try:
        value = Fraction(text)
    except (ValueError, ZeroDivisionError):
        raise argparse.ArgumentTypeError(f"'{text}' is not a time in seconds (examples: 2, 9.5, 1001/30000)") from None
    return value


class ProgressBar:
    """Progress on stderr: one line redrawn in place on a terminal, a line per tenth of each stage in a log."""

    def __init__(self):
        self.stream = sys.stderr
        self.interactive = self.stream.isatty()

    def __call__(self, info: StepInfo) -> None:
        done = info.step / info.total if info.total else 0.0
        bar = "#" * int(done * 30)
        label = f"variant {info.variant + 1}/{info.variants} " if info.stage == "sample" else ""
        line = f"{label}{info.stage:<7} [{bar:<30}] {info.step}/{info.total}"
        if self.interactive:
            self.stream.write(f"\r{line}   ")
        elif info.step == info.total or info.step % max(1, info.total // 10) == 0:
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.interactive:
            self.stream.write("\n")


def _licence_lines(components) -> list[str]:
    return [f"  {item['component']}: {item['licence']}" for item in components.licences]


def run_generation(video: Path, start: Fraction, end: Fraction | None, args: argparse.Namespace) -> list[Path]:
    """Shared by `generate` and `demo`: load the model, generate, write, report."""
    components = load_model(args.model or best_installed())
    if not components.trained:
        print(
            "note: the built-in model is untrained (random weights): the pipeline runs end to end, but the sound "
            "means nothing. Install the published model with `foley models pull vta-ldm`.",
            file=sys.stderr,
        )
    if end is None:
        end = min(start + components.config.window_seconds, probe_video(video).duration)
    sampling = SAMPLING_PRESETS["reference"]
    if args.steps is not None:
        sampling = replace(sampling, steps=args.steps)
    if args.guidance is not None:
        sampling = replace(sampling, guidance=args.guidance)
    seed = args.seed if args.seed is not None else random.randrange(2**31)
    seeds = tuple(seed + i for i in range(args.variants))
    print(f"model {components.name}; {sampling.sampler} {sampling.steps} steps, guidance {sampling.guidance}; "
          f"seeds {', '.join(map(str, seeds))}", file=sys.stderr)
    print("licences:\n" + "\n".join(_licence_lines(components)), file=sys.stderr)
    config = components.config
    check_request(start, end, config, sampling, seeds)
    bar = ProgressBar()
    try:
        bar(StepInfo("decode", 0, 1, 0, len(seeds)))
        frames = decode_frames(video, start, end, rate=config.frame_rate, size=config.vision.image_size,
                               legacy=args.legacy_frames)
        generation = generate(frames, components=components, sampling=sampling, seeds=seeds, callback=bar)
    finally:
        bar.close()
    paths = write_variants(generation, components, str(video.resolve()), Path(args.output))
    for path in paths:
        print(path)
    return paths


def cmd_generate(args: argparse.Namespace) -> None:
    run_generation(Path(args.video), args.start, args.end, args)


def cmd_demo(args: argparse.Namespace) -> None:
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    video = make_demo_video(out / "demo-bouncing-ball.mp4")
    print(f"sample video: {video}", file=sys.stderr)
    run_generation(video, Fraction(0), None, args)


def cmd_models_import(args: argparse.Namespace) -> None:
    manifest = import_snapshot(args.folder, models_dir(), name=args.name, preset=args.preset, force=args.force)
    _print_installed(manifest)


def cmd_models_pull(args: argparse.Namespace) -> None:
    repo = HUB_REPO if args.repo in ("vta-ldm", HUB_REPO) else args.repo
    folder = pull_snapshot(repo, args.revision)
    manifest = import_snapshot(folder, models_dir(), name=args.name, force=args.force)
    _print_installed(manifest)


def _print_installed(manifest: dict) -> None:
    print(f"installed '{manifest['name']}' ({manifest['preset']}) in {models_dir() / manifest['name']}")
    print("licences:")
    for item in manifest["licences"]:
        print(f"  {item['component']}: {item['licence']}")


def cmd_models_list(args: argparse.Namespace) -> None:
    print(f"{EMBEDDED}: built-in tiny model (untrained), always available")
    for manifest in list_models():
        licences = "; ".join(item["licence"] for item in manifest["licences"])
        print(f"{manifest['name']}: preset {manifest['preset']}, scale factor {manifest['scale_factor']:.6g}, {licences}")


def cmd_models_remove(args: argparse.Namespace) -> None:
    remove_model(args.name)
    print(f"removed '{args.name}'")


def _add_generation_options(parser: argparse.ArgumentParser, default_output: str) -> None:
    parser.add_argument("--variants", type=int, default=1, help="number of variants (seeds seed, seed+1, ...)")
    parser.add_argument("--seed", type=int, help="first seed (random when omitted; always recorded)")
    parser.add_argument("--model", help="installed model name, or 'builtin' (default: best installed)")
    parser.add_argument("--steps", type=int, help="sampling steps (reference: 300)")
    parser.add_argument("--guidance", type=float, help="classifier-free guidance scale (reference: 3)")
    parser.add_argument("--legacy-frames", action="store_true", help="sample frames with the reference's int(fps) rule")
    parser.add_argument("-o", "--output", default=default_output, help="output folder")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="foley", description="Generate synchronised foley for video ranges.")
    parser.add_argument("--version", action="version", version=f"foley-desk {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log details to stderr")
    sub = parser.add_subparsers(dest="command", required=True)

    gen = sub.add_parser("generate", help="generate foley for a range of a video")
    gen.add_argument("video")
    gen.add_argument("--start", type=seconds, default=Fraction(0), help="range start in seconds (default 0)")
    gen.add_argument("--end", type=seconds, help="range end in seconds (default: one model window or the video's end)")
    _add_generation_options(gen, "foley-out")
    gen.set_defaults(func=cmd_generate)

    demo = sub.add_parser("demo", help="run the whole pipeline offline on a generated sample video")
    _add_generation_options(demo, "foley-demo")
    demo.set_defaults(func=cmd_demo)

    models = sub.add_parser("models", help="install, list and remove models").add_subparsers(dest="action", required=True)
    imp = models.add_parser("import", help="import a downloaded VTA-LDM snapshot folder")
    imp.add_argument("folder")
    imp.add_argument("--name", help="install under this name (default: the preset name)")
    imp.add_argument("--preset", help="model preset, when summary.jsonl does not say")
    imp.add_argument("--force", action="store_true", help="replace an installed model of the same name")
    imp.set_defaults(func=cmd_models_import)
    pull = models.add_parser("pull", help="download a model from the Hugging Face hub and import it")
    pull.add_argument("repo", nargs="?", default="vta-ldm", help=f"'vta-ldm' ({HUB_REPO}) or a repo id")
    pull.add_argument("--revision")
    pull.add_argument("--name")
    pull.add_argument("--force", action="store_true")
    pull.set_defaults(func=cmd_models_pull)
    models.add_parser("list", help="list installed models").set_defaults(func=cmd_models_list)
    rm = models.add_parser("remove", help="remove an installed model")
    rm.add_argument("name")
    rm.set_defaults(func=cmd_models_remove)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        args.func(args)
    except (FoleyError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; nothing was written", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
