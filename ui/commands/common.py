"""What the commands share: exact time arguments, the progress line, what a run announces, the generation options,
and reaching an engine."""

from __future__ import annotations

import argparse
import os
import sys
import typing
from dataclasses import asdict
from fractions import Fraction

from engine.config import LEVEL_MODES, SAMPLING_PRESETS, SamplerName, SamplingConfig
from engine.serving.client import EngineClient, EngineError, format_eta, progress_text, read_discovery

if typing.TYPE_CHECKING:
    from engine.progress import StepInfo

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
        self.show(progress_text(shown, bar=30), info)

    def training_step(self, info: StepInfo, loss: float) -> None:
        """A training step: `[stage] step k/n loss x · m:ss left`."""
        left = format_eta(info.eta or 0)
        self.show(f"[{info.stage}] step {info.step}/{info.total} loss {loss:.4f} · {left} left", info)

    def show(self, line: str, info: StepInfo) -> None:
        """Redraw `line` in place on a terminal; in a log, write it at every tenth of the stage."""
        if self.interactive:
            self.stream.write(f"\r{line}   ")
        elif info.step == info.total or info.step % max(1, info.total // 10) == 0:
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.interactive:
            self.stream.write("\n")


def announce_model(name: str, licences, trained: bool, sampling: SamplingConfig, seeds: tuple[int, ...]) -> None:
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


def announce_started(client: EngineClient, until: str) -> None:
    """Say on stderr that an engine was started for us, where it logs, and when it stops."""
    if client.started is not None:
        print(f"started an engine at {client.url} (pid {client.started.pid}; log {client.started.log}); it stops "
              f"{until} unless other clients have jobs on it", file=sys.stderr)


def engine_client(url: str, token: str | None) -> EngineClient:
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


def engine_model(client: EngineClient, name: str | None) -> dict:
    """The engine's entry for model `name`, or its default model."""
    entries = client.models()
    wanted = [m for m in entries if (m["name"] == name if name else m["default"])]
    if not wanted:
        raise EngineError(f"The engine has no model '{name}'; it has: {', '.join(m['name'] for m in entries)}.")
    return wanted[0]


def running_engine() -> EngineClient | None:
    """The engine the discovery file names, when it answers."""
    info = read_discovery()
    client = EngineClient(info.url, info.token) if info is not None else None
    return client if client is not None and client.alive() else None


def add_generation_options(parser: argparse.ArgumentParser, default_output: str | None, output_help: str) -> None:
    parser.add_argument("--variants", type=int, default=1, help="number of variants (seeds seed, seed+1, ...)")
    parser.add_argument("--seed", type=int, help="first seed (random when omitted; always recorded)")
    parser.add_argument("--model", help="installed model name, or 'builtin' (default: best installed)")
    parser.add_argument("--preset", choices=list(SAMPLING_PRESETS), default="fast",
                        help="fast (default): DPM-Solver++(2M) 25 steps; reference: the published DDPM 300 steps "
                             "(the same onset accuracy on the starter model, 12x the time); MMAudio models: Euler "
                             "25 steps, guidance 4.5, for both")
    parser.add_argument("--prompt", action="append",
                        help="what the sound should be, for models that take text (MMAudio); repeat it for layers "
                             "(each prompt its own variants, stem and track: --prompt footsteps --prompt wind)")
    parser.add_argument("--negative-prompt", help="what the sound should not be (every layer), for models that take text")
    parser.add_argument("--sampler", choices=list(typing.get_args(SamplerName)), help="override the preset's sampler")
    parser.add_argument("--steps", type=int, help="override the preset's steps")
    parser.add_argument("--guidance", type=float, help="classifier-free guidance scale (reference: 3)")
    parser.add_argument("--device", default="auto", help="auto (CUDA, then MPS, then CPU), cuda, mps or cpu")
    parser.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16"],
                        help="UNet precision: auto = fp16 on GPUs, fp32 on CPUs")
    parser.add_argument("--encoder", metavar="ONNX",
                        help="run the picture encoders from this ONNX export (`foley models export-encoder`)")
    parser.add_argument("--legacy-frames", action="store_true",
                        help="sample frames by the reference code's own rule (VTA-LDM: int(fps) frame indices; "
                             "MMAudio: its load_video), for parity checks")
    parser.add_argument("--level", choices=LEVEL_MODES, default="normalised",
                        help="normalised (default): -23 LUFS, true peak under -1 dBTP, by a gain the sidecar records; "
                        "raw: the model's output unchanged")
    parser.add_argument("-o", "--output", default=default_output, help=output_help)
    parser.add_argument("--engine", metavar="URL",
                        help="run on an engine server: its URL, or 'auto' to use (or start) the local one")
    parser.add_argument("--token", help="the engine's token (default: FOLEY_ENGINE_TOKEN or the discovery file)")
