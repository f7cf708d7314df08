"""MMAudio's two picture encoders, CLIP's image tower and Synchformer's visual branch, in torch or as one ONNX graph
on onnxruntime (`export_onnx`): the stage that takes 95 % of a window's time on a CPU.

Both take frames in [0, 1]: CLIP [N, 3, 384, 384] at 8 fps, Synchformer [1, T, 3, 224, 224] at 25 fps (split into
its overlapping 16-frame segments outside the graph, so the graph's only dynamic axes are frames and segments)."""

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from engine.mmaudio.clip import ClipModel, clip_image_features
from engine.mmaudio.clip import check_frames as check_clip_frames
from engine.mmaudio.synchformer import Synchformer, split_segments, sync_features
from engine.mmaudio.synchformer import check_frames as check_sync_frames
from engine.onnx import export, start_session


class PictureEncoders(nn.Module):
    """The graph that is exported: CLIP-normalised image embeddings of each frame, Synchformer tokens of each
    segment, as `clip_image_features` and `sync_features` compute them."""

    def __init__(self, clip: ClipModel, synchformer: Synchformer):
        super().__init__()
        self.visual, self.synchformer = clip.visual, synchformer
        self.register_buffer("mean", torch.tensor(clip.config.mean).view(3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(clip.config.std).view(3, 1, 1), persistent=False)

    def forward(self, clip_frames: torch.Tensor, sync_segments: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """[N, 3, S, S] and [M, 16, 3, 224, 224], both in [0, 1] -> [N, D] unit length and [M, 8, D']."""
        embeds = F.normalize(self.visual((clip_frames - self.mean) / self.std), dim=-1)
        return embeds, self.synchformer(sync_segments * 2 - 1)


def export_onnx(clip: ClipModel, synchformer: Synchformer, path: Path, precision: str = "fp32") -> Path:
    """Write both encoders as one ONNX graph (`engine.onnx.export`), frames and segments dynamic."""
    size, sync = clip.config.vision.image_size, synchformer.config
    examples = {"clip_frames": torch.rand(2, 3, size, size),
                "sync_segments": torch.rand(2, sync.frames_per_segment, 3, sync.image_size, sync.image_size)}
    return export(PictureEncoders(clip, synchformer), examples, ["clip_features", "sync_features"], path, precision)


class OnnxPictureEncoders:
    """The exported graph on onnxruntime, in place of the torch encoders (`Stages.onnx`)."""

    def __init__(self, path: Path, clip: ClipModel, synchformer: Synchformer, providers: list[str] | None = None):
        self.session = start_session(path, providers)
        self.providers = self.session.get_providers()
        self.clip_config, self.sync_config = clip.config, synchformer.config
        self.dtype = np.float16 if self.session.get_inputs()[0].type == "tensor(float16)" else np.float32

    def __call__(self, clip_frames: torch.Tensor, sync_frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        check_clip_frames(clip_frames, self.clip_config)
        check_sync_frames(sync_frames, self.sync_config)
        segments = split_segments(sync_frames, self.sync_config).flatten(0, 1)
        feeds = {"clip_frames": clip_frames.cpu().numpy().astype(self.dtype),
                 "sync_segments": segments.cpu().numpy().astype(self.dtype)}
        embeds, tokens = (torch.from_numpy(out.astype(np.float32)) for out in self.session.run(None, feeds))
        return embeds, tokens.view(len(sync_frames), -1, tokens.shape[-1])


def picture_features(clip: ClipModel, synchformer: Synchformer, onnx: OnnxPictureEncoders | None,
                     clip_frames: torch.Tensor, sync_frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """CLIP features [N, D] of `clip_frames` [N, 3, S, S] and Synchformer features [B, tokens, D'] of `sync_frames`
    [B, T, 3, 224, 224], from the ONNX graph when the model runs one."""
    if onnx is not None:
        return onnx(clip_frames, sync_frames)
    return clip_image_features(clip, clip_frames), sync_features(synchformer, sync_frames)
