"""The `foley` command: engine commands, host commands, and the error handling every command shares."""

import argparse
import logging
import sys
from pathlib import Path

from editor_plugin.commands import add_host_commands
from editor_plugin.errors import HostError
from engine import __version__
from engine.cli import add_engine_commands
from engine.errors import FoleyError
from engine.serving.client import EngineError
from export.commands import add_export_commands
from export.errors import ExportError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="foley", description="Generate synchronised foley for video ranges.")
    parser.add_argument("--version", action="version", version=f"foley-desk {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log details to stderr")
    sub = parser.add_subparsers(dest="command", required=True)
    add_host_commands(sub, add_engine_commands(sub))
    add_export_commands(sub)
    panel = sub.add_parser("panel", help="open the Foley Desk panel (Qt) next to your editor")
    panel.add_argument("project", nargs="?", help="a project file to open")
    panel.add_argument("--sequence", help="the timeline of the project to open when it holds several")
    panel.add_argument("--engine", help="engine URL (default: the local engine, started if needed)")
    panel.add_argument("--token", help="the engine's token, for --engine")
    panel.add_argument("-o", "--output", help="folder for generated variants and stems (default: 'Foley Desk' "
                                              "beside the project file, else ./foley-panel)")
    panel.set_defaults(func=cmd_panel)
    return parser


def cmd_panel(args: argparse.Namespace) -> None:
    from ui.app import run_panel  # Qt only loads for the panel

    sys.exit(run_panel(args.project, args.engine, args.token, Path(args.output) if args.output else None, args.sequence))


def _not_pyaaf2_chatter(record: logging.LogRecord) -> bool:
    """pyaaf2 warns on the root logger about the 0/0 rationals Premiere writes into every AAF; it reads them fine."""
    return "aaf2" not in Path(record.pathname).parts or record.levelno > logging.WARNING


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if not args.verbose:
        for handler in logging.getLogger().handlers:
            handler.addFilter(_not_pyaaf2_chatter)
    try:
        args.func(args)
    except (FoleyError, EngineError, HostError, ExportError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; nothing was written", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
