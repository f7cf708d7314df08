"""How many steps the deterministic samplers need: log-mel distance to a converged probability-flow ODE solution
(DDIM, 500 steps) from the same start noise, on the built-in starter model.
Usage: python bench/samplers.py   (about a minute on 2 CPU cores)"""

from fractions import Fraction

import torch

from engine.config import SamplingConfig
from engine.models import embedded_default
from engine.training.sample_video import make_demo_video
from engine.video import decode_frames
from engine.vta_ldm.pipeline import sample_latents
from engine.vta_ldm.sampling import TIMESTEP_SPACINGS
from engine.vta_ldm.vae import decode
from engine.vta_ldm.vision_encoder import encode_frames


def mel_of(components, context, sampler: str, steps: int, spacing: str) -> torch.Tensor:
    sampling = SamplingConfig(sampler, steps, spacing=spacing)
    timesteps = TIMESTEP_SPACINGS[spacing](components.config.scheduler, steps)
    latents = sample_latents(components.stages, components.config, components.device, context, sampling, timesteps,
                             [11, 12], lambda *a, **k: None)
    return decode(components.stages.vae, latents, components.scale_factor)


def main() -> None:
    import tempfile
    from pathlib import Path

    components = embedded_default()
    with tempfile.TemporaryDirectory() as folder:
        frames = decode_frames(make_demo_video(Path(folder) / "clip.mp4", seconds=4.0), Fraction(0), Fraction(4),
                               rate=components.config.frame_rate, size=components.config.vision.image_size)
    context = encode_frames(components.stages.vision, torch.from_numpy(frames.model_input()))
    reference = mel_of(components, context, "ddim", 500, "trailing")
    scale = (reference - reference.mean()).norm()
    print("relative log-mel distance to DDIM-500 trailing (same start noise, 2 variants)")
    for sampler in ("ddim", "dpmpp_2m", "unipc"):
        for spacing in ("leading", "trailing"):
            row = [f"{steps:>3} steps {float((mel_of(components, context, sampler, steps, spacing) - reference).norm() / scale):.4f}"
                   for steps in (10, 25, 50)]
            print(f"  {sampler:<9} {spacing:<9} " + "   ".join(row))
    ddpm = float((mel_of(components, context, "ddpm", 300, "leading") - reference).norm() / scale)
    print(f"  ddpm-300 (stochastic: a different sample, for scale) {ddpm:.4f}")


if __name__ == "__main__":
    main()
