"""`foley models`: import, pull, list, remove models and export a vision encoder to ONNX."""

from __future__ import annotations

import argparse
from pathlib import Path


def cmd_models_import(args: argparse.Namespace) -> None:
    from engine.mmaudio.checkpoint import import_folder, is_mmaudio_folder
    from engine.models import models_dir
    from engine.vta_ldm.checkpoint import import_snapshot

    if is_mmaudio_folder(Path(args.folder)):
        manifest = import_folder(args.folder, models_dir(), variant=args.variant, name=args.name, force=args.force)
    else:
        manifest = import_snapshot(args.folder, models_dir(), name=args.name, preset=args.preset, force=args.force)
    _print_installed(manifest)


def cmd_models_pull(args: argparse.Namespace) -> None:
    from engine.mmaudio import checkpoint as mmaudio
    from engine.models import models_dir
    from engine.vta_ldm.checkpoint import HUB_REPO, import_snapshot, pull_snapshot

    if args.repo.startswith("mmaudio-"):
        variant = args.repo.removeprefix("mmaudio-").replace("-", "_")
        manifest = mmaudio.import_files(mmaudio.pull(variant), models_dir(), variant, name=args.name, force=args.force)
        return _print_installed(manifest)
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
    from engine.models import family_of, load_model

    components = load_model(args.name)
    path = family_of(components).export_encoder(components.stages, Path(args.output), args.precision)
    print(f"{path} ({args.precision}); use it with `foley generate --encoder {path}`")


def cmd_models_list(args: argparse.Namespace) -> None:
    from engine.models import EMBEDDED, list_models, model_manifest

    licences = "; ".join(item["licence"] for item in model_manifest(EMBEDDED)["licences"])
    print(f"{EMBEDDED}: the built-in starter model (trained on synthetic scenes), always available, {licences}")
    for manifest in list_models():
        licences = "; ".join(f"{item['component']}: {item['licence']}" for item in manifest["licences"])
        family = manifest.get("family", "vta-ldm")
        text = ", takes text prompts" if manifest.get("takes_text") else ""
        print(f"{manifest['name']}: {family} {manifest['preset']}{text}; licences: {licences}")


def cmd_models_remove(args: argparse.Namespace) -> None:
    from engine.models import remove_model

    remove_model(args.name)
    print(f"removed '{args.name}'")


def add_commands(sub) -> None:
    models = sub.add_parser("models", help="install, list and remove models").add_subparsers(dest="action", required=True)
    imp = models.add_parser("import", help="import a downloaded VTA-LDM snapshot folder, or MMAudio's files")
    imp.add_argument("folder")
    imp.add_argument("--variant", help="MMAudio: which network of the folder (small_16k, large_44k_v2, ...)")
    imp.add_argument("--name", help="install under this name (default: the preset name)")
    imp.add_argument("--preset", help="model preset, when summary.jsonl does not say")
    imp.add_argument("--force", action="store_true", help="replace an installed model of the same name")
    imp.set_defaults(func=cmd_models_import)
    pull = models.add_parser("pull", help="download a model from the Hugging Face hub and import it")
    pull.add_argument("repo", nargs="?", default="vta-ldm",
                      help="'vta-ldm' (the published checkpoint), a Hugging Face repo id of a VTA-LDM snapshot, or "
                           "mmaudio-small-16k | mmaudio-small-44k | mmaudio-medium-44k | mmaudio-large-44k | "
                           "mmaudio-large-44k-v2")
    pull.add_argument("--revision")
    pull.add_argument("--name")
    pull.add_argument("--force", action="store_true")
    pull.set_defaults(func=cmd_models_pull)
    models.add_parser("list", help="list installed models").set_defaults(func=cmd_models_list)
    onnx = models.add_parser("export-encoder", help="export a model's picture encoders to ONNX (fp32, fp16, int8)")
    onnx.add_argument("name", help="installed model name, or 'builtin'")
    onnx.add_argument("--precision", choices=["fp32", "fp16", "int8"], default="fp32",
                      help="fp16 for GPUs (TensorRT/CUDA), int8 (dynamic quantisation) for CPUs")
    onnx.add_argument("-o", "--output", required=True, help="the .onnx file to write")
    onnx.set_defaults(func=cmd_models_export_encoder)
    rm = models.add_parser("remove", help="remove an installed model")
    rm.add_argument("name")
    rm.set_defaults(func=cmd_models_remove)
