"""CLIP towers MMAudio conditions on (Apple's DFN5B-CLIP-ViT-H-14-384, open_clip's layout): a unit-length embedding
per video frame and unit-length features per text token.

MMAudio normalises frames with OpenAI CLIP's pixel statistics and takes open_clip's `encode_image(normalize=True)`
per frame; for text it patches `encode_text` to return every token after `ln_final`, L2-normalised, with no pooling
and no `text_projection`. The published file is the hub repo's `open_clip_pytorch_model.bin` (a plain state dict, fp32):
`visual.*` and the text tower's keys at the top level, plus `text_projection` and `logit_scale`, which MMAudio never
uses and `select_clip_state` drops.
"""

import logging
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from engine.checkpoints import check_state

logger = logging.getLogger(__name__)

HUB_REPO = "apple/DFN5B-CLIP-ViT-H-14-384"  # the name MMAudio loads; the hub now calls it DFN5B-CLIP-ViT-H-14-378
CHECKPOINT_FILE = "open_clip_pytorch_model.bin"
DROPPED_KEYS = ("text_projection", "logit_scale")  # in the published file; MMAudio's features use neither
MMAUDIO_VARIANTS = ("small_16k", "small_44k", "medium_44k", "large_44k", "large_44k_v2")


@dataclass(frozen=True)
class VisionConfig:
    """open_clip's VisionTransformer: patch convolution, class token, pre-LayerNorm, blocks, post-LayerNorm of the
    class token, `proj`."""

    # The frame size MMAudio feeds. The hub config says 378 (= 27 x 14): both give a 27 x 27 patch grid, and the
    # stride-14 convolution never reaches the last 6 rows and columns of a 384 frame.
    image_size: int = 384
    patch_size: int = 14
    width: int = 1280
    layers: int = 32
    heads: int = 16  # width / head_width 80
    mlp_ratio: float = 4.0

    @property
    def grid(self) -> int:
        return self.image_size // self.patch_size

    @property
    def positions(self) -> int:
        return self.grid**2 + 1  # patches and the class token


@dataclass(frozen=True)
class TextConfig:
    """open_clip's text transformer (causal attention), as the CLIP model holds it: keys at the top level."""

    context_length: int = 77
    vocab_size: int = 49408
    width: int = 1024
    layers: int = 24
    heads: int = 16
    mlp_ratio: float = 4.0


@dataclass(frozen=True)
class ClipConfig:
    """Both towers, the activation they were trained with, and the pixel statistics MMAudio normalises with."""

    embed_dim: int = 1024
    vision: VisionConfig = field(default_factory=VisionConfig)
    text: TextConfig = field(default_factory=TextConfig)
    quick_gelu: bool = True  # DFN5B was trained with OpenAI's QuickGELU, not nn.GELU
    mean: tuple[float, float, float] = (0.48145466, 0.4578275, 0.40821073)
    std: tuple[float, float, float] = (0.26862954, 0.26130258, 0.27577711)


DFN5B = ClipConfig()
TINY = ClipConfig(
    embed_dim=16,
    vision=VisionConfig(width=32, layers=2, heads=2),
    text=TextConfig(vocab_size=320, width=32, layers=2, heads=2),
)

# Every MMAudio variant conditions on the same CLIP.
PRESETS: dict[str, ClipConfig] = {"dfn5b_vit_h_14_384": DFN5B, **dict.fromkeys(MMAUDIO_VARIANTS, DFN5B), "tiny": TINY}


class QuickGELU(nn.Module):
    """x * sigmoid(1.702 x), the GELU approximation of OpenAI's CLIP (Hendrycks and Gimpel 2016)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(1.702 * x)


class SelfAttention(nn.Module):
    """Multi-head self-attention with torch.nn.MultiheadAttention's parameter names (`in_proj_*`, `out_proj`)."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads = heads
        self.in_proj_weight = nn.Parameter(torch.empty(3 * width, width))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * width))
        self.out_proj = nn.Linear(width, width)
        nn.init.xavier_uniform_(self.in_proj_weight)

    def forward(self, x: torch.Tensor, causal: bool) -> torch.Tensor:
        batch, length, width = x.shape
        qkv = F.linear(x, self.in_proj_weight, self.in_proj_bias)  # rows: queries, keys, values; each head-major
        q, k, v = qkv.view(batch, length, 3, self.heads, width // self.heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v, is_causal=causal)  # [batch, heads, length, head_width]
        return self.out_proj(out.transpose(1, 2).reshape(batch, length, width))


class ResidualBlock(nn.Module):
    """Pre-norm transformer block: x + attn(ln_1(x)), then x + mlp(ln_2(x))."""

    def __init__(self, width: int, heads: int, mlp_ratio: float, quick_gelu: bool):
        super().__init__()
        hidden = int(width * mlp_ratio)
        self.ln_1 = nn.LayerNorm(width)
        self.attn = SelfAttention(width, heads)
        self.ln_2 = nn.LayerNorm(width)
        activation = QuickGELU() if quick_gelu else nn.GELU()
        self.mlp = nn.Sequential(
            OrderedDict(c_fc=nn.Linear(width, hidden), gelu=activation, c_proj=nn.Linear(hidden, width))
        )

    def forward(self, x: torch.Tensor, causal: bool) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x), causal)
        return x + self.mlp(self.ln_2(x))


class Transformer(nn.Module):
    """A stack of residual blocks at `resblocks.{i}`."""

    def __init__(self, width: int, layers: int, heads: int, mlp_ratio: float, quick_gelu: bool):
        super().__init__()
        self.resblocks = nn.ModuleList(ResidualBlock(width, heads, mlp_ratio, quick_gelu) for _ in range(layers))

    def forward(self, x: torch.Tensor, causal: bool = False) -> torch.Tensor:
        for block in self.resblocks:
            x = block(x, causal)
        return x


class VisionTower(nn.Module):
    """open_clip's VisionTransformer with class-token pooling, held at `visual.` in the published file."""

    def __init__(self, config: VisionConfig, embed_dim: int, quick_gelu: bool):
        super().__init__()
        width, scale = config.width, config.width**-0.5
        self.conv1 = nn.Conv2d(3, width, config.patch_size, stride=config.patch_size, bias=False)
        self.class_embedding = nn.Parameter(scale * torch.randn(width))
        self.positional_embedding = nn.Parameter(scale * torch.randn(config.positions, width))
        self.ln_pre = nn.LayerNorm(width)
        self.transformer = Transformer(width, config.layers, config.heads, config.mlp_ratio, quick_gelu)
        self.ln_post = nn.LayerNorm(width)
        self.proj = nn.Parameter(scale * torch.randn(width, embed_dim))

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """Normalised pixels [N, 3, S, S] -> image embeddings [N, embed_dim] (not yet unit length)."""
        patches = self.conv1(pixels).flatten(2).transpose(1, 2)  # [N, grid * grid, width], rows first
        class_token = self.class_embedding.to(patches.dtype).expand(patches.shape[0], 1, -1)
        x = torch.cat([class_token, patches], dim=1) + self.positional_embedding.to(patches.dtype)
        x = self.transformer(self.ln_pre(x))
        return self.ln_post(x[:, 0]) @ self.proj


class ClipModel(nn.Module):
    """The two towers in the published key layout: the image tower under `visual.`, the text tower's
    `token_embedding`, `positional_embedding`, `transformer` and `ln_final` at the top level."""

    def __init__(self, config: ClipConfig):
        super().__init__()
        text = config.text
        self.config = config
        self.visual = VisionTower(config.vision, config.embed_dim, config.quick_gelu)
        self.token_embedding = nn.Embedding(text.vocab_size, text.width)
        self.positional_embedding = nn.Parameter(0.01 * torch.randn(text.context_length, text.width))
        self.transformer = Transformer(text.width, text.layers, text.heads, text.mlp_ratio, config.quick_gelu)
        self.ln_final = nn.LayerNorm(text.width)

    def encode_text(self, tokens: torch.Tensor) -> torch.Tensor:
        """Token ids [B, L] -> features of every token [B, L, width] after `ln_final` (no pooling, no projection)."""
        x = self.token_embedding(tokens) + self.positional_embedding
        return self.ln_final(self.transformer(x, causal=True))


def check_frames(frames: torch.Tensor, config: ClipConfig) -> None:
    """Raise ValueError unless `frames` is a float batch [N >= 1, 3, S, S] at the tower's frame size S."""
    size = config.vision.image_size
    if frames.ndim != 4 or frames.shape[0] == 0 or tuple(frames.shape[1:]) != (3, size, size):
        raise ValueError(f"frames have shape {tuple(frames.shape)}; CLIP takes [N, 3, {size}, {size}] (N >= 1): "
                         f"resize each RGB frame to {size} x {size} (MMAudio: bicubic, aspect ratio squashed).")
    if not frames.is_floating_point():
        raise ValueError(f"frames are {frames.dtype}; CLIP takes floats in [0, 1]: divide 8-bit frames by 255.")


def check_tokens(tokens: torch.Tensor, config: TextConfig) -> None:
    """Raise ValueError unless `tokens` is an integer batch [B, context_length] of ids in the vocabulary."""
    if tokens.ndim != 2 or tokens.shape[1] != config.context_length or tokens.is_floating_point():
        raise ValueError(f"tokens are {tokens.dtype} {tuple(tokens.shape)}; the text tower takes integer ids "
                         f"[B, {config.context_length}] from engine.mmaudio.tokenizer.")
    if tokens.numel() and (tokens.min() < 0 or tokens.max() >= config.vocab_size):
        raise ValueError(f"token ids span {int(tokens.min())}..{int(tokens.max())}, outside the vocabulary "
                         f"0..{config.vocab_size - 1}: tokenize with this model's tokenizer.")


@torch.no_grad()
def clip_image_features(model: ClipModel, frames: torch.Tensor, *, batch_size: int | None = None) -> torch.Tensor:
    """MMAudio's `encode_video_with_clip` per frame.

    Args:
        model: the CLIP towers (`load_clip`).
        frames: [N, 3, S, S] RGB in [0, 1], S = 384 for the published model.
        batch_size: frames per forward pass (all at once when None); bounds memory, not the result.

    Returns:
        Unit-length image embeddings [N, embed_dim] (1024), in the model's dtype.
    """
    check_frames(frames, model.config)
    weight = model.visual.proj
    mean = torch.tensor(model.config.mean, device=frames.device).view(3, 1, 1)
    std = torch.tensor(model.config.std, device=frames.device).view(3, 1, 1)
    pixels = ((frames - mean) / std).to(weight.device, weight.dtype)
    chunks = pixels.split(batch_size or len(pixels))
    return torch.cat([F.normalize(model.visual(chunk), dim=-1) for chunk in chunks])


@torch.no_grad()
def clip_text_features(model: ClipModel, tokens: torch.Tensor) -> torch.Tensor:
    """MMAudio's `encode_text`: token ids [B, 77] (`engine.mmaudio.tokenizer`) -> unit-length features of every
    token [B, 77, text width] (1024), in the model's dtype."""
    check_tokens(tokens, model.config.text)
    return F.normalize(model.encode_text(tokens.to(model.token_embedding.weight.device)), dim=-1)


def select_clip_state(published: Mapping[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], list[str]]:
    """The published file's tensors that `ClipModel` holds, and the names of those it drops (`DROPPED_KEYS`)."""
    kept = {key: value for key, value in published.items() if key not in DROPPED_KEYS}
    dropped = [key for key in published if key in DROPPED_KEYS]
    return kept, dropped


def _layout_hint(keys: list[str]) -> str:
    """A hint for the one wrong file users are likely to pick: the transformers copy in the same hub repo."""
    if any(key.startswith(("vision_model.", "text_model.")) for key in keys):
        return (f"These are transformers' CLIPModel names (the repo's pytorch_model.bin / model.safetensors); "
                f"use its {CHECKPOINT_FILE}, open_clip's layout.")
    return ""


def check_clip_state(model: ClipModel, state: Mapping[str, torch.Tensor], source: str) -> None:
    """Raise CheckpointError naming every missing key, unexpected key and shape mismatch of `state` at once."""
    unexpected = [key for key in state if key not in model.state_dict()]
    check_state(model, state, f"{source} does not match the CLIP towers of MMAudio ({HUB_REPO}, {CHECKPOINT_FILE}).",
                _layout_hint(unexpected) or "Use the hub repo's open_clip file, complete and unmodified.")


def load_clip(published: Mapping[str, torch.Tensor], config: ClipConfig = DFN5B, *, source: str = CHECKPOINT_FILE,
              device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> ClipModel:
    """Build the towers on the meta device and take the published tensors as their parameters (no second copy).

    `published` is the hub file's state dict, e.g. `torch.load(path, map_location="cpu", weights_only=True,
    mmap=True)`; unused keys are dropped (`select_clip_state`), the rest must match exactly.
    """
    state, dropped = select_clip_state(published)
    with torch.device("meta"):
        model = ClipModel(config)
    check_clip_state(model, state, source)
    model.load_state_dict(state, strict=True, assign=True)
    logger.info("Loaded the CLIP towers from %s (unused there: %s)", source, ", ".join(dropped) or "nothing")
    return model.to(device, dtype).eval()
