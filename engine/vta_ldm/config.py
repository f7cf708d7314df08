"""VTA-LDM model configuration: frozen dataclasses with derived sizes, and named presets.

The numbers of the published preset come from `shared/reference/vta-ldm.md` (sections 1.3-1.8); they are
embedded here so that nothing is ever fetched from a model hub to build the model.
"""

from dataclasses import asdict, dataclass, field, fields, replace
from fractions import Fraction
from typing import Literal


@dataclass(frozen=True)
class VisionConfig:
    """CLIP vision tower (image_embeds) plus VTA-LDM's linear projection to the UNet's context width."""

    hidden_size: int = 1024
    intermediate_size: int = 4096
    num_layers: int = 24
    num_heads: int = 16
    patch_size: int = 14
    image_size: int = 224
    projection_dim: int = 768
    embedding_dim: int = 2048
    frame_pe: bool = False  # sinusoidal frame position table added to image_embeds (off in the release)
    pe_max_frames: int = 30
    flow_grid: int = 0  # optical-flow auxiliary features: a grid x grid field of (dx, dy) joins each image_embeds
    # event features (ours; needs flow_grid): camera-compensated flow, its change from frame to frame and the
    # picture's change per grid cell, through a temporal convolution of this kernel (frames) added to each token
    motion_kernel: int = 0
    # onset detector (ours; needs the UNet's frame-aligned channels): convolutions over time (this kernel, frames)
    # and space (3 x 3 cells) of the motion in each cell of an onset_grid x onset_grid layout, the same weights in
    # every cell, say per frame whether a sound starts there; its peaks above `onset_threshold`, marked 1 with 0.5
    # on the frames either side, replace the last token channel, the last frame-aligned channel the UNet reads
    onset_kernel: int = 0
    onset_grid: int = 8
    onset_width: int = 24
    onset_threshold: float = 0.5

    @property
    def flow_features(self) -> int:
        return 2 * self.flow_grid**2

    @property
    def motion_features(self) -> int:
        return 5 * self.flow_grid**2  # compensated flow (2), its change (2), picture change (1) per cell

    @property
    def detector_grid(self) -> int:
        return self.onset_grid if self.onset_kernel else 0  # the grid of cells the onset detector reads (0: none)

    @property
    def onset_features(self) -> int:
        return 4 * self.detector_grid**2  # per cell: compensated flow (2), its speed, picture change


@dataclass(frozen=True)
class UNetConfig:
    """The fields of diffusers' `UNet2DConditionModel` config that VTA-LDM sets."""

    in_channels: int = 8  # latent channels
    out_channels: int = 8
    # frame-aligned conditioning: the last `aligned_channels` of each context token, laid along the latent's time
    # axis, join the latent as extra input channels (0 in the release: cross-attention only)
    aligned_channels: int = 0
    block_out_channels: tuple[int, ...] = (320, 640, 640, 1280)
    down_block_types: tuple[str, ...] = ("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",)
    up_block_types: tuple[str, ...] = ("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3
    attention_head_dim: tuple[int, ...] = (5, 10, 20, 20)  # diffusers reads these as head counts (SD-2 quirk)
    cross_attention_dim: int = 2048
    layers_per_block: int = 2
    norm_num_groups: int = 32
    use_linear_projection: bool = True
    upcast_attention: bool = True

    def diffusers_kwargs(self) -> dict:
        """Keyword arguments for `UNet2DConditionModel(...)`, lists where diffusers expects lists."""
        return {
            "sample_size": None,
            "in_channels": self.in_channels + self.aligned_channels,
            "out_channels": self.out_channels,
            "block_out_channels": list(self.block_out_channels),
            "down_block_types": list(self.down_block_types),
            "up_block_types": list(self.up_block_types),
            "attention_head_dim": list(self.attention_head_dim),
            "cross_attention_dim": self.cross_attention_dim,
            "layers_per_block": self.layers_per_block,
            "norm_num_groups": self.norm_num_groups,
            "norm_eps": 1e-5,
            "use_linear_projection": self.use_linear_projection,
            "upcast_attention": self.upcast_attention,
            "act_fn": "silu",
            "flip_sin_to_cos": True,
            "freq_shift": 0,
            "downsample_padding": 1,
            "mid_block_scale_factor": 1,
            "center_input_sample": False,
        }


@dataclass(frozen=True)
class VAEConfig:
    """AudioLDM's LDM-style AutoencoderKL (only the decoder side is built)."""

    ch: int = 128
    ch_mult: tuple[int, ...] = (1, 2, 4)
    num_res_blocks: int = 2
    z_channels: int = 8
    embed_dim: int = 8
    norm_num_groups: int = 32

    @property
    def downsample(self) -> int:
        return 2 ** (len(self.ch_mult) - 1)

    @property
    def block_out_channels(self) -> tuple[int, ...]:
        return tuple(self.ch * m for m in self.ch_mult)


@dataclass(frozen=True)
class VocoderConfig:
    """HiFi-GAN V1 generator as AudioLDM's HIFIGAN_16K_64."""

    num_mels: int = 64
    upsample_rates: tuple[int, ...] = (5, 4, 2, 2, 2)
    upsample_kernel_sizes: tuple[int, ...] = (16, 16, 8, 4, 4)
    upsample_initial_channel: int = 1024
    resblock_kernel_sizes: tuple[int, ...] = (3, 7, 11)
    resblock_dilation_sizes: tuple[tuple[int, ...], ...] = ((1, 3, 5), (1, 3, 5), (1, 3, 5))

    @property
    def hop_length(self) -> int:
        hop = 1
        for rate in self.upsample_rates:
            hop *= rate
        return hop


@dataclass(frozen=True)
class SchedulerConfig:
    """SD-2.1's DDPM scheduler numbers as VTA-LDM reads them (notes 1.6); embedded, never fetched."""

    num_train_timesteps: int = 1000
    beta_start: float = 0.00085
    beta_end: float = 0.012
    beta_schedule: Literal["scaled_linear"] = "scaled_linear"
    prediction_type: Literal["v_prediction"] = "v_prediction"
    steps_offset: int = 1
    timestep_spacing: Literal["leading"] = "leading"


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to build a model and size its inputs and outputs."""

    name: str
    vision: VisionConfig = field(default_factory=VisionConfig)
    unet: UNetConfig = field(default_factory=UNetConfig)
    vae: VAEConfig = field(default_factory=VAEConfig)
    vocoder: VocoderConfig = field(default_factory=VocoderConfig)
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    frame_rate: int = 2
    sample_rate: int = 16000
    latent_frames: int = 256
    latent_bins: int = 16
    default_scale_factor: float = 0.9227914214134216  # used only when a checkpoint carries none

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        return (self.unet.in_channels, self.latent_frames, self.latent_bins)

    @property
    def latent_rate(self) -> Fraction:
        """Latent frames per second (25 for VTA-LDM: 10 ms mel hops, 4x down)."""
        return Fraction(self.latent_frames) / self.window_seconds

    @property
    def mel_frames(self) -> int:
        return self.latent_frames * self.vae.downsample

    @property
    def window_seconds(self) -> Fraction:
        """Length of the audio the model makes in one pass (10.24 s for VTA-LDM)."""
        return Fraction(self.mel_frames * self.vocoder.hop_length, self.sample_rate)

    @property
    def window_samples(self) -> int:
        return self.mel_frames * self.vocoder.hop_length


VTA_LDM = ModelConfig(name="vta-ldm-clip4clip-v-large")

TINY = ModelConfig(
    name="tiny",
    vision=VisionConfig(
        hidden_size=32, intermediate_size=64, num_layers=2, num_heads=4, projection_dim=16, embedding_dim=32
    ),
    unet=UNetConfig(
        block_out_channels=(32, 64, 64),
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=(2, 4, 4),
        cross_attention_dim=32,
        layers_per_block=1,
        norm_num_groups=8,
    ),
    vae=VAEConfig(ch=32, num_res_blocks=1),
    vocoder=VocoderConfig(
        upsample_initial_channel=64, resblock_kernel_sizes=(3,), resblock_dilation_sizes=((1, 3, 5),)
    ),
)

# The project's own starter model (`foley train`): small enough to train on two CPU cores and to ship in the repo.
# 25 fps frames match the 25 Hz latent frames one to one; 4 s windows; optical-flow features, event features,
# frame-aligned conditioning and an onset detector for sync.
STARTER = ModelConfig(
    name="starter",
    vision=VisionConfig(hidden_size=64, intermediate_size=128, num_layers=2, num_heads=4, patch_size=16,
                        image_size=64, projection_dim=64, embedding_dim=64, frame_pe=True, pe_max_frames=100,
                        flow_grid=4, motion_kernel=5, onset_kernel=5),
    unet=replace(TINY.unet, block_out_channels=(32, 64, 128), attention_head_dim=(2, 4, 8), cross_attention_dim=64,
                 norm_num_groups=16, aligned_channels=16),
    vae=VAEConfig(ch=16, num_res_blocks=1, norm_num_groups=8),
    vocoder=VocoderConfig(
        upsample_initial_channel=128, resblock_kernel_sizes=(3, 7), resblock_dilation_sizes=((1, 3, 5), (1, 3, 5))
    ),
    frame_rate=25,
    latent_frames=100,
)

PRESETS: dict[str, ModelConfig] = {config.name: config for config in (VTA_LDM, TINY, STARTER)}


def config_to_dict(config: ModelConfig) -> dict:
    """A model config as plain JSON data (a trained model's manifest carries it)."""
    return asdict(config)


def config_from_dict(data: dict) -> ModelConfig:
    """The inverse of `config_to_dict`; unknown fields are refused, missing ones take their defaults."""
    def build(kind, values: dict):
        fields_of = {f.name: f for f in fields(kind)}
        unknown = set(values) - set(fields_of)
        if unknown:
            raise ValueError(f"unknown {kind.__name__} fields: {', '.join(sorted(unknown))}")
        out = {}
        for name, value in values.items():
            nested = NESTED.get((kind, name))
            out[name] = build(nested, value) if nested else _tuples(value)
        return kind(**out)

    return build(ModelConfig, data)


def _tuples(value):
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


NESTED = {(ModelConfig, "vision"): VisionConfig, (ModelConfig, "unet"): UNetConfig, (ModelConfig, "vae"): VAEConfig,
          (ModelConfig, "vocoder"): VocoderConfig, (ModelConfig, "scheduler"): SchedulerConfig}

# The UNet config file that a VTA-LDM training run names in summary.jsonl, mapped to our preset.
UNET_CONFIG_FILES: dict[str, str] = {
    "diffusion_model_config_large_2048.json": VTA_LDM.name,
    "diffusion_model_config_tiny.json": TINY.name,
}
