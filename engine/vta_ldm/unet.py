"""UNet: diffusers `UNet2DConditionModel` from an embedded config, wrapped as a guided `(x, t) -> x0` denoiser."""

from fractions import Fraction

import torch
import torch.nn.functional as F
from diffusers import UNet2DConditionModel
from diffusers.models.attention_processor import AttnProcessor2_0

from engine.vta_ldm.config import ModelConfig, UNetConfig


class ZeroContextCrossAttention:
    """Cross-attention that computes the job's context K/V once and skips the unconditional rows.

    Cross-attention `to_k`/`to_v` have no bias, so VTA-LDM's all-zeros unconditional context gives K = V = 0,
    uniform weights and a zero attention output: the layer returns exactly `to_out.0.bias` (reference notes 1.4).
    `bind` gives the processor one context's K/V as tensors; a guided batch is then laid out [uncond] * n +
    [cond] * n (GuidedDenoiser's order), so which rows to skip follows from the batch's shape, not its values:
    the call has no data-dependent branch and torch.compile / CUDA graphs capture it at fixed shapes. Unbound
    (direct UNet calls), it is plain cross-attention over the context it is given. Attention itself is torch's SDPA.
    """

    def __init__(self) -> None:
        self.context: torch.Tensor | None = None  # the bound context [1, T, D]
        self.keys: torch.Tensor | None = None  # its K and V, [1, heads, T, head_dim]
        self.values: torch.Tensor | None = None
        self.guided = False

    def bind(self, attn, context: torch.Tensor, guided: bool) -> None:
        """Keep the K/V of `context` [1, T, D]; with `guided`, the first half of every batch is unconditional."""
        self.context, self.guided = context, guided
        self.keys, self.values = _heads(attn, attn.to_k(context)), _heads(attn, attn.to_v(context))

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, **kwargs):
        assert attention_mask is None and attn.norm_cross is None and not attn.residual_connection
        if self.keys is None:
            context = encoder_hidden_states
            return _attend(attn, hidden_states, _heads(attn, attn.to_k(context)), _heads(attn, attn.to_v(context)))
        rows = hidden_states.shape[0]
        skipped = rows // 2 if self.guided else 0
        shape = (rows - skipped, -1, -1, -1)
        out = _attend(attn, hidden_states[skipped:], self.keys.expand(shape), self.values.expand(shape))
        if not skipped:
            return out
        bias = attn.to_out[0].bias.to(out.dtype).expand(skipped, *out.shape[1:])
        return torch.cat([bias, out])


def _heads(attn, projected: torch.Tensor) -> torch.Tensor:
    """[B, L, heads * d] -> [B, heads, L, d]."""
    return projected.unflatten(-1, (attn.heads, -1)).transpose(1, 2)


def _attend(attn, hidden_states: torch.Tensor, keys: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """SDPA of the queries of `hidden_states` over `keys`/`values`, through the output projection."""
    attended = F.scaled_dot_product_attention(_heads(attn, attn.to_q(hidden_states)), keys, values)
    return attn.to_out[1](attn.to_out[0](attended.transpose(1, 2).flatten(2))) / attn.rescale_output_factor


def cross_attentions(unet: UNet2DConditionModel) -> list:
    """The attention modules whose processor is a `ZeroContextCrossAttention`."""
    return [m for m in unet.modules() if isinstance(getattr(m, "processor", None), ZeroContextCrossAttention)]


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
        self.tokens = context.to(self.dtype)  # [1, T, D], what the cross-attentions are bound to
        self.context = torch.cat([torch.zeros_like(context), context]) if guidance != 1.0 else context
        self._batched: dict[int, tuple] = {}  # context (for plain processors) and aligned features per batch size
        self.aligned = aligned_features(self.context, config) if config is not None else None
        self._cross = cross_attentions(unet)

    def _bind(self) -> None:
        """K/V of this job's context, computed once (again only if another denoiser bound the same UNet since)."""
        guided = self.guidance != 1.0
        bound = self._cross[0].processor if self._cross else None
        if bound is not None and (bound.context is not self.tokens or bound.guided != guided):
            for attn in self._cross:
                attn.processor.bind(attn, self.tokens, guided)

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
        self._bind()
        x = x.to(self.dtype)
        if self.guidance != 1.0:
            x = torch.cat([x, x])
        if aligned is not None:
            x = torch.cat([x, aligned], dim=1)
        # the timestep as a tensor on the device: a Python int would be a constant in a compiled graph, one per step
        v = self.unet(x, torch.tensor(t, device=x.device), encoder_hidden_states=context).sample.float()
        if self.guidance == 1.0:
            return v
        v_uncond, v_cond = v.chunk(2)
        return v_uncond + self.guidance * (v_cond - v_uncond)

    def __call__(self, x: torch.Tensor, t: int) -> torch.Tensor:
        alpha_prod = self.alphas_cumprod[t]
        return (alpha_prod**0.5) * x - ((1 - alpha_prod) ** 0.5) * self.velocity(x, t)
