"""One run, every row of docs/gpu-measurement.md, as ratios to the naive published path (DDPM 300, fp32, full CFG):
reference mode fp32 and half precision, fast / UniPC / draft in half precision, the fast mode compiled (torch.compile
reduce-overhead: CUDA graphs), 1 vs 4 variants, the vision encoder in torch vs ONNX on the CUDA and TensorRT
providers (the provider that really ran), per-stage share of a fast job, peak memory. Published shapes with random
weights, no network.

Half precision is fp16 on CUDA, bf16 on a CPU with bf16 units. On a CPU the GPU rows are skipped with the reason, so
`--tiny` (the test model's shapes) runs in CI (tests/test_gpu_bench.py); bench/speed.py is the CPU benchmark.

Usage: python bench/gpu.py [--device cuda] [--calls 3] [--work DIR] [--skip-onnx] [--tiny]
    (a GPU: about 3-5 minutes, the first TensorRT engine build included; --work DIR keeps the exports and the
    TensorRT engine cache for the next run)
"""

import argparse
import copy
import resource
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

from engine.config import SAMPLING_PRESETS, SamplingConfig
from engine.core.generate import generate
from engine.models import Components, cpu_has_bf16_units, resolve_device
from engine.video import Frames, target_times
from engine.vta_ldm.config import TINY, VTA_LDM, ModelConfig
from engine.vta_ldm.sampling import SAMPLERS, TIMESTEP_SPACINGS, get_alphas_cumprod
from engine.vta_ldm.stages import Stages, build_modules
from engine.vta_ldm.unet import GuidedDenoiser, build_unet
from engine.vta_ldm.vae import decode
from engine.vta_ldm.vision_encoder import OnnxVisionEncoder, encode_frames, export_onnx
from engine.vta_ldm.vocoder import vocode

HALF = {"fp16": torch.float16, "bf16": torch.bfloat16}
ORT_ROWS = {"CUDA": ["CUDAExecutionProvider", "CPUExecutionProvider"],
            "TensorRT": ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]}


@dataclass
class Setup:
    config: ModelConfig
    device: str
    calls: int
    stages: Stages
    context: torch.Tensor  # [1, T, D] of random frames
    pixels: torch.Tensor
    alphas: torch.Tensor
    half: str | None  # fp16 on CUDA, bf16 on CPUs with bf16 units, None: no half precision here

    @property
    def cuda(self) -> bool:
        return self.device.startswith("cuda")


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)


def timed(function, setup: Setup, calls: int | None = None) -> float:
    """Mean seconds per call after one warm-up call, the GPU's queue drained before each reading."""
    function()
    sync(setup.device)
    started = time.perf_counter()
    for _ in range(calls or setup.calls):
        function()
    sync(setup.device)
    return (time.perf_counter() - started) / (calls or setup.calls)


def denoiser(unet, setup: Setup, chunk: int | None = None) -> GuidedDenoiser:
    return GuidedDenoiser(unet, setup.context, 3.0, setup.alphas, chunk, setup.config)


def start(variants: int, setup: Setup) -> torch.Tensor:
    noise = torch.randn(variants, *setup.config.latent_shape, generator=torch.Generator().manual_seed(1))
    return noise.to(setup.device)


def step_time(unet, setup: Setup, variants: int = 1, chunk: int | None = None) -> float:
    """Seconds of one guided denoiser call (a UNet step with CFG) on `variants` latents."""
    model, x = denoiser(unet, setup, chunk), start(variants, setup)
    return timed(lambda: model(x, 601), setup)


def run(unet, setup: Setup, sampling: SamplingConfig, steps: int | None = None) -> torch.Tensor:
    """A sampling loop from fixed noise (the first `steps` timesteps only, when given)."""
    timesteps = TIMESTEP_SPACINGS[sampling.spacing](setup.config.scheduler, sampling.steps)[:steps]
    generators = [torch.Generator().manual_seed(2)]
    return SAMPLERS[sampling.sampler](denoiser(unet, setup), start(1, setup), timesteps, setup.alphas,
                                      generators=generators)


def row(name: str, what: str, seconds: float | None = None, naive: float | None = None, note: str = "") -> None:
    """One table row: its name, what it runs, seconds per 10.24 s window and the ratio to the naive path."""
    timing = f"{seconds:9.2f} s {naive / seconds:6.2f}x" if seconds is not None else ""
    print(f"{name:<10} {what:<38} {timing}" + (f"   {note}" if note else ""))


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.float() - b.float()).abs().max())


def environment(device: str) -> str:
    import onnxruntime

    ort = f"onnxruntime {onnxruntime.__version__} ({onnxruntime.get_device()})"
    if device.startswith("cuda"):
        name = torch.cuda.get_device_name(device)
        return f"{device}: {name}, torch {torch.__version__}, CUDA {torch.version.cuda}, {ort}"
    units = "with" if cpu_has_bf16_units() else "without"
    return f"cpu ({torch.get_num_threads()} threads, {units} bf16 units), torch {torch.__version__}, {ort}"


def build(args: argparse.Namespace, device: str) -> tuple[Setup, torch.nn.Module]:
    """Random weights (seed 0) built on the CPU, the naive UNet a copy of ours without the zero-context shortcut."""
    config = TINY if args.tiny else VTA_LDM
    torch.manual_seed(0)
    stages = build_modules(config)
    naive = build_unet(config.unet, skip_zero_context=False)
    naive.load_state_dict(stages.unet.state_dict())
    for module in (*stages.parts().values(), naive):
        module.to(device)
    count = len(target_times(Fraction(0), config.window_seconds, config.frame_rate))
    size = config.vision.image_size
    pixels = torch.rand(count, 3, size, size, generator=torch.Generator().manual_seed(3))
    context = encode_frames(stages.vision, pixels.to(device))[None]
    half = "fp16" if device.startswith("cuda") else ("bf16" if cpu_has_bf16_units() else None)
    return Setup(config, device, args.calls, stages, context, pixels, get_alphas_cumprod(config.scheduler), half), naive


def other_stages(setup: Setup) -> float:
    """Seconds of the stages around sampling for one window: torch encoder, VAE, vocoder (fp32)."""
    latents = start(1, setup)
    vae = timed(lambda: decode(setup.stages.vae, latents, 1.0), setup, 1)
    mel = decode(setup.stages.vae, latents, 1.0)
    vocoder = timed(lambda: vocode(setup.stages.vocoder, mel), setup, 1)
    encoder = timed(lambda: encode_frames(setup.stages.vision, setup.pixels.to(setup.device)), setup, 1)
    return encoder + vae + vocoder


def sampling_rows(setup: Setup, naive, half_unet) -> float:
    """naive / reference / fast / draft rows; returns the naive total per window."""
    ours = setup.stages.unet
    rest = other_stages(setup)
    reference = SAMPLING_PRESETS["reference"]
    steps = reference.steps
    naive_step = step_time(naive, setup)
    first = run(naive, setup, reference, 3)
    naive_total = steps * naive_step + rest
    row("naive", f"DDPM {steps} fp32, full CFG", naive_total, naive_total,
        f"a UNet step timed over {setup.calls} calls, x {steps}; encoder + VAE + vocoder {rest:.2f} s")
    exact = run(ours, setup, reference, 3)
    total = steps * step_time(ours, setup) + rest
    row("reference", f"DDPM {steps} fp32, skip + K/V once", total, naive_total,
        f"max |x diff| vs naive after 3 steps {max_diff(exact, first):.1e}")
    if half_unet is None:
        row("reference", f"DDPM {steps} half", note="skipped: fp16 needs CUDA, and this CPU has no bf16 units")
    else:
        total = steps * step_time(half_unet, setup) + rest
        row("reference", f"DDPM {steps} {setup.half}", total, naive_total,
            f"max |x diff| vs fp32 after 3 steps {max_diff(run(half_unet, setup, reference, 3), exact):.1e}")
    unet, precision = (half_unet, setup.half) if half_unet is not None else (ours, "fp32")  # what auto runs
    fast = SAMPLING_PRESETS["fast"]
    samplings = (("fast", fast), ("fast", replace(fast, sampler="unipc")), ("draft", SAMPLING_PRESETS["draft"]))
    for name, sampling in samplings:
        total = timed(lambda: run(unet, setup, sampling), setup, 1) + rest
        row(name, f"{sampling.sampler} {sampling.steps} {precision}", total, naive_total, "the whole loop timed")
    return naive_total


def compiled_row(setup: Setup, half_unet, naive_total: float) -> None:
    """The fast mode with the UNet under torch.compile(mode="reduce-overhead"): inductor kernels + CUDA graphs."""
    if not setup.cuda or half_unet is None:
        row("compiled", "fast, torch.compile reduce-overhead", note="skipped: CUDA graphs need a CUDA device (the "
            "capture itself is tested on the CPU: tests/test_stages.py)")
        return
    fast = SAMPLING_PRESETS["fast"]
    compiled = torch.compile(half_unet, mode="reduce-overhead", fullgraph=True)
    started = time.perf_counter()
    eager_x0, compiled_x0 = (denoiser(u, setup)(start(1, setup), 601) for u in (half_unet, compiled))
    sync(setup.device)
    warm = time.perf_counter() - started
    total = timed(lambda: run(compiled, setup, fast), setup, 1) + other_stages(setup)
    row("compiled", f"{fast.sampler} {fast.steps} {setup.half}, reduce-overhead", total, naive_total,
        f"compile + capture {warm:.1f} s once; max |x0 diff| vs eager {max_diff(compiled_x0, eager_x0):.1e}")


def variants_row(setup: Setup, unet) -> None:
    one, batched, chunked = step_time(unet, setup), step_time(unet, setup, 4), step_time(unet, setup, 4, chunk=1)
    row("variants", f"4 vs 1 per UNet step, {str(unet.dtype).removeprefix('torch.')}",
        note=f"in one call {batched / one:.2f}x the time of one (goal <= 2.2x); one CFG pair per call "
             f"{chunked / one:.2f}x")


def encoder_row(setup: Setup, work: Path, skip: bool) -> OnnxVisionEncoder | None:
    """torch fp32 vs ONNX (fp16 on GPUs, int8 on CPUs) on each provider; returns the fastest encoder that started."""
    pixels = setup.pixels.to(setup.device)
    torch_time = timed(lambda: encode_frames(setup.stages.vision, pixels), setup)
    cells = [f"torch fp32 {torch_time:.3f} s"]
    if skip:
        row("encoder", f"{len(pixels)} frames", note=f"{cells[0]}; ONNX skipped (--skip-onnx)")
        return None
    import onnxruntime

    precision = "fp16" if setup.cuda else "int8"
    path = work / f"vision-{precision}.onnx"
    if not path.is_file():
        export_onnx(copy.deepcopy(setup.stages.vision).cpu(), path, precision)
    rows = ORT_ROWS if setup.cuda else {**ORT_ROWS, "CPU": ["CPUExecutionProvider"]}
    best, best_time = None, torch_time  # ONNX only where it beats torch
    for name, providers in rows.items():
        if providers[0] not in onnxruntime.get_available_providers():
            cells.append(f"{name}: skipped: this onnxruntime has no {providers[0]} (pip install onnxruntime-gpu)")
            continue
        if providers[0] != "CPUExecutionProvider" and not setup.cuda:
            cells.append(f"{name}: skipped: no CUDA device")
            continue
        started = time.perf_counter()
        encoder = OnnxVisionEncoder(path, providers)
        encode_frames(encoder, pixels)  # TensorRT builds its engine here (cached in the work folder)
        first = time.perf_counter() - started
        seconds = timed(lambda: encode_frames(encoder, pixels), setup)
        ran = "" if encoder.providers[0] == providers[0] else f" (did not start: ran on {encoder.providers[0]})"
        cells.append(f"{name}: ONNX {precision} on {encoder.providers[0]}{ran} {seconds:.3f} s "
                     f"({torch_time / seconds:.2f}x; session + first call {first:.1f} s)")
        if seconds < best_time:
            best, best_time = encoder, seconds
    row("encoder", f"{len(pixels)} frames", note="; ".join(cells))
    return best


def stages_row(setup: Setup, half_unet, encoder) -> None:
    """Shares of a real fast job over one window, from its StepInfo callbacks. Only the job's modules stay loaded
    (the fp32 UNet, and the torch encoder when ONNX runs, are released), so on a GPU its peak memory is a job's."""
    setup.stages = replace(setup.stages, unet=half_unet if half_unet is not None else setup.stages.unet,
                           vision=encoder if encoder is not None else setup.stages.vision)
    precision = setup.half or "fp32"
    components = Components("bench", setup.config, setup.stages, 1.0, (), False, setup.device, precision=precision)
    size = setup.config.vision.image_size
    times = target_times(Fraction(0), setup.config.window_seconds, setup.config.frame_rate)
    rgb = np.random.default_rng(4).integers(0, 256, (len(times), size, size, 3), dtype=np.uint8)
    frames = Frames(rgb, tuple(times), Fraction(0), setup.config.window_seconds, setup.config.frame_rate)
    spent, last = defaultdict(float), [time.perf_counter()]

    def note(info) -> None:
        sync(setup.device)
        now = time.perf_counter()
        if info.step > 0:
            spent[info.stage] += now - last[0]
        last[0] = now

    if setup.cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(setup.device)
        resident = torch.cuda.memory_allocated(setup.device)
    generate(frames, components=components, sampling=SAMPLING_PRESETS["fast"], callback=note)
    total = sum(spent.values())
    what = "ONNX" if encoder is not None else "torch"
    row("stages", f"fast job, {precision} UNet, {what} encoder",
        note=f"{total:.2f} s: " + ", ".join(f"{stage} {seconds / total:.0%}" for stage, seconds in spent.items()))
    if setup.cuda:
        peak = torch.cuda.max_memory_allocated(setup.device)
        row("memory", "peak of that job", note=f"{peak / 2**30:.2f} GB (torch.cuda.max_memory_allocated; weights "
            f"{resident / 2**30:.2f} GB of it)")


def memory_row(setup: Setup) -> None:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    where = "; on the GPU: the job's row above" if setup.cuda else ""
    row("memory", "process peak RSS", note=f"{peak:.2f} GB (the whole bench: naive, fp32 and half UNets at "
        f"once){where}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto", help="auto (CUDA when there is one), cuda, cuda:N or cpu")
    parser.add_argument("--calls", type=int, default=3, help="timed calls per measurement, after a warm-up")
    parser.add_argument("--work", help="keep the ONNX exports and the TensorRT engine cache in this folder")
    parser.add_argument("--skip-onnx", action="store_true", help="no ONNX export (1.2 GB of disk at published shapes)")
    parser.add_argument("--tiny", action="store_true", help="the test model's shapes (CI)")
    args = parser.parse_args()
    device = resolve_device(args.device)
    print(f"environment {environment(device)}; {'tiny' if args.tiny else 'published'} shapes, random weights")
    setup, naive = build(args, device)
    half_unet = copy.deepcopy(setup.stages.unet).to(HALF[setup.half]) if setup.half else None
    naive_total = sampling_rows(setup, naive, half_unet)
    del naive  # GPU memory for what follows
    compiled_row(setup, half_unet, naive_total)
    variants_row(setup, half_unet if half_unet is not None else setup.stages.unet)
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(args.work) if args.work else Path(scratch)
        work.mkdir(parents=True, exist_ok=True)
        encoder = encoder_row(setup, work, args.skip_onnx)
        stages_row(setup, half_unet, encoder)
    memory_row(setup)


if __name__ == "__main__":
    main()
