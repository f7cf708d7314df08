"""The `foley` command: every command family of `ui.commands`, and the error handling every command shares."""

import argparse
import logging
import sys
from pathlib import Path

from editor_plugin.errors import HostError
from engine import __version__
from engine.errors import FoleyError
from engine.serving.client import EngineError
from export.errors import ExportError
from ui.commands import export, generate, hosts, models, panel, serving, training


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="foley", description="Generate synchronised foley for video ranges.")
    parser.add_argument("--version", action="version", version=f"foley-desk {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log details to stderr")
    sub = parser.add_subparsers(dest="command", required=True)
    for family in (generate, hosts, export, serving, models, training, panel):
        family.add_commands(sub)
    return parser


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
