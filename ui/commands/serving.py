"""`foley serve` and `foley engine status|stop`: the local engine process; `foley pool`: engines on a Ray cluster."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

from engine.errors import FoleyError
from engine.serving.client import FINAL_STATES, discovery_path, read_discovery
from ui.commands.common import running_engine


def cmd_serve(args: argparse.Namespace) -> None:
    from engine.serving.server import serve

    serve(host=args.host, port=args.port, allow_remote=args.allow_remote,
          cache_dir=Path(args.cache) if args.cache else None, max_queue=args.max_queue,
          max_request_bytes=args.max_request_mb << 20, device=args.device, precision=args.precision)


def cmd_pool(args: argparse.Namespace) -> None:
    """Start Ray (or join the cluster at --address), deploy the pool, serve until Ctrl+C, then remove it."""
    from engine.serving.server import check_bind

    check_bind(args.host, args.allow_remote)
    try:
        import ray
        from ray import serve

        from engine.pool import APP, settings_from_args, start_pool
    except ImportError as exc:
        raise FoleyError(f"`foley pool` needs Ray Serve ({exc}); install the pool extra: pip install -e '.[pool]'") \
            from None
    ray.init(address=args.address, include_dashboard=False)
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # a service manager's stop, as Ctrl+C
    deployed = False
    try:
        settings = settings_from_args({"shared": args.shared, "replicas": args.replicas, "gpus": args.gpus,
                                       "max_queue": args.max_queue, "max_request_mb": args.max_request_mb,
                                       "model": args.model, "precision": args.precision})
        deployed = True
        url = start_pool(settings, host=args.host, port=args.port)
        print(f"Foley Desk pool at {url}: {settings.replicas} {settings.device} replica(s); token in "
              f"{settings.token_file}; results in {settings.shared}. Ctrl+C stops it.", flush=True)
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        if deployed:
            serve.delete(APP)  # on a cluster the application would outlive this process
        ray.shutdown()


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


def add_server_options(parser) -> None:
    """What `foley serve` and `foley pool` both take: where to listen, the limits, the precision."""
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1, this machine only)")
    parser.add_argument("--allow-remote", action="store_true",
                        help="allow binding an address other machines can reach")
    parser.add_argument("--max-queue", type=int, default=8, help="jobs that may wait; more are refused with 429")
    parser.add_argument("--max-request-mb", type=int, default=256, help="largest accepted request body, in MiB")
    parser.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16"],
                        help="UNet precision: auto = fp16 on GPUs, bf16 on CPUs with bf16 units, fp32 on other CPUs")


def add_commands(sub) -> None:
    srv = sub.add_parser("serve", help="run the engine server that editors and add-ons talk to")
    add_server_options(srv)
    srv.add_argument("--port", type=int, default=0, help="port (default: a free one, announced in the discovery file)")
    srv.add_argument("--cache", help="results folder (default: the user cache dir)")
    srv.add_argument("--device", default="auto", help="auto (CUDA, then MPS, then CPU), cuda, mps or cpu")
    srv.set_defaults(func=cmd_serve)

    pool = sub.add_parser("pool", help="run engines on a Ray cluster behind one address (needs the pool extra)")
    pool.add_argument("--shared", required=True,
                      help="folder every node mounts at the same path: results, job index and token")
    pool.add_argument("--replicas", default=None, help="engine replicas (default: one per GPU, else 1)")
    pool.add_argument("--gpus", default="auto", choices=["auto", "1", "0"],
                      help="GPUs per replica: auto (1 when the cluster has GPUs), 1, or 0 for CPU replicas")
    pool.add_argument("--address", default="local",
                      help="Ray cluster to join: auto (the one `ray start` made this node part of), HOST:PORT, or "
                           "local (default: start Ray on this machine for this pool)")
    add_server_options(pool)
    pool.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    pool.add_argument("--model", help="model every replica loads at start (default: the best one installed there)")
    pool.set_defaults(func=cmd_pool)

    engine = sub.add_parser("engine", help="the local engine: status, stop").add_subparsers(dest="action", required=True)
    status = engine.add_parser("status", help="address, process, jobs and log of the running engine (exit 1: none)")
    status.set_defaults(func=cmd_engine_status)
    engine.add_parser("stop", help="stop the running engine cleanly").set_defaults(func=cmd_engine_stop)
