"""Synchformer's visual branch (Iashin et al., ICASSP 2024) as MMAudio runs it: a divided space-time MotionFormer
over 16-frame segments of 25 fps video, pooled to 8 sync tokens of 768 per segment.

The module's keys are the `vfeat_extractor.*` keys of MMAudio's `ext_weights/synchformer_state_dict.pth` (the
full Synchformer, audio branch and sync transformer included), so the selected part loads strictly, unrenamed.
"""

import logging
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from engine.checkpoints import check_state, load_state
from engine.errors import CheckpointError

logger = logging.getLogger(__name__)

VISUAL_PREFIX = "vfeat_extractor."
# MotionFormer's 2D patch stem: built (it sizes the position table) but never run, the 3D tubelet stem is.
UNUSED_PREFIX = "vfeat_extractor.patch_embed."
NORM_EPS = 1e-6


@dataclass(frozen=True)
class SynchformerConfig:
    """Sizes of the MotionFormer and of MMAudio's segmenting of the sync frames."""

    image_size: int = 224
    patch_size: int = 16
    frames_per_segment: int = 16
    temporal_patch: int = 2  # tubelet depth: 16 frames become 8 time tokens
    segment_step: int = 8  # frames between segment starts (half overlap)
    frame_rate: int = 25  # the rate MMAudio samples the sync frames at
    embed_dim: int = 768
    depth: int = 12
    num_heads: int = 12
    mlp_ratio: int = 4

    @property
    def grid(self) -> int:
        """Patches along each side of a frame."""
        return self.image_size // self.patch_size

    @property
    def patches_per_frame(self) -> int:
        return self.grid * self.grid

    @property
    def tokens_per_segment(self) -> int:
        """Sync tokens one segment yields (one per tubelet time step)."""
        return self.frames_per_segment // self.temporal_patch

    def num_segments(self, num_frames: int) -> int:
        """Whole segments in `num_frames` frames; frames after the last whole segment are not seen."""
        return (num_frames - self.frames_per_segment) // self.segment_step + 1

    def num_tokens(self, num_frames: int) -> int:
        """Length of the sync feature sequence for `num_frames` frames (192 for MMAudio's 8 s at 25 fps)."""
        return self.num_segments(num_frames) * self.tokens_per_segment


SYNCHFORMER = SynchformerConfig()
# Tests: the published frame size and segmenting (MMAudio's encoder asserts 224 px), a narrow, shallow network.
TINY = SynchformerConfig(embed_dim=32, depth=2, num_heads=2)
# Every published MMAudio variant conditions on the same Synchformer file.
PRESETS: dict[str, SynchformerConfig] = {
    "small_16k": SYNCHFORMER,
    "small_44k": SYNCHFORMER,
    "medium_44k": SYNCHFORMER,
    "large_44k": SYNCHFORMER,
    "large_44k_v2": SYNCHFORMER,
    "tiny": TINY,
}


class DividedAttention(nn.Module):
    """TimeSformer's divided attention (Bertasius et al. 2021) along time or space. Patch tokens attend to the
    CLS token and to the patches at the same place (time) or in the same frame (space); CLS attends to all."""

    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, frames: int, axis: Literal["time", "space"]) -> torch.Tensor:
        """Tokens [N, 1 + frames * patches, D] (CLS first, then the patches frame by frame) -> the same shape."""
        n, length, dim = x.shape
        q, k, v = self.qkv(x).view(n, length, 3, self.num_heads, -1).permute(2, 0, 3, 1, 4)  # each [N, H, L, d]
        cls_out = F.scaled_dot_product_attention(q[:, :, :1], k, v)
        q_groups, k_groups, v_groups = (group_patches(t[:, :, 1:], frames, axis) for t in (q, k, v))
        groups = q_groups.shape[2]
        cls_k = k[:, :, None, :1].expand(-1, -1, groups, -1, -1)
        cls_v = v[:, :, None, :1].expand(-1, -1, groups, -1, -1)
        out = F.scaled_dot_product_attention(
            q_groups, torch.cat([cls_k, k_groups], dim=3), torch.cat([cls_v, v_groups], dim=3)
        )
        out = torch.cat([cls_out, ungroup_patches(out, axis)], dim=2)  # [N, H, L, d]
        return self.proj(out.transpose(1, 2).reshape(n, length, dim))


def group_patches(tokens: torch.Tensor, frames: int, axis: Literal["time", "space"]) -> torch.Tensor:
    """Patch tokens [N, H, F * P, d] -> [N, H, groups, members, d]: one group per frame (space) or per patch
    position (time)."""
    grouped = tokens.unflatten(2, (frames, -1))  # [N, H, F, P, d]
    return grouped.transpose(2, 3) if axis == "time" else grouped


def ungroup_patches(grouped: torch.Tensor, axis: Literal["time", "space"]) -> torch.Tensor:
    """Inverse of `group_patches`: back to frame-major patch tokens [N, H, F * P, d]."""
    frame_major = grouped.transpose(2, 3) if axis == "time" else grouped
    return frame_major.flatten(2, 3)


class Mlp(nn.Module):
    """The transformer block's feed-forward: Linear, exact GELU, Linear."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class DividedSpaceTimeBlock(nn.Module):
    """Pre-norm block: attention along time, then along space, then the MLP, each added to its input. The norms
    keep the published names (`norm3` before time, `norm1` before space, `norm2` before the MLP)."""

    def __init__(self, config: SynchformerConfig):
        super().__init__()
        dim = config.embed_dim
        self.norm1 = nn.LayerNorm(dim, eps=NORM_EPS)
        self.attn = DividedAttention(dim, config.num_heads)
        self.timeattn = DividedAttention(dim, config.num_heads)
        self.norm2 = nn.LayerNorm(dim, eps=NORM_EPS)
        self.mlp = Mlp(dim, config.mlp_ratio * dim)
        self.norm3 = nn.LayerNorm(dim, eps=NORM_EPS)

    def forward(self, x: torch.Tensor, frames: int) -> torch.Tensor:
        x = x + self.timeattn(self.norm3(x), frames, "time")
        x = x + self.attn(self.norm1(x), frames, "space")
        return x + self.mlp(self.norm2(x))


class TubeletEmbed(nn.Module):
    """Cuts a segment into tubelets (temporal_patch frames x patch x patch pixels) and projects each to a token."""

    def __init__(self, config: SynchformerConfig):
        super().__init__()
        size = (config.temporal_patch, config.patch_size, config.patch_size)
        self.proj = nn.Conv3d(3, config.embed_dim, kernel_size=size, stride=size)

    def forward(self, segments: torch.Tensor) -> torch.Tensor:
        """Segments [N, 3, F, H, W] -> tokens [N, t * h * w, D], time-major then row-major."""
        return self.proj(segments).flatten(2).transpose(1, 2)


class SpatialPool(nn.Module):
    """Pools each time step's patches into one token: a CLS token is prepended and one pre-norm transformer
    encoder layer (GELU MLP) is applied; its CLS output is the token. Only the CLS row is computed, as it is the
    only one kept. Attribute names follow `torch.nn.TransformerEncoderLayer`, as in the published file."""

    def __init__(self, config: SynchformerConfig):
        super().__init__()
        dim = config.embed_dim
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.self_attn = nn.MultiheadAttention(dim, config.num_heads, batch_first=True)
        self.linear1 = nn.Linear(dim, config.mlp_ratio * dim)
        self.linear2 = nn.Linear(config.mlp_ratio * dim, dim)
        self.norm1 = nn.LayerNorm(dim, eps=NORM_EPS)
        self.norm2 = nn.LayerNorm(dim, eps=NORM_EPS)

    def forward(self, patches: torch.Tensor) -> torch.Tensor:
        """Patch tokens [M, P, D] -> pooled tokens [M, D]."""
        sequence = torch.cat([self.cls_token.expand(patches.shape[0], -1, -1), patches], dim=1)
        normed = self.norm1(sequence)
        cls = sequence[:, :1] + self.self_attn(normed[:, :1], normed, normed, need_weights=False)[0]
        cls = cls + self.linear2(F.gelu(self.linear1(self.norm2(cls))))
        return cls[:, 0]


class MotionFormer(nn.Module):
    """The divided space-time video transformer (Patrick et al. 2021, `divided_224_16x4`) with Synchformer's
    spatial pooling: one token per tubelet time step. The classification head is not part of it."""

    def __init__(self, config: SynchformerConfig):
        super().__init__()
        self.config = config
        dim = config.embed_dim
        self.patch_embed_3d = TubeletEmbed(config)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + config.patches_per_frame, dim))
        self.temp_embed = nn.Parameter(torch.zeros(1, config.tokens_per_segment, dim))
        self.blocks = nn.ModuleList(DividedSpaceTimeBlock(config) for _ in range(config.depth))
        self.norm = nn.LayerNorm(dim, eps=NORM_EPS)
        self.spatial_attn_agg = SpatialPool(config)

    def position_table(self) -> torch.Tensor:
        """[1, 1 + t * P, D]: the CLS position, then per patch its spatial position plus its time step's."""
        spatial = self.pos_embed[:, 1:].unsqueeze(1)  # [1, 1, P, D]
        temporal = self.temp_embed.unsqueeze(2)  # [1, t, 1, D]
        return torch.cat([self.pos_embed[:, :1], (spatial + temporal).flatten(1, 2)], dim=1)

    def forward(self, segments: torch.Tensor) -> torch.Tensor:
        """Normalised segments [N, 3, F, H, W] -> sync tokens [N, t, D]."""
        tokens = self.patch_embed_3d(segments)
        x = torch.cat([self.cls_token.expand(tokens.shape[0], -1, -1), tokens], dim=1) + self.position_table()
        steps = self.config.tokens_per_segment
        for block in self.blocks:
            x = block(x, steps)
        patches = self.norm(x[:, 1:])  # the CLS token is not used downstream
        pooled = self.spatial_attn_agg(patches.reshape(-1, self.config.patches_per_frame, patches.shape[-1]))
        return pooled.view(segments.shape[0], steps, -1)


class Synchformer(nn.Module):
    """The visual feature extractor of Synchformer under its published attribute name `vfeat_extractor`."""

    def __init__(self, config: SynchformerConfig = SYNCHFORMER):
        super().__init__()
        self.config = config
        self.vfeat_extractor = MotionFormer(config)

    def forward(self, segments: torch.Tensor) -> torch.Tensor:
        """Segments [N, F, 3, H, W] normalised to [-1, 1] -> sync tokens [N, F // temporal_patch, D]."""
        return self.vfeat_extractor(segments.transpose(1, 2))


def check_frames(frames: torch.Tensor, config: SynchformerConfig) -> None:
    """Raise ValueError naming what is wrong with a sync clip and how to fix it."""
    size = config.image_size
    if frames.ndim != 5 or frames.shape[2] != 3 or frames.shape[3:] != (size, size):
        raise ValueError(
            f"sync frames must be [B, T, 3, {size}, {size}] (RGB, shorter side resized to {size} and centre "
            f"cropped), got {list(frames.shape)}."
        )
    if frames.shape[1] < config.frames_per_segment:
        raise ValueError(
            f"sync frames need at least {config.frames_per_segment} frames (one segment, "
            f"{config.frames_per_segment / config.frame_rate:.2f} s at {config.frame_rate} fps), got {frames.shape[1]}."
        )
    low, high = frames.min().item(), frames.max().item()
    # Resampled frames may overshoot [0, 1] a little; [-1, 1] or [0, 255] input is a convention mistake.
    if low < -0.5 or high > 1.5:
        raise ValueError(
            f"sync frames must be floats in [0, 1], got values in [{low:.3g}, {high:.3g}]. Pass the frames "
            "before any normalisation (sync_features maps them to [-1, 1] itself)."
        )


def split_segments(frames: torch.Tensor, config: SynchformerConfig) -> torch.Tensor:
    """Clips [B, T, ...] -> overlapping segments [B, S, frames_per_segment, ...], `segment_step` apart."""
    starts = range(0, config.num_segments(frames.shape[1]) * config.segment_step, config.segment_step)
    return torch.stack([frames[:, start : start + config.frames_per_segment] for start in starts], dim=1)


@torch.inference_mode()
def sync_features(model: Synchformer, frames: torch.Tensor, *, batch_size: int | None = None) -> torch.Tensor:
    """Synchformer features of video clips, as MMAudio's `FeaturesUtils.encode_video_with_sync` gives them.

    Args:
        model: the loaded visual branch.
        frames: [B, T, 3, S, S] RGB floats in [0, 1] at 25 fps, S = `model.config.image_size` (224): the shorter
            side resized to S (bicubic) and centre cropped. They are normalised here to [-1, 1] ((x - 0.5) / 0.5,
            MMAudio's `Normalize(0.5, 0.5)`), which MMAudio does in `load_video` before its encoder.
        batch_size: segments per forward pass (all at once when None); the result does not depend on it.

    Returns:
        [B, S * tokens_per_segment, D], segment after segment: S = `config.num_segments(T)` segments of 16 frames
        (0.64 s) starting every 8 frames (0.32 s), so consecutive segments overlap by half; each gives 8 tokens of
        2 frames. Trailing frames short of a whole segment are not used.
    """
    config = model.config
    check_frames(frames, config)
    parameter = next(model.parameters())
    pixels = frames.to(parameter.device, parameter.dtype) * 2 - 1
    segments = split_segments(pixels, config)
    flat = segments.flatten(0, 1)
    step = batch_size or len(flat)
    features = torch.cat([model(flat[start : start + step]) for start in range(0, len(flat), step)])
    return features.view(len(frames), -1, features.shape[-1])


def select_sync_state(published: Mapping[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Split the published Synchformer state dict into the keys this module loads (`vfeat_extractor.*` less
    the unused 2D patch stem) and the dropped ones: the audio branch `afeat_extractor.*`, the projections
    `aproj.*`/`vproj.*`, the sync transformer `transformer.*` and `vfeat_extractor.patch_embed.*`."""
    kept, dropped = {}, []
    for key, value in published.items():
        if key.startswith(VISUAL_PREFIX) and not key.startswith(UNUSED_PREFIX):
            kept[key] = value
        else:
            dropped.append(key)
    logger.info("Synchformer: kept %d tensors, dropped %s", len(kept), describe_groups(dropped))
    return kept, sorted(dropped)


def describe_groups(keys: list[str]) -> str:
    """'afeat_extractor.* (n), ...': the keys counted by top-level module (the 2D patch stem on its own)."""
    groups = Counter(UNUSED_PREFIX if key.startswith(UNUSED_PREFIX) else key.split(".")[0] + "." for key in keys)
    return ", ".join(f"{name}* ({count})" for name, count in sorted(groups.items())) or "nothing"


def check_sync_state(model: Synchformer, state: Mapping[str, torch.Tensor], source: str) -> None:
    """Strict key and shape check of a selected state; one CheckpointError names every missing, unexpected and
    mis-shaped tensor."""
    check_state(model, state, f"{source}: the Synchformer visual weights do not match the model layout.",
                "Use MMAudio's ext_weights/synchformer_state_dict.pth with the matching config.")


def load_synchformer(
    path: Path, config: SynchformerConfig = SYNCHFORMER, *, device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
) -> Synchformer:
    """Build the visual branch and load it strictly from `synchformer_state_dict.pth` (a plain dict of tensors,
    read with `weights_only=True` and memory-mapped), in eval mode."""
    published = load_state(path)
    if not isinstance(published, Mapping):
        raise CheckpointError(f"{path} holds a {type(published).__name__}, not a state dict. Is it the right file?")
    state, _ = select_sync_state(published)
    with torch.device("meta"):  # no random initialisation of 122M parameters that are replaced at once
        model = Synchformer(config)
    check_sync_state(model, state, str(path))
    model.load_state_dict(state, strict=True, assign=True)
    return model.to(device, dtype).eval()
