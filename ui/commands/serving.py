"""`foley serve` and `foley engine status|stop`: the local engine process."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from engine.serving.client import FINAL_STATES, discovery_path, read_discovery
from ui.commands.common import running_engine


def cmd_serve(args: argparse.Namespace) -> None:
    from engine.serving.server import serve

    serve(host=args.host, port=args.port, allow_remote=args.allow_remote,
          cache_dir=Path(args.cache) if args.cache else None, max_queue=args.max_queue,
          max_request_bytes=args.max_request_mb << 20, device=args.device, precision=args.precision)


def cmd_engine_status(args: argparse.Namespace) -> None:
    """Print the local engine's address, process, queue and log; exit 1 when none runs."""
    client = running_engine()
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
    client = running_engine()
    if client is None:
        print("no engine is running")
        return
    info = read_discovery()
    unfinished = [job for job in client.jobs() if job["state"] not in FINAL_STATES]
    client.shutdown()
    print(f"stopped the engine at {info.url} (pid {info.pid})"
          + (f"; {len(unfinished)} unfinished job(s) were interrupted" if unfinished else ""))


def add_commands(sub) -> None:
    srv = sub.add_parser("serve", help="run the engine server that editors and add-ons talk to")
    srv.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1, this machine only)")
    srv.add_argument("--port", type=int, default=0, help="port (default: a free one, announced in the discovery file)")
    srv.add_argument("--allow-remote", action="store_true", help="allow binding an address other machines can reach")
    srv.add_argument("--max-queue", type=int, default=8, help="jobs that may wait; more are refused with 429")
    srv.add_argument("--max-request-mb", type=int, default=256, help="largest accepted request body, in MiB")
    srv.add_argument("--cache", help="results folder (default: the user cache dir)")
    srv.add_argument("--device", default="auto", help="auto (CUDA, then MPS, then CPU), cuda, mps or cpu")
    srv.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16"],
                     help="UNet precision: auto = fp16 on GPUs, bf16 on CPUs with bf16 units, fp32 on other CPUs")
    srv.set_defaults(func=cmd_serve)

    engine = sub.add_parser("engine", help="the local engine: status, stop").add_subparsers(dest="action", required=True)
    status = engine.add_parser("status", help="address, process, jobs and log of the running engine (exit 1: none)")
    status.set_defaults(func=cmd_engine_status)
    engine.add_parser("stop", help="stop the running engine cleanly").set_defaults(func=cmd_engine_stop)
