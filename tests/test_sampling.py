"""Samplers: schedule, one closed-form DDPM step, and full loops against diffusers' own schedulers."""

import numpy as np
import pytest
import torch
from diffusers import DDIMScheduler, DDPMScheduler, DPMSolverMultistepScheduler, UniPCMultistepScheduler

from engine.vta_ldm.config import SchedulerConfig
from engine.vta_ldm.sampling import (
    ddpm_step,
    get_alphas_cumprod,
    get_timesteps_leading,
    get_timesteps_trailing,
    sample_ddim,
    sample_ddpm,
    sample_dpmpp_2m,
    sample_unipc,
)

CONFIG = SchedulerConfig()


def diffusers_scheduler() -> DDPMScheduler:
    """DDPMScheduler configured with SD-2.1's numbers as the reference reads them (notes 1.6)."""
    return DDPMScheduler(
        num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
        prediction_type="v_prediction", clip_sample=False, steps_offset=1, variance_type="fixed_small",
        timestep_spacing="leading",
    )


def test_reference_timesteps_start_at_898_and_end_at_1():
    timesteps = get_timesteps_leading(CONFIG, 300)
    assert len(timesteps) == 300
    assert timesteps[:3] == [898, 895, 892] and timesteps[-1] == 1
    scheduler = diffusers_scheduler()
    scheduler.set_timesteps(300)
    assert timesteps == scheduler.timesteps.tolist()


def test_trailing_timesteps_match_diffusers():
    scheduler = diffusers_scheduler()
    scheduler.register_to_config(timestep_spacing="trailing")
    scheduler.set_timesteps(25)
    assert get_timesteps_trailing(CONFIG, 25) == scheduler.timesteps.tolist() and scheduler.timesteps[0] == 999


def test_alphas_cumprod_matches_closed_form():
    betas = np.linspace(0.00085**0.5, 0.012**0.5, 1000, dtype=np.float64) ** 2
    expected = np.cumprod(1 - betas)
    np.testing.assert_allclose(get_alphas_cumprod(CONFIG).numpy(), expected, rtol=2e-6)
    assert abs(float(get_alphas_cumprod(CONFIG)[898]) - 0.01445) < 1e-4  # notes: alpha-bar at t=898


def test_one_step_matches_the_closed_form_update():
    """x0 = sqrt(a)x - sqrt(1-a)v; mean = sqrt(a')b/(1-a) x0 + sqrt(a/a')(1-a')/(1-a) x; var = (1-a')/(1-a) b."""
    rng = np.random.default_rng(1)
    x, v, noise = (rng.standard_normal((1, 8, 4, 4)) for _ in range(3))
    alphas = np.cumprod(1 - np.linspace(0.00085**0.5, 0.012**0.5, 1000) ** 2)
    a, a_prev = alphas[898], alphas[895]
    x0 = np.sqrt(a) * x - np.sqrt(1 - a) * v
    beta = 1 - a / a_prev
    mean = np.sqrt(a_prev) * beta / (1 - a) * x0 + np.sqrt(a / a_prev) * (1 - a_prev) / (1 - a) * x
    expected = mean + np.sqrt((1 - a_prev) / (1 - a) * beta) * noise

    t = lambda array: torch.tensor(array, dtype=torch.float64)  # noqa: E731
    got = ddpm_step(t(x), t(x0), t(a), t(a_prev), t(noise)).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


class ToyVelocity(torch.nn.Module):
    """A small deterministic v-predictor standing in for the UNet."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(8, 8, 3, padding=1)

    def forward(self, x, t):
        return torch.tanh(self.conv(x)) * (1 + t / 1000)


def test_full_loop_equals_diffusers_ddpm_scheduler():
    velocity = ToyVelocity()
    alphas = get_alphas_cumprod(CONFIG)
    steps = 300  # the published reference mode
    timesteps = get_timesteps_leading(CONFIG, steps)

    def denoiser(x, t):
        return alphas[t] ** 0.5 * x - (1 - alphas[t]) ** 0.5 * velocity(x, t)

    generator = torch.Generator().manual_seed(3)
    x = torch.randn((1, 8, 16, 4), generator=generator)
    with torch.no_grad():
        ours = sample_ddpm(denoiser, x.clone(), timesteps, alphas, generators=[generator])

    scheduler = diffusers_scheduler()
    scheduler.set_timesteps(steps)
    generator = torch.Generator().manual_seed(3)
    latents = torch.randn((1, 8, 16, 4), generator=generator)
    with torch.no_grad():
        for t in scheduler.timesteps:
            latents = scheduler.step(velocity(latents, int(t)), t, latents, generator=generator).prev_sample
    torch.testing.assert_close(ours, latents, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(ours, x)


def test_callback_sees_every_step_in_order():
    seen = []
    alphas = get_alphas_cumprod(CONFIG)
    sample_ddpm(lambda x, t: x * 0, torch.zeros(1, 1, 2, 2), get_timesteps_leading(CONFIG, 10), alphas,
                generators=[torch.Generator().manual_seed(0)], callback=seen.append)
    assert seen == list(range(1, 11))


SCHEDULE = dict(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                prediction_type="v_prediction", steps_offset=1, timestep_spacing="leading")


@pytest.mark.parametrize(("ours", "theirs"), [
    (sample_ddim, DDIMScheduler(**SCHEDULE, clip_sample=False, set_alpha_to_one=True)),
    (sample_dpmpp_2m, DPMSolverMultistepScheduler(**SCHEDULE, algorithm_type="dpmsolver++", solver_order=2,
                                                  final_sigmas_type="zero")),
    (sample_unipc, UniPCMultistepScheduler(**SCHEDULE, solver_order=2, solver_type="bh2", predict_x0=True,
                                           final_sigmas_type="zero")),
], ids=["ddim", "dpmpp_2m", "unipc"])
def test_fast_samplers_equal_diffusers_schedulers(ours, theirs):
    velocity = ToyVelocity()
    alphas = get_alphas_cumprod(CONFIG)
    theirs.set_timesteps(25)
    timesteps = [int(t) for t in theirs.timesteps]

    def denoiser(x, t):
        return alphas[t] ** 0.5 * x - (1 - alphas[t]) ** 0.5 * velocity(x, t)

    x = torch.randn((2, 8, 16, 4), generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        mine = ours(denoiser, x.clone(), timesteps, alphas)
        latents = x.clone()
        for t in theirs.timesteps:
            latents = theirs.step(velocity(latents, int(t)), t, latents).prev_sample
    torch.testing.assert_close(mine, latents, rtol=1e-4, atol=1e-4)


def test_a_row_in_a_batch_equals_its_seed_alone():
    velocity = ToyVelocity()
    alphas = get_alphas_cumprod(CONFIG)
    timesteps = get_timesteps_leading(CONFIG, 20)

    def denoiser(x, t):
        return alphas[t] ** 0.5 * x - (1 - alphas[t]) ** 0.5 * velocity(x, t)

    def run(seeds):
        generators = [torch.Generator().manual_seed(s) for s in seeds]
        x = torch.cat([torch.randn((1, 8, 16, 4), generator=g) for g in generators])
        with torch.no_grad():
            return sample_ddpm(denoiser, x, timesteps, alphas, generators=generators)

    batch = run([7, 8, 9, 10])
    torch.testing.assert_close(batch[2:3], run([9]), rtol=1e-5, atol=1e-5)
