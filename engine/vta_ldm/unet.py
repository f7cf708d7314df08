"""UNet: diffusers `UNet2DConditionModel` from an embedded config, wrapped as a guided `(x, t) -> x0` denoiser."""

from fractions import Fraction

import torch
import torch.nn.functional as F
from diffusers import UNet2DConditionModel
from diffusers.models.attention_processor import AttnProcessor2_0

from engine.vta_ldm.config import ModelConfig, UNetConfig


class ZeroContextCrossAttention:
    """Cross-attention that skips all-zero context rows and computes the context's K/V once per job.

    Cross-attention `to_k`/`to_v` have no bias, so a zero context gives K = V = 0, uniform weights and a zero
    attention output: the layer returns exactly `to_out.0.bias` (reference notes 1.4). The conditioning does
    not change between sampling steps, so K and V of the real rows are kept for as long as the caller passes
    the same context tensor (GuidedDenoiser does, for a whole job). Attention itself is torch's SDPA.
    """

    def __init__(self) -> None:
        self._cache: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None  # (context, K, V)

    def _keys_values(self, attn, context: torch.Tensor, real: torch.Tensor):
        if self._cache is None or self._cache[0] is not context:
            rows = context[real]
            heads = attn.heads
            k = attn.to_k(rows).unflatten(-1, (heads, -1)).transpose(1, 2)
            v = attn.to_v(rows).unflatten(-1, (heads, -1)).transpose(1, 2)
            self._cache = (context, k, v)
        return self._cache[1], self._cache[2]

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, **kwargs):
        assert attention_mask is None and attn.norm_cross is None and not attn.residual_connection
        zero = encoder_hidden_states.flatten(1).abs().amax(dim=1) == 0
        out = attn.to_out[0].bias.to(hidden_states.dtype).expand(hidden_states.shape).clone()
        real = ~zero
        if bool(real.any()):
            k, v = self._keys_values(attn, encoder_hidden_states, real)
            q = attn.to_q(hidden_states[real]).unflatten(-1, (attn.heads, -1)).transpose(1, 2)
            attended = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).flatten(2)
            out[real] = attn.to_out[1](attn.to_out[0](attended)) / attn.rescale_output_factor
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


def aligned_features(context: torch.Tensor, config: ModelConfig) -> torch.Tensor | None:
    """Frame-aligned conditioning: the last `aligned_channels` of each context token [B, T, D], placed on the
    latent frame that shows the same moment and repeated across frequency -> [B, C, latent_frames, latent_bins];
    latent frames after the last token get zeros. None for models without it (VTA-LDM)."""
    channels = config.unet.aligned_channels
    if not channels:
        return None
    tokens = context[..., -channels:]
    index = torch.tensor([int(Fraction(j) * config.frame_rate / config.latent_rate) for j in range(config.latent_frames)])
    valid = index < tokens.shape[1]
    laid = torch.zeros(tokens.shape[0], config.latent_frames, channels, dtype=tokens.dtype, device=tokens.device)
    laid[:, valid] = tokens[:, index[valid]]
    return laid.transpose(1, 2)[..., None].expand(-1, -1, -1, config.latent_bins)


class GuidedDenoiser:
    """Adapts a v-prediction UNet to the sampler contract `model(x, t) -> denoised x0`.

    Classifier-free guidance uses VTA-LDM's all-zeros unconditional context, batched as [uncond, cond], and
    is applied to v before converting to x0 (the reference's order of operations).
    """

    def __init__(self, unet: UNet2DConditionModel, context: torch.Tensor, guidance: float, alphas_cumprod: torch.Tensor,
                 chunk: int | None = None, config: ModelConfig | None = None):
        self.unet = unet
        self.dtype = unet.dtype  # fp32, or bf16/fp16 weights; the sampler's arithmetic stays fp32
        self.chunk = chunk  # variants per UNet call: all at once on GPUs; on CPUs one at a time is faster
        self.guidance = guidance
        self.alphas_cumprod = alphas_cumprod
        self.context = torch.cat([torch.zeros_like(context), context]) if guidance != 1.0 else context
        self._batched: dict[int, tuple] = {}  # one tensor per batch size: the processors key K/V on it
        self.aligned = aligned_features(self.context, config) if config is not None else None

    @torch.inference_mode()
    def velocity(self, x: torch.Tensor, t: int) -> torch.Tensor:
        size = self.chunk or x.shape[0]
        return torch.cat([self._velocity(part, t) for part in x.split(size)])

    def _velocity(self, x: torch.Tensor, t: int) -> torch.Tensor:
        batch = x.shape[0]
        if batch not in self._batched:  # [uncond] * batch + [cond] * batch
            aligned = None if self.aligned is None else self.aligned.repeat_interleave(batch, dim=0).to(self.dtype)
            self._batched[batch] = (self.context.repeat_interleave(batch, dim=0).to(self.dtype), aligned)
        context, aligned = self._batched[batch]
        x = x.to(self.dtype)
        if self.guidance != 1.0:
            x = torch.cat([x, x])
        if aligned is not None:
            x = torch.cat([x, aligned], dim=1)
        v = self.unet(x, t, encoder_hidden_states=context).sample.float()
        if self.guidance == 1.0:
            return v
        v_uncond, v_cond = v.chunk(2)
        return v_uncond + self.guidance * (v_cond - v_uncond)

    def __call__(self, x: torch.Tensor, t: int) -> torch.Tensor:
        alpha_prod = self.alphas_cumprod[t]
        return (alpha_prod**0.5) * x - ((1 - alpha_prod) ** 0.5) * self.velocity(x, t)
