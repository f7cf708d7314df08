"""UNet: diffusers `UNet2DConditionModel` from an embedded config, wrapped as a guided `(x, t) -> x0` denoiser."""

import torch
from diffusers import UNet2DConditionModel
from diffusers.models.attention_processor import AttnProcessor2_0

from engine.config import UNetConfig


class ZeroContextCrossAttention:
    """Cross-attention processor that skips batch rows whose context is all zeros.

    Cross-attention `to_k`/`to_v` have no bias, so a zero context gives K = V = 0, uniform weights and a zero
    attention output: the layer returns exactly `to_out.0.bias` (reference notes 1.4). Rows with a real context
    go through the normal attention.
    """

    def __init__(self) -> None:
        self.attend = AttnProcessor2_0()

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, **kwargs):
        zero = encoder_hidden_states.flatten(1).abs().amax(dim=1) == 0
        if not bool(zero.any()):
            return self.attend(attn, hidden_states, encoder_hidden_states, attention_mask, **kwargs)
        out = attn.to_out[0].bias.to(hidden_states.dtype).expand(hidden_states.shape).clone()
        real = ~zero
        if bool(real.any()):
            mask = attention_mask[real] if attention_mask is not None else None
            out[real] = self.attend(attn, hidden_states[real], encoder_hidden_states[real], mask, **kwargs)
        return out


def build_unet(config: UNetConfig, *, skip_zero_context: bool = True) -> UNet2DConditionModel:
    """Random-initialised UNet of `config`; with `skip_zero_context` the unconditional cross-attention is skipped."""
    unet = UNet2DConditionModel(**config.diffusers_kwargs()).eval()
    processors = {}
    for name, processor in unet.attn_processors.items():
        is_cross = name.endswith("attn2.processor")
        processors[name] = ZeroContextCrossAttention() if is_cross and skip_zero_context else AttnProcessor2_0()
    unet.set_attn_processor(processors)
    return unet


class GuidedDenoiser:
    """Adapts a v-prediction UNet to the sampler contract `model(x, t) -> denoised x0`.

    Classifier-free guidance uses VTA-LDM's all-zeros unconditional context, batched as [uncond, cond], and
    is applied to v before converting to x0 (the reference's order of operations).
    """

    def __init__(self, unet: UNet2DConditionModel, context: torch.Tensor, guidance: float, alphas_cumprod: torch.Tensor):
        self.unet = unet
        self.guidance = guidance
        self.alphas_cumprod = alphas_cumprod
        self.context = torch.cat([torch.zeros_like(context), context]) if guidance != 1.0 else context

    @torch.inference_mode()
    def velocity(self, x: torch.Tensor, t: int) -> torch.Tensor:
        batch = x.shape[0]
        context = self.context.repeat_interleave(batch, dim=0)  # [uncond] * batch + [cond] * batch
        if self.guidance == 1.0:
            return self.unet(x, t, encoder_hidden_states=context).sample
        v_uncond, v_cond = self.unet(torch.cat([x, x]), t, encoder_hidden_states=context).sample.chunk(2)
        return v_uncond + self.guidance * (v_cond - v_uncond)

    def __call__(self, x: torch.Tensor, t: int) -> torch.Tensor:
        alpha_prod = self.alphas_cumprod[t]
        return (alpha_prod**0.5) * x - ((1 - alpha_prod) ** 0.5) * self.velocity(x, t)
