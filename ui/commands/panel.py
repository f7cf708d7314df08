"""`foley panel`: the Qt panel beside the editor."""

import argparse
import sys
from pathlib import Path


def cmd_panel(args: argparse.Namespace) -> None:
    from ui.app import run_panel  # Qt only loads for the panel

    sys.exit(run_panel(args.project, args.engine, args.token, Path(args.output) if args.output else None, args.sequence))


def add_commands(sub) -> None:
    panel = sub.add_parser("panel", help="open the Foley Desk panel (Qt) next to your editor")
    panel.add_argument("project", nargs="?", help="a project file to open")
    panel.add_argument("--sequence", help="the timeline of the project to open when it holds several")
    panel.add_argument("--engine", help="engine URL (default: the local engine, started if needed)")
    panel.add_argument("--token", help="the engine's token, for --engine")
    panel.add_argument("-o", "--output", help="folder for generated variants and stems (default: 'Foley Desk' "
                                              "beside the project file, else ./foley-panel)")
    panel.set_defaults(func=cmd_panel)
