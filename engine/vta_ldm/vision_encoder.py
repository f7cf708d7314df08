"""Vision encoder: CLIP ViT `image_embeds` per frame, optional frame position table, linear to context width."""

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

from engine.flow import optical_flow
from engine.onnx import export, start_session
from engine.vta_ldm.config import VisionConfig


def sinusoidal_table(length: int, dim: int, base: float = 10000.0) -> torch.Tensor:
    """Fixed sinusoidal position table (Vaswani et al. 2017): sin on even dims, cos on odd dims."""
    positions = torch.arange(length, dtype=torch.float32)[:, None]
    denominators = base ** (2 * torch.arange(dim // 2, dtype=torch.float32) / dim)
    table = torch.zeros(length, dim)
    table[:, 0::2] = torch.sin(positions / denominators)
    table[:, 1::2] = torch.cos(positions / denominators)
    return table


class VideoFeatureExtractor(nn.Module):
    """VTA-LDM's `vid_fea_extractor` with its attribute names, so checkpoint keys map one to one."""

    def __init__(self, config: VisionConfig):
        super().__init__()
        clip_config = CLIPVisionConfig(
            hidden_size=config.hidden_size,
            intermediate_size=config.intermediate_size,
            num_hidden_layers=config.num_layers,
            num_attention_heads=config.num_heads,
            patch_size=config.patch_size,
            image_size=config.image_size,
            projection_dim=config.projection_dim,
            hidden_act="quick_gelu",
            layer_norm_eps=1e-5,
        )
        self.clip_vision = CLIPVisionModelWithProjection(clip_config)
        self.flow_grid = config.flow_grid
        self.linear_layer = nn.Linear(config.projection_dim + config.flow_features, config.embedding_dim)
        pe = sinusoidal_table(config.pe_max_frames, config.projection_dim) if config.frame_pe else None
        self.register_buffer("frame_pe", pe, persistent=False)
        if config.motion_kernel:
            if not config.flow_grid:
                raise ValueError("motion_kernel needs flow_grid > 0 (the event features are built from the flow).")
            self.motion = MotionEvents(config.flow_grid, config.motion_kernel, config.embedding_dim)
        else:
            self.motion = None
        self.onset_grid = config.detector_grid
        self.onsets = OnsetDetector(config.onset_kernel, config.onset_width) if config.onset_kernel else None
        self.onset_threshold = config.onset_threshold

    def forward(self, pixels: torch.Tensor, flow: torch.Tensor | None = None,
                cells: torch.Tensor | None = None) -> torch.Tensor:
        """Frames [T, 3, S, S] (or clips [B, T, 3, S, S]) in [0, 1] -> context tokens [T, embedding_dim] (or
        [B, T, embedding_dim]), one per frame. Models with flow features, or an onset detector, compute what they
        read of the motion from the frames unless it is given (`flow` [..., T, flow_features] and `cells`
        [..., T, onset_features], from `motion_inputs`). Models with an onset detector carry its onset map in the
        last channel."""
        tokens, logits = self.events(pixels, flow, cells)
        if logits is None:
            return tokens
        return with_onset_map(tokens, onset_map(logits, self.onset_threshold))

    def events(self, pixels: torch.Tensor, flow: torch.Tensor | None = None,
               cells: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The tokens before an onset map is written into them, and the onset detector's logits [..., T] (None
        without a detector): training writes the true sound's onsets instead, and trains the detector apart."""
        if (self.flow_grid and flow is None) or (self.onset_grid and cells is None):
            clips = pixels.reshape(-1, *pixels.shape[-4:])
            motion = clips_motion(clips, self.flow_grid, self.onset_grid)
            flow, cells = (None if part is None else part.reshape(*pixels.shape[:-3], -1) for part in motion)
        tokens = self.tokens(pixels, flow)
        return tokens, None if self.onsets is None else self.onsets(cells.to(tokens), self.onset_grid)

    def tokens(self, pixels: torch.Tensor, flow: torch.Tensor | None) -> torch.Tensor:
        """The context tokens before any onset map: image embeddings, position table, flow, event features."""
        shape = pixels.shape[:-3]
        embeds = self.clip_vision(pixel_values=pixels.flatten(0, -4)).image_embeds.unflatten(0, shape)
        if self.frame_pe is not None:
            embeds = embeds + self.frame_pe[: shape[-1]]
        if self.flow_grid:
            embeds = torch.cat([embeds, flow.to(embeds)], dim=-1)
        tokens = self.linear_layer(embeds)
        if self.motion is not None:
            tokens = tokens + self.motion(pixels, flow.to(tokens))
        return tokens


class OnsetDetector(nn.Module):
    """Per frame, the logit that a sound starts there (ours, after SyncFusion's onset track, Comunità et al.
    2024). It reads the motion in each cell of a grid (`motion_inputs`) and its change from the frame before,
    runs three convolutions over time (`kernel` frames) and space (3 x 3 cells) and scores every cell with the
    same weights, so an impact is found wherever in the picture it happens; the frame's logit is its most
    certain cell's. The last layer starts at zero: undecided (p = 0.5) everywhere, which marks no onset at a
    threshold of 0.5 or more."""

    def __init__(self, kernel: int, width: int, layers: int = 3):
        super().__init__()
        sizes = [8] + [width] * layers  # per cell: 4 motion measures and their change
        self.convs = nn.ModuleList(nn.Conv3d(a, b, (kernel, 3, 3), padding=(kernel // 2, 1, 1))
                                   for a, b in zip(sizes, sizes[1:]))
        self.score = nn.Conv3d(width, 1, 1)
        nn.init.zeros_(self.score.weight)
        nn.init.zeros_(self.score.bias)

    def forward(self, cells: torch.Tensor, grid: int) -> torch.Tensor:
        """Cells [..., T, 4 * grid**2] -> logits [..., T]."""
        motion = cells.reshape(-1, cells.shape[-2], 4, grid, grid)
        change = torch.cat([torch.zeros_like(motion[:, :1]), motion[:, 1:] - motion[:, :-1]], dim=1)
        hidden = torch.cat([motion, change], dim=2)
        hidden = (hidden.sign() * torch.log1p(4 * hidden.abs())).transpose(1, 2)  # [N, 8, T, grid, grid]
        for conv in self.convs:
            hidden = F.gelu(conv(hidden))
        scores = self.score(hidden)[:, 0].flatten(2)  # [N, T, cells]
        return scores.max(dim=-1).values.reshape(cells.shape[:-1])


def onset_map(logits: torch.Tensor, threshold: float) -> torch.Tensor:
    """Logits [..., T] -> the onset map the UNet is told: 1 on each frame whose probability is a local maximum
    above `threshold`, 0.5 on the frames either side (the form of the training targets), else 0."""
    p = torch.sigmoid(logits.float()).reshape(-1, 1, logits.shape[-1])
    peaks = ((p >= F.max_pool1d(p, 3, 1, 1)) & (p > threshold)).float()
    return torch.maximum(peaks, 0.5 * F.max_pool1d(peaks, 3, 1, 1)).reshape(logits.shape).to(logits.dtype)


def with_onset_map(tokens: torch.Tensor, onsets: torch.Tensor) -> torch.Tensor:
    """Tokens [..., T, D] with their last channel replaced by an onset map [..., T]."""
    return torch.cat([tokens[..., :-1], onsets[..., None].to(tokens)], dim=-1)


class MotionEvents(nn.Module):
    """Event evidence per frame, added to the tokens (ours, not the paper's). An impact is a sudden change of an
    object's motion, so per grid cell it takes the flow with the picture's mean flow removed (the camera's
    pan or shake), that flow's change from the frame before, and how much the picture changed (a flash, a
    contact), compresses them (signed log) and runs two temporal convolutions over the frames. The last one
    starts at zero, so a model grown from one without this branch starts out unchanged."""

    def __init__(self, grid: int, kernel: int, width: int):
        super().__init__()
        self.grid = grid
        self.conv_in = nn.Conv1d(5 * grid**2, width, kernel, padding=kernel // 2)
        self.conv_out = nn.Conv1d(width, width, kernel, padding=kernel // 2)
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)

    def forward(self, pixels: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
        """Frames [..., T, 3, S, S] in [0, 1] and their flow features [..., T, 2 * grid**2] -> [..., T, width]."""
        features = event_features(pixels.reshape(-1, *pixels.shape[-4:]), flow.reshape(-1, *flow.shape[-2:]), self.grid)
        hidden = F.gelu(self.conv_in(features.transpose(1, 2)))
        return self.conv_out(hidden).transpose(1, 2).reshape(*pixels.shape[:-3], -1)


def event_features(pixels: torch.Tensor, flow: torch.Tensor, grid: int) -> torch.Tensor:
    """Clips [N, T, 3, S, S] and flow [N, T, 2 * grid**2] -> [N, T, 5 * grid**2]: per cell the flow less the
    picture's mean flow, its change from the frame before, and the mean absolute change of the picture (x10),
    each compressed as sign(x) log(1 + |x|). The first frame has no change (zeros)."""
    cells = flow.unflatten(-1, (grid * grid, 2))
    moving = cells - cells.mean(dim=2, keepdim=True)
    change = torch.cat([torch.zeros_like(moving[:, :1]), moving[:, 1:] - moving[:, :-1]], dim=1)
    grey = pixels.mean(dim=2)  # [N, T, S, S]
    difference = torch.cat([torch.zeros_like(grey[:, :1]), (grey[:, 1:] - grey[:, :-1]).abs()], dim=1)
    size = grey.shape[-1] // grid
    cropped = difference[..., : size * grid, : size * grid].unflatten(-1, (grid, size)).unflatten(-3, (grid, size))
    picture = cropped.mean(dim=(-3, -1)).flatten(-2)  # [N, T, grid * grid]
    features = torch.cat([moving.flatten(2), change.flatten(2), 10 * picture], dim=-1)
    return features.sign() * torch.log1p(features.abs())


def motion_inputs(pixels: torch.Tensor, flow_grid: int, onset_grid: int) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """What a model reads of the motion, from the optical flow into each frame from the one before (Farneback;
    the first frame has none, zeros), per cell of a grid x grid layout: the flow features, the mean flow
    [T, 2 * flow_grid**2] in pixels per frame (None for 0), and the onset detector's cells [T, 4 * onset_grid**2]
    (None for 0), from the fine flow: the flow less the picture's mean flow (the camera), the mean speed of that
    flow, and the mean absolute change of the picture (x10)."""
    grey = pixels.detach().float().mean(dim=1).cpu().numpy()
    levels = (grey * 255).astype(np.uint8)
    flow = np.zeros((len(grey), flow_grid, flow_grid, 2), np.float32)
    cells = np.zeros((len(grey), 4, onset_grid, onset_grid), np.float32)
    for index in range(1, len(grey)):
        if flow_grid:
            flow[index] = _cell_means(optical_flow(levels[index - 1], levels[index]), flow_grid)
        if onset_grid:
            field = optical_flow(levels[index - 1], levels[index], fine=True)
            moving = field - field.reshape(-1, 2).mean(axis=0)
            speed = np.sqrt((moving**2).sum(axis=-1, keepdims=True))
            change = 10 * np.abs(grey[index] - grey[index - 1])[..., None]
            cells[index] = _cell_means(np.concatenate([moving, speed, change], axis=-1), onset_grid).transpose(2, 0, 1)
    return (torch.from_numpy(flow.reshape(len(grey), -1)) if flow_grid else None,
            torch.from_numpy(cells.reshape(len(grey), -1)) if onset_grid else None)


def clips_motion(clips, flow_grid: int, onset_grid: int) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """`motion_inputs` of each clip ([T, 3, S, S] in [0, 1]), stacked: [N, T, ...] each, or None."""
    per_clip = [motion_inputs(clip, flow_grid, onset_grid) for clip in clips]
    return tuple(None if part[0] is None else torch.stack(part) for part in zip(*per_clip))


def _cell_means(field: np.ndarray, grid: int) -> np.ndarray:
    """[S, S, C] -> [grid, grid, C], each cell's mean (a remainder of S beyond whole cells is left out)."""
    size = field.shape[0] // grid
    return field[: size * grid, : size * grid].reshape(grid, size, grid, size, -1).mean(axis=(1, 3))


class OnnxVisionEncoder:
    """The same encoder exported to ONNX (`export_onnx`), run by onnxruntime (`engine.onnx.start_session`)."""

    def __init__(self, path: Path, providers: list[str] | None = None):
        self.session = start_session(path, providers)
        self.providers = self.session.get_providers()
        # pixels, and for models that read them the flow features and the onset detector's cells
        widths = {i.name: i.shape[1] for i in self.session.get_inputs()}
        self.dtype = np.float16 if self.session.get_inputs()[0].type == "tensor(float16)" else np.float32
        self.flow_grid = int(round((widths.get("flow", 0) / 2) ** 0.5))
        self.onset_grid = int(round((widths.get("cells", 0) / 4) ** 0.5))

    def __call__(self, pixels: torch.Tensor) -> torch.Tensor:
        flow, cells = motion_inputs(pixels, self.flow_grid, self.onset_grid)
        feeds = {"pixels": pixels, "flow": flow, "cells": cells}
        feeds = {name: value.detach().cpu().numpy().astype(self.dtype) for name, value in feeds.items()
                 if value is not None}
        (context,) = self.session.run(None, feeds)
        return torch.from_numpy(context.astype(np.float32))


@torch.inference_mode()
def encode_frames(extractor: VideoFeatureExtractor | OnnxVisionEncoder, pixels: torch.Tensor) -> torch.Tensor:
    """Frames [T, 3, S, S] in [0, 1] -> context tokens [T, embedding_dim] (one per frame)."""
    table = getattr(extractor, "frame_pe", None)
    if table is not None and pixels.shape[0] > table.shape[0]:
        raise ValueError(f"{pixels.shape[0]} frames exceed the model's position table of {table.shape[0]}; "
                         "generate a shorter range.")
    return extractor(pixels)


def export_onnx(extractor: VideoFeatureExtractor, path: Path, precision: str = "fp32") -> Path:
    """Write the encoder as ONNX with a dynamic frame axis (`engine.onnx.export`); a model with optical-flow
    features or an onset detector takes what it reads of the motion as further inputs (`flow`, `cells`),
    computed outside the graph (OpenCV)."""
    size = extractor.clip_vision.config.image_size
    examples = {"pixels": torch.rand(2, 3, size, size)}
    if extractor.flow_grid:
        examples["flow"] = torch.zeros(2, 2 * extractor.flow_grid**2)
    if extractor.onset_grid:
        examples["cells"] = torch.rand(2, 4 * extractor.onset_grid**2)
    return export(_ByName(extractor, list(examples)), examples, ["context"], path, precision)


class _ByName(nn.Module):
    """The extractor called with its inputs by name, as the export passes them in order."""

    def __init__(self, extractor: VideoFeatureExtractor, names: list[str]):
        super().__init__()
        self.extractor, self.names = extractor, names

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return self.extractor(**dict(zip(self.names, inputs)))
