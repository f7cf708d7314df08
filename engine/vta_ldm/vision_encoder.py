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
        self.onsets = OnsetDetector(config.embedding_dim, config.onset_kernel) if config.onset_kernel else None
        self.onset_threshold = config.onset_threshold

    def forward(self, pixels: torch.Tensor, flow: torch.Tensor | None = None) -> torch.Tensor:
        """Frames [T, 3, S, S] (or clips [B, T, 3, S, S]) in [0, 1] -> context tokens [T, embedding_dim] (or
        [B, T, embedding_dim]), one per frame. Models with flow features compute them from the frames unless
        `flow` ([..., T, flow_features], from `flow_features`) is given. Models with an onset detector carry its
        onset map in the last channel."""
        tokens, logits = self.events(pixels, flow)
        if logits is None:
            return tokens
        return with_onset_map(tokens, onset_map(logits, self.onset_threshold))

    def events(self, pixels: torch.Tensor, flow: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The tokens before an onset map is written into them, and the onset detector's logits [..., T] (None
        without a detector): training writes the true sound's onsets instead and trains the detector on them."""
        shape = pixels.shape[:-3]
        embeds = self.clip_vision(pixel_values=pixels.flatten(0, -4)).image_embeds.unflatten(0, shape)
        if self.frame_pe is not None:
            embeds = embeds + self.frame_pe[: shape[-1]]
        if self.flow_grid:
            if flow is None:
                clips = pixels.reshape(-1, *pixels.shape[-4:])
                flow = torch.stack([flow_features(clip, self.flow_grid) for clip in clips]).reshape(*shape, -1)
            embeds = torch.cat([embeds, flow.to(embeds)], dim=-1)
        tokens = self.linear_layer(embeds)
        if self.motion is not None:
            tokens = tokens + self.motion(pixels, flow.to(tokens))
        return tokens, None if self.onsets is None else self.onsets(tokens)


class OnsetDetector(nn.Module):
    """Per frame, the logit that a sound starts there (ours, after SyncFusion's onset track, Comunità et al.
    2024): two temporal convolutions over the tokens. The last starts at zero: undecided (p = 0.5) everywhere,
    which marks no onset at a threshold of 0.5 or more."""

    def __init__(self, width: int, kernel: int):
        super().__init__()
        self.conv_in = nn.Conv1d(width, width, kernel, padding=kernel // 2)
        self.conv_out = nn.Conv1d(width, 1, kernel, padding=kernel // 2)
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Tokens [..., T, width] -> logits [..., T]."""
        hidden = F.gelu(self.conv_in(tokens.reshape(-1, *tokens.shape[-2:]).transpose(1, 2)))
        return self.conv_out(hidden).reshape(*tokens.shape[:-1])


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


def flow_features(pixels: torch.Tensor, grid: int) -> torch.Tensor:
    """Optical flow into each frame from the one before (Farneback), averaged over a grid x grid layout of cells:
    [T, 2 * grid**2] in pixels per frame; the first frame has none (zeros)."""
    grey = (pixels.detach().float().mean(dim=1).cpu().numpy() * 255).astype(np.uint8)
    out = np.zeros((len(grey), grid, grid, 2), np.float32)
    for index in range(1, len(grey)):
        field = optical_flow(grey[index - 1], grey[index])
        size = field.shape[0] // grid
        out[index] = field[: size * grid, : size * grid].reshape(grid, size, grid, size, 2).mean(axis=(1, 3))
    return torch.from_numpy(out.reshape(len(grey), -1))


class OnnxVisionEncoder:
    """The same encoder exported to ONNX (`export_onnx`), run by onnxruntime (`engine.onnx.start_session`)."""

    def __init__(self, path: Path, providers: list[str] | None = None):
        self.session = start_session(path, providers)
        self.providers = self.session.get_providers()
        self.inputs = self.session.get_inputs()  # pixels, and the optical-flow features for models that use them

    def __call__(self, pixels: torch.Tensor) -> torch.Tensor:
        dtype = np.float16 if self.inputs[0].type == "tensor(float16)" else np.float32
        feeds = {self.inputs[0].name: pixels.detach().cpu().numpy().astype(dtype)}
        if len(self.inputs) > 1:
            grid = int(round((self.inputs[1].shape[1] / 2) ** 0.5))
            feeds[self.inputs[1].name] = flow_features(pixels, grid).numpy().astype(dtype)
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
    features takes them as a second input, computed outside the graph (OpenCV)."""
    size = extractor.clip_vision.config.image_size
    examples = {"pixels": torch.rand(2, 3, size, size)}
    if extractor.flow_grid:
        examples["flow"] = torch.zeros(2, 2 * extractor.flow_grid**2)
    return export(extractor, examples, ["context"], path, precision)
