"""MMAudio's flow-prediction network (Cheng et al., CVPR 2025), laid out key for key like the published weights.

The network is a multimodal diffusion transformer (MM-DiT, Esser et al. 2024): joint blocks attend over the audio
latent, CLIP video and CLIP text tokens together, then fused blocks run on the latent alone, conditioned per latent
frame on the time, the global CLIP/text condition and the Synchformer features stretched to the latent length.

A published `mmaudio_<variant>.pth` is a flat state dict: `torch.load(path, map_location="cpu", weights_only=True)`
returns `dict[str, Tensor]` (no nesting, no `module.` prefix), the `state_dict()` of their `MMAudio` module (for the
releases, the post-hoc EMA model). It holds the latent normalisation statistics (`latent_mean`, `latent_std`,
(1, 1, latent_dim)), the CLIP features of the empty prompt (`empty_string_feat`, (77, 1024)) and the learned empty
video features (`empty_clip_feat`, `empty_sync_feat`, (1, dim)). Files written by older code may also hold the
buffers `t_embed.freqs`, `latent_rot` and `clip_rot`, which their loader deletes and recomputes;
`network_weights` does the same. Their training checkpoints (`*_ckpt_*.pth`) nest the weights under `"weights"`.
"""

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from fractions import Fraction

import torch
import torch.nn.functional as F
from torch import nn

from engine.checkpoints import check_state, state_problems
from engine.errors import CheckpointError

logger = logging.getLogger(__name__)

SYNC_TOKENS_PER_SEGMENT = 8  # Synchformer features per 16-frame segment; `sync_pos_emb` has one row per token
RECOMPUTED_KEYS = ("t_embed.freqs", "latent_rot", "clip_rot")  # buffers older files saved; we compute them


@dataclass(frozen=True)
class SequenceConfig:
    """Token counts of a clip `duration` seconds long: audio latents (one per `latent_downsample` mel frames of
    `hop_length` samples), CLIP frames at `clip_fps`, and Synchformer features (segments of 16 frames every 8 frames
    at 25 fps, 8 features each). A float duration is read as the decimal it prints as (0.64 -> 16/25)."""

    duration: Fraction | float
    sample_rate: int
    hop_length: int
    latent_downsample: int = 2
    clip_fps: int = 8
    sync_fps: int = 25
    sync_segment_frames: int = 16
    sync_step_frames: int = 8

    def __post_init__(self):
        if self.sync_segments < 1:
            shortest = Fraction(self.sync_segment_frames, self.sync_fps)
            raise ValueError(
                f"duration={self.duration} s is shorter than one Synchformer segment ({self.sync_segment_frames} "
                f"frames at {self.sync_fps} fps); pass a duration of at least {float(shortest)} s."
            )

    @property
    def seconds(self) -> Fraction:
        return self.duration if isinstance(self.duration, Fraction) else Fraction(str(self.duration))

    @property
    def sync_segments(self) -> int:
        frames = self.seconds * self.sync_fps
        return math.floor((frames - self.sync_segment_frames) / self.sync_step_frames) + 1

    @property
    def latent_seq_len(self) -> int:
        return math.ceil(self.seconds * self.sample_rate / (self.hop_length * self.latent_downsample))

    @property
    def clip_seq_len(self) -> int:
        return math.floor(self.seconds * self.clip_fps)

    @property
    def sync_seq_len(self) -> int:
        return self.sync_segments * SYNC_TOKENS_PER_SEGMENT

    @property
    def audio_samples(self) -> int:
        """Samples the VAE and vocoder turn `latent_seq_len` latents into (a whole number of latents)."""
        return self.latent_seq_len * self.latent_downsample * self.hop_length


SEQUENCE_16K = SequenceConfig(duration=Fraction(8), sample_rate=16000, hop_length=256)
SEQUENCE_44K = SequenceConfig(duration=Fraction(8), sample_rate=44100, hop_length=512)


@dataclass(frozen=True)
class NetworkConfig:
    """Sizes of one MMAudio network. `sequence` is the clip it is built for (8 s in every release); `v2` selects
    the v2 input projections (SiLU) and time embedding (as many frequencies as `hidden_dim`, max period 1)."""

    name: str
    latent_dim: int
    clip_dim: int
    sync_dim: int
    text_dim: int
    hidden_dim: int
    depth: int
    fused_depth: int
    num_heads: int
    sequence: SequenceConfig
    mlp_ratio: float = 4.0
    text_seq_len: int = 77
    v2: bool = False

    def __post_init__(self):
        if self.hidden_dim % (2 * self.num_heads):
            raise ValueError(f"hidden_dim={self.hidden_dim} must split into num_heads={self.num_heads} heads of an "
                             "even width (rotary embeddings rotate channel pairs).")
        if not 0 <= self.fused_depth < self.depth:
            raise ValueError(f"fused_depth={self.fused_depth} must be at least 0 and below depth={self.depth}: the "
                             "network needs at least one joint block.")

    @property
    def head_dim(self) -> int:
        return self.hidden_dim // self.num_heads

    @property
    def joint_depth(self) -> int:
        return self.depth - self.fused_depth


def _published(name: str, latent_dim: int, num_heads: int, depth: int, fused_depth: int, sequence: SequenceConfig,
               v2: bool = False) -> NetworkConfig:
    """A released size: CLIP ViT-H (1024) video and text features, Synchformer (768) features, 64-wide heads."""
    return NetworkConfig(name=name, latent_dim=latent_dim, clip_dim=1024, sync_dim=768, text_dim=1024,
                         hidden_dim=64 * num_heads, depth=depth, fused_depth=fused_depth, num_heads=num_heads,
                         sequence=sequence, v2=v2)


SMALL_16K = _published("small_16k", 20, num_heads=7, depth=12, fused_depth=8, sequence=SEQUENCE_16K)
SMALL_44K = _published("small_44k", 40, num_heads=7, depth=12, fused_depth=8, sequence=SEQUENCE_44K)
MEDIUM_44K = _published("medium_44k", 40, num_heads=14, depth=12, fused_depth=8, sequence=SEQUENCE_44K)
LARGE_44K = _published("large_44k", 40, num_heads=14, depth=21, fused_depth=14, sequence=SEQUENCE_44K)
LARGE_44K_V2 = _published("large_44k_v2", 40, num_heads=14, depth=21, fused_depth=14, sequence=SEQUENCE_44K, v2=True)
# test sizes: two joint blocks (the second pre-only) and one fused block, 8 s at 16 kHz
TINY = NetworkConfig(name="tiny", latent_dim=8, clip_dim=16, sync_dim=16, text_dim=16, hidden_dim=8, depth=3,
                     fused_depth=1, num_heads=2, sequence=SEQUENCE_16K, text_seq_len=8)
TINY_V2 = NetworkConfig(name="tiny_v2", latent_dim=8, clip_dim=16, sync_dim=16, text_dim=16, hidden_dim=8, depth=3,
                        fused_depth=1, num_heads=2, sequence=SEQUENCE_16K, text_seq_len=8, v2=True)
NETWORK_PRESETS: dict[str, NetworkConfig] = {
    config.name: config for config in (SMALL_16K, SMALL_44K, MEDIUM_44K, LARGE_44K, LARGE_44K_V2, TINY, TINY_V2)
}


def swiglu_width(hidden: int, multiple: int = 256) -> int:
    """Hidden width of a SwiGLU standing in for a `hidden`-wide MLP: two thirds of it, rounded up to `multiple`
    (the sizing of the SD3 reference feed-forward)."""
    width = int(2 * hidden / 3)
    return multiple * -(-width // multiple)


class ChannelLastConv1d(nn.Conv1d):
    """A 1D convolution along the token axis of a (batch, tokens, channels) tensor."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.transpose(1, 2)).transpose(1, 2)


def token_map(in_dim: int, out_dim: int, kernel_size: int, bias: bool) -> nn.Module:
    """A per-token linear map, or a length-preserving convolution over tokens when `kernel_size` > 1."""
    if kernel_size == 1:
        return nn.Linear(in_dim, out_dim, bias=bias)
    return ChannelLastConv1d(in_dim, out_dim, kernel_size, padding=kernel_size // 2, bias=bias)


class SwiGLU(nn.Module):
    """Gated feed-forward w2(silu(w1 x) * w3 x) (Shazeer 2020), per token or convolved over `kernel_size` tokens."""

    def __init__(self, dim: int, hidden: int, kernel_size: int = 1):
        super().__init__()
        width = swiglu_width(hidden)
        self.w1 = token_map(dim, width, kernel_size, bias=False)
        self.w2 = token_map(width, dim, kernel_size, bias=False)
        self.w3 = token_map(dim, width, kernel_size, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class TimestepEmbedder(nn.Module):
    """The flow time t in [0, 1] as cos and sin features (frequencies 10000 / max_period * 10000^(-2i/n)), through
    a two-layer SiLU MLP (DiT, Peebles & Xie 2023)."""

    def __init__(self, dim: int, frequencies: int, max_period: float):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(frequencies, dim), nn.SiLU(), nn.Linear(dim, dim))
        self.frequencies, self.max_period = frequencies, max_period
        self.reset_frequencies()

    def reset_frequencies(self) -> None:
        """(Re)compute the frequency table, an unsaved buffer (after loading weights onto modules built on meta)."""
        exponents = torch.arange(0, self.frequencies, 2, dtype=torch.float32) / self.frequencies
        self.register_buffer("freqs", (10000 / self.max_period) * (1.0 / 10000**exponents), persistent=False)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        angles = t[:, None].float() * self.freqs[None]
        return self.mlp(torch.cat([torch.cos(angles), torch.sin(angles)], dim=-1).to(t.dtype))


def rope_tables(length: int, head_dim: int, *, scale: float = 1.0, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Rotary position embedding (Su et al. 2021, theta 10000) of positions 0..length-1, every frequency times
    `scale`: the cos and sin of the angles, each (length, head_dim // 2), float32."""
    exponents = torch.arange(0, head_dim, 2, dtype=torch.float32, device=device) / head_dim
    freqs = 1.0 / 10000**exponents * scale
    angles = torch.arange(length, dtype=torch.float32, device=device)[:, None] * freqs[None]
    return torch.cos(angles), torch.sin(angles)


def apply_rope(x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """Rotate each adjacent channel pair (2i, 2i+1) of x (batch, heads, tokens, head_dim) by its token's angle i,
    in float32."""
    cos, sin = rope
    pairs = x.float().unflatten(-1, (-1, 2))
    even, odd = pairs[..., 0], pairs[..., 1]
    rotated = torch.stack([cos * even - sin * odd, sin * even + cos * odd], dim=-1)
    return rotated.flatten(-2).to(x.dtype)


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Scaled dot-product attention over (batch, heads, tokens, head_dim), heads merged: (batch, tokens, dim)."""
    return F.scaled_dot_product_attention(q, k, v).transpose(1, 2).flatten(2)


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """adaLN modulation (DiT): x * (1 + scale) + shift."""
    return x * (1 + scale) + shift


class SelfAttention(nn.Module):
    """Query, key and value projection with per-head RMS-normalised queries and keys, rotated when `rope` is given.
    The projection's output channels are ordered (head, channel, q/k/v)."""

    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.q_norm = nn.RMSNorm(dim // num_heads)
        self.k_norm = nn.RMSNorm(dim // num_heads)

    def forward(self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor] | None):
        q, k, v = self.qkv(x).unflatten(-1, (self.num_heads, -1, 3)).transpose(1, 2).unbind(-1)
        q, k = self.q_norm(q), self.k_norm(k)
        if rope is not None:
            q, k = apply_rope(q, rope), apply_rope(k, rope)
        return q, k, v


class TokenBlock(nn.Module):
    """One adaLN-modulated transformer block over one token stream; its mixing layers are convolutions over
    `kernel_size` tokens (1: per-token linear maps). A `pre_only` block only feeds its modulated stream into a joint
    attention: the last joint block does not update the CLIP and text streams, which nothing reads afterwards."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, kernel_size: int, pre_only: bool = False):
        super().__init__()
        self.pre_only = pre_only
        self.norm1 = nn.LayerNorm(dim, elementwise_affine=False)
        self.attn = SelfAttention(dim, num_heads)
        if not pre_only:
            self.linear1 = token_map(dim, dim, kernel_size, bias=True)
            self.norm2 = nn.LayerNorm(dim, elementwise_affine=False)
            self.ffn = SwiGLU(dim, int(dim * mlp_ratio), kernel_size)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim, (2 if pre_only else 6) * dim))

    def attention_input(self, x: torch.Tensor, c: torch.Tensor, rope):
        """(q, k, v) of the stream modulated by its condition `c`, and the modulation the output step needs."""
        chunks = self.adaLN_modulation(c).chunk(2 if self.pre_only else 6, dim=-1)
        return self.attn(modulate(self.norm1(x), chunks[0], chunks[1]), rope), chunks[2:]

    def attention_output(self, x: torch.Tensor, attended: torch.Tensor, modulation) -> torch.Tensor:
        """The gated attention residual, then the gated feed-forward of the modulated stream."""
        gate_attention, shift, scale, gate_ffn = modulation
        x = x + self.linear1(attended) * gate_attention
        return x + self.ffn(modulate(self.norm2(x), shift, scale)) * gate_ffn

    def forward(self, x: torch.Tensor, c: torch.Tensor, rope) -> torch.Tensor:
        qkv, modulation = self.attention_input(x, c, rope)
        return self.attention_output(x, attention(*qkv), modulation)


class JointBlock(nn.Module):
    """One attention over the latent, CLIP and text tokens together, each stream with its own weights (MM-DiT).
    The latent stream is conditioned per frame, CLIP and text by the global condition; text has no positions."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, pre_only: bool):
        super().__init__()
        self.pre_only = pre_only
        self.latent_block = TokenBlock(dim, num_heads, mlp_ratio, kernel_size=3)
        self.clip_block = TokenBlock(dim, num_heads, mlp_ratio, kernel_size=3, pre_only=pre_only)
        self.text_block = TokenBlock(dim, num_heads, mlp_ratio, kernel_size=1, pre_only=pre_only)

    def forward(self, latent, clip, text, global_c, frame_c, latent_rope, clip_rope):
        latent_qkv, latent_mod = self.latent_block.attention_input(latent, frame_c, latent_rope)
        clip_qkv, clip_mod = self.clip_block.attention_input(clip, global_c, clip_rope)
        text_qkv, text_mod = self.text_block.attention_input(text, global_c, None)
        joint = [torch.cat(parts, dim=2) for parts in zip(latent_qkv, clip_qkv, text_qkv)]
        latent_out, clip_out, text_out = attention(*joint).split([latent.shape[1], clip.shape[1], text.shape[1]], 1)
        latent = self.latent_block.attention_output(latent, latent_out, latent_mod)
        if self.pre_only:
            return latent, clip, text
        clip = self.clip_block.attention_output(clip, clip_out, clip_mod)
        return latent, clip, self.text_block.attention_output(text, text_out, text_mod)


class FinalBlock(nn.Module):
    """adaLN-modulated layer norm and a 7-tap convolution from the hidden width to the latent channels."""

    def __init__(self, dim: int, out_dim: int):
        super().__init__()
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim, 2 * dim))
        self.norm = nn.LayerNorm(dim, elementwise_affine=False)
        self.conv = ChannelLastConv1d(dim, out_dim, kernel_size=7, padding=3)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        shift, scale = self.adaLN_modulation(c).chunk(2, dim=-1)
        return self.conv(modulate(self.norm(x), shift, scale))


@dataclass(frozen=True)
class Conditions:
    """The per-job input of the network, computed once and reused at every step: the projected CLIP (batch,
    clip_seq_len, hidden) and text (batch, text_seq_len, hidden) tokens, the projected Synchformer features
    stretched to the latent length (batch, latent_seq_len, hidden), and the global condition (batch, hidden)."""

    clip: torch.Tensor
    sync: torch.Tensor
    text: torch.Tensor
    global_c: torch.Tensor

    def expand(self, batch: int) -> "Conditions":
        """The same conditions for every row of a batch of `batch` (views, no copies)."""
        return Conditions(clip=self.clip.expand(batch, -1, -1), sync=self.sync.expand(batch, -1, -1),
                          text=self.text.expand(batch, -1, -1), global_c=self.global_c.expand(batch, -1))

    def stacked(self, other: "Conditions") -> "Conditions":
        """These rows, then `other`'s: both sides of guidance in one batch."""
        return Conditions(*(torch.cat([getattr(self, f.name), getattr(other, f.name)]) for f in fields(self)))


def _input_projections(config: NetworkConfig) -> dict[str, nn.Sequential]:
    """The audio, CLIP, Synchformer and text input projections: a 7-tap convolution or a linear map, an activation,
    then a SwiGLU convolved over 7 or 3 tokens (per token for text). v1 uses SELU and no activation for CLIP and
    text; v2 uses SiLU everywhere (which moves their SwiGLU to index 2 of the published keys)."""
    hidden, wide = config.hidden_dim, 4 * config.hidden_dim
    activation = nn.SiLU if config.v2 else nn.SELU
    clip = [nn.Linear(config.clip_dim, hidden), SwiGLU(hidden, wide, kernel_size=3)]
    text = [nn.Linear(config.text_dim, hidden), SwiGLU(hidden, wide)]
    if config.v2:
        clip.insert(1, nn.SiLU())
        text.insert(1, nn.SiLU())
    return {
        "audio_input_proj": nn.Sequential(ChannelLastConv1d(config.latent_dim, hidden, 7, padding=3), activation(),
                                          SwiGLU(hidden, wide, kernel_size=7)),
        "clip_input_proj": nn.Sequential(*clip),
        "sync_input_proj": nn.Sequential(ChannelLastConv1d(config.sync_dim, hidden, 7, padding=3), activation(),
                                         SwiGLU(hidden, wide, kernel_size=3)),
        "text_input_proj": nn.Sequential(*text),
    }


class MMAudioNetwork(nn.Module):
    """MMAudio's velocity network; `state_dict()` has the keys and shapes of the published `mmaudio_*.pth`.

    Per job: `set_sequence` for a clip of another duration, `prepare_conditions` and `empty_conditions` once; then
    per step `forward` (one velocity) or `guided_velocity`. Latents are sampled normalised (`unnormalize` before the
    VAE). An unloaded network has zero mean and unit std latent statistics and zero empty features.
    """

    def __init__(self, config: NetworkConfig):
        super().__init__()
        self.config = config
        hidden = config.hidden_dim
        for name, projection in _input_projections(config).items():
            self.add_module(name, projection)
        self.clip_cond_proj = nn.Linear(hidden, hidden)
        self.text_cond_proj = nn.Linear(hidden, hidden)
        self.global_cond_mlp = SwiGLU(hidden, 4 * hidden)
        self.sync_pos_emb = nn.Parameter(torch.zeros(1, 1, SYNC_TOKENS_PER_SEGMENT, config.sync_dim))
        self.final_layer = FinalBlock(hidden, config.latent_dim)
        frequencies, max_period = (hidden, 1) if config.v2 else (256, 10000)
        self.t_embed = TimestepEmbedder(hidden, frequencies, max_period)
        self.joint_blocks = nn.ModuleList([
            JointBlock(hidden, config.num_heads, config.mlp_ratio, pre_only=i == config.joint_depth - 1)
            for i in range(config.joint_depth)
        ])
        self.fused_blocks = nn.ModuleList([
            TokenBlock(hidden, config.num_heads, config.mlp_ratio, kernel_size=3) for _ in range(config.fused_depth)
        ])
        self.register_buffer("latent_mean", torch.zeros(1, 1, config.latent_dim))
        self.register_buffer("latent_std", torch.ones(1, 1, config.latent_dim))
        self.register_buffer("empty_string_feat", torch.zeros(config.text_seq_len, config.text_dim))
        self.empty_clip_feat = nn.Parameter(torch.zeros(1, config.clip_dim))
        self.empty_sync_feat = nn.Parameter(torch.zeros(1, config.sync_dim))
        self.set_sequence(config.sequence)

    def set_sequence(self, sequence: SequenceConfig) -> None:
        """Run on clips of `sequence` (e.g. `dataclasses.replace(network.config.sequence, duration=d)`): its token
        counts, and rotary tables in float32 with the CLIP positions stretched onto the latent timeline."""
        built = self.config.sequence
        if (sequence.sample_rate, sequence.hop_length) != (built.sample_rate, built.hop_length):
            raise ValueError(
                f"sequence has {sequence.sample_rate} Hz / hop {sequence.hop_length}, but network "
                f"{self.config.name!r} makes latents of {built.sample_rate} Hz / hop {built.hop_length}; pass "
                "dataclasses.replace(network.config.sequence, duration=...)."
            )
        self.sequence = sequence
        device, head_dim = self.latent_mean.device, self.config.head_dim
        stretch = sequence.latent_seq_len / sequence.clip_seq_len
        self.latent_rope = rope_tables(sequence.latent_seq_len, head_dim, device=device)
        self.clip_rope = rope_tables(sequence.clip_seq_len, head_dim, scale=stretch, device=device)

    def empty_clip(self, batch: int) -> torch.Tensor:
        """The learned 'no video' CLIP features, (batch, clip_seq_len, clip_dim)."""
        return self.empty_clip_feat.unsqueeze(0).expand(batch, self.sequence.clip_seq_len, -1)

    def empty_sync(self, batch: int) -> torch.Tensor:
        """The learned 'no video' Synchformer features, (batch, sync_seq_len, sync_dim)."""
        return self.empty_sync_feat.unsqueeze(0).expand(batch, self.sequence.sync_seq_len, -1)

    def empty_text(self, batch: int) -> torch.Tensor:
        """The CLIP text features of the empty prompt, (batch, text_seq_len, text_dim)."""
        return self.empty_string_feat.unsqueeze(0).expand(batch, -1, -1)

    def prepare_conditions(self, clip: torch.Tensor, sync: torch.Tensor, text: torch.Tensor) -> Conditions:
        """Project CLIP (batch, clip_seq_len, clip_dim), Synchformer (batch, sync_seq_len, sync_dim) and text
        (batch, text_seq_len, text_dim) features once per job. A batch of 1 stands for every row."""
        lengths = self.sequence
        _check_features("clip", clip, lengths.clip_seq_len, self.config.clip_dim)
        _check_features("sync", sync, lengths.sync_seq_len, self.config.sync_dim)
        _check_features("text", text, self.config.text_seq_len, self.config.text_dim)
        batch = _common_batch(clip, sync, text)
        sync = (sync.unflatten(1, (-1, SYNC_TOKENS_PER_SEGMENT)) + self.sync_pos_emb).flatten(1, 2)
        clip, sync, text = self.clip_input_proj(clip), self.sync_input_proj(sync), self.text_input_proj(text)
        sync = F.interpolate(sync.transpose(1, 2), size=lengths.latent_seq_len, mode="nearest-exact").transpose(1, 2)
        global_c = self.global_cond_mlp(self.clip_cond_proj(clip.mean(dim=1)) + self.text_cond_proj(text.mean(dim=1)))
        return Conditions(clip=clip, sync=sync, text=text, global_c=global_c).expand(batch)

    def empty_conditions(self, batch: int, negative_text: torch.Tensor | None = None) -> Conditions:
        """The unconditional input of classifier-free guidance for `batch` rows: the empty video features and the
        empty prompt, or the `negative_text` features (batch or 1, text_seq_len, text_dim) in its place."""
        if negative_text is not None and negative_text.shape[0] not in (1, batch):
            raise ValueError(f"negative_text has {negative_text.shape[0]} rows for a batch of {batch}; pass one "
                             "negative prompt per row, or one for all.")
        text = self.empty_text(1) if negative_text is None else negative_text
        return self.prepare_conditions(self.empty_clip(1), self.empty_sync(1), text).expand(batch)

    def forward(self, latent: torch.Tensor, t: torch.Tensor, conditions: Conditions) -> torch.Tensor:
        """The flow velocity at the normalised `latent` (batch, latent_seq_len, latent_dim) and times `t` (batch,)."""
        _check_features("latent", latent, self.sequence.latent_seq_len, self.config.latent_dim)
        if conditions.clip.shape[0] != latent.shape[0]:
            raise ValueError(f"conditions are for {conditions.clip.shape[0]} rows, the latent has {latent.shape[0]}; "
                             "pass conditions.expand(batch) or prepare them for this batch.")
        latent_rope = tuple(table.to(latent.device) for table in self.latent_rope)
        clip_rope = tuple(table.to(latent.device) for table in self.clip_rope)
        x, clip, text = self.audio_input_proj(latent), conditions.clip, conditions.text
        global_c = self.t_embed(t).unsqueeze(1) + conditions.global_c.unsqueeze(1)
        frame_c = global_c + conditions.sync
        for joint_block in self.joint_blocks:
            x, clip, text = joint_block(x, clip, text, global_c, frame_c, latent_rope, clip_rope)
        for fused_block in self.fused_blocks:
            x = fused_block(x, frame_c, latent_rope)
        # the released weights were trained with the global condition here, not the per-frame one (their issue #55)
        return self.final_layer(x, global_c)

    def guided_velocity(self, latent: torch.Tensor, t: torch.Tensor | float, conditions: Conditions,
                        empty: Conditions, cfg_strength: float) -> torch.Tensor:
        """Classifier-free guidance (Ho & Salimans 2022) as MMAudio forms it at one time `t` for the whole batch:
        cfg * v(conditions) + (1 - cfg) * v(empty), both halves in one network call; the conditional velocity
        alone when cfg <= 1 (at exactly 1 MMAudio also runs the empty pass, for the same sum)."""
        batch = latent.shape[0]
        if cfg_strength <= 1.0:
            return self(latent, torch.full((batch,), float(t), dtype=latent.dtype, device=latent.device), conditions)
        times = torch.full((2 * batch,), float(t), dtype=latent.dtype, device=latent.device)
        velocity, unconditional = self(torch.cat([latent, latent]), times, conditions.stacked(empty)).chunk(2)
        return cfg_strength * velocity + (1 - cfg_strength) * unconditional

    def normalize(self, latent: torch.Tensor) -> torch.Tensor:
        """A VAE latent (batch, tokens, latent_dim) in the network's normalised units."""
        return (latent - self.latent_mean) / self.latent_std

    def unnormalize(self, latent: torch.Tensor) -> torch.Tensor:
        """A sampled latent back in the VAE's units: latent * std + mean."""
        return latent * self.latent_std + self.latent_mean


def _check_features(name: str, x: torch.Tensor, length: int, dim: int) -> None:
    """Raise a ValueError naming `name`'s shape when it is not (batch, length, dim)."""
    if x.ndim != 3 or tuple(x.shape[1:]) != (length, dim):
        raise ValueError(f"{name} features have shape {tuple(x.shape)}, expected (batch, {length}, {dim}) for this "
                         "network and clip duration; call network.set_sequence(...) for another duration.")


def _common_batch(*features: torch.Tensor) -> int:
    """The batch size of `features`, where a batch of 1 stands for every row."""
    batch = max(x.shape[0] for x in features)
    if any(x.shape[0] not in (1, batch) for x in features):
        raise ValueError(f"clip, sync and text features have batches {[x.shape[0] for x in features]}; they must be "
                         "equal (or 1, for the same features in every row).")
    return batch


def network_weights(published: Mapping[str, torch.Tensor], network: MMAudioNetwork) -> dict[str, torch.Tensor]:
    """What `network.load_state_dict(..., strict=True)` needs from a published `mmaudio_*.pth` state dict: the file
    without the buffers older files saved and the network recomputes (RECOMPUTED_KEYS), checked key for key."""
    if isinstance(published.get("weights"), Mapping):
        raise CheckpointError("This is an MMAudio training checkpoint (it nests the network under 'weights', beside "
                              f"{sorted(k for k in published if k != 'weights')}); pass checkpoint['weights'], or "
                              "use the released mmaudio_*.pth.")
    state = {key: value for key, value in published.items() if key not in RECOMPUTED_KEYS}
    dropped = sorted(published.keys() & set(RECOMPUTED_KEYS))
    if dropped:
        logger.info("Dropped the recomputed buffers %s from the MMAudio weights", dropped)
    check_weights(state, network)
    return state


def check_weights(state: Mapping[str, torch.Tensor], network: MMAudioNetwork) -> None:
    """Raise one CheckpointError naming the missing and unexpected keys and the wrong shapes of `state` against
    `network`, and the preset the file does match, if any."""
    if not state_problems(network, state):
        return
    match = matching_preset(state)
    hint = (f"The file matches preset {match!r}: build the network from NETWORK_PRESETS[{match!r}]." if match else
            "It matches no MMAudio preset: is it a flow network file (mmaudio_<variant>.pth), not the VAE, "
            "vocoder or Synchformer?")
    check_state(network, state, f"The MMAudio network weights do not fit preset {network.config.name!r}.", hint)


def matching_preset(state: Mapping[str, torch.Tensor]) -> str | None:
    """The name of the preset whose keys and shapes `state` has (RECOMPUTED_KEYS aside), or None. The candidates
    are built on the meta device, so nothing is allocated."""
    shapes = {key: tuple(value.shape) for key, value in state.items() if key not in RECOMPUTED_KEYS}
    for name, config in NETWORK_PRESETS.items():
        with torch.device("meta"):
            candidate = MMAudioNetwork(config)
        if shapes == {key: tuple(value.shape) for key, value in candidate.state_dict().items()}:
            return name
    return None
