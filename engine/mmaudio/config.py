"""One MMAudio model: the sizes of its five stages, as each published variant (and the test size) sets them."""

from dataclasses import dataclass, replace
from fractions import Fraction

from engine.mmaudio.clip import DFN5B, ClipConfig
from engine.mmaudio.clip import TINY as TINY_CLIP
from engine.mmaudio.network import NETWORK_PRESETS, SEQUENCE_16K, SEQUENCE_44K, NetworkConfig, SequenceConfig
from engine.mmaudio.synchformer import SYNCHFORMER, SynchformerConfig
from engine.mmaudio.synchformer import TINY as TINY_SYNCHFORMER
from engine.mmaudio.vae import VAE_PRESETS, VARIANT_MODES, VAEConfig
from engine.mmaudio.vocoder import VOCODER_PRESETS, BigVGANConfig


@dataclass(frozen=True)
class MMAudioConfig:
    """A variant: CLIP (8 fps, 384 px, squashed) and Synchformer (25 fps, 224 px, centre crop) conditions, the
    network, the mel VAE decoder and the vocoder of its sample rate. Windows are the 8 s it was trained on."""

    name: str
    network: NetworkConfig
    vae: VAEConfig
    vocoder: BigVGANConfig
    clip: ClipConfig
    synchformer: SynchformerConfig
    sampler: str = "euler"  # flow matching, min_sigma 0 (MMAudio's demo)
    steps: int = 25
    guidance: float = 4.5

    @property
    def sample_rate(self) -> int:
        return self.network.sequence.sample_rate

    @property
    def window_seconds(self) -> Fraction:
        return self.network.sequence.seconds

    @property
    def clip_rate(self) -> int:
        return self.network.sequence.clip_fps

    @property
    def frame_rate(self) -> int:
        """The rate of the pictures the job's motion and sync score are measured on: the Synchformer's 25 fps."""
        return self.network.sequence.sync_fps


def _published(name: str) -> MMAudioConfig:
    mode = VARIANT_MODES[name]
    return MMAudioConfig(name, NETWORK_PRESETS[name], VAE_PRESETS[mode], VOCODER_PRESETS[mode], DFN5B, SYNCHFORMER)


def _tiny(name: str, sequence: SequenceConfig, vocoder: str, upsample_rates: tuple[int, ...]) -> MMAudioConfig:
    """Test size: every stage tiny with widths that agree (CLIP 16-d images, 32-d text over the real vocabulary,
    Synchformer 32-d), 8 s windows at the published sample rate and hop."""
    clip = replace(TINY_CLIP, text=replace(TINY_CLIP.text, vocab_size=DFN5B.text.vocab_size))
    vae = VAE_PRESETS["tiny"]
    network = replace(NETWORK_PRESETS["tiny"], name=name, latent_dim=vae.latent_dim, clip_dim=clip.embed_dim,
                      text_dim=clip.text.width, text_seq_len=clip.text.context_length,
                      sync_dim=TINY_SYNCHFORMER.embed_dim, sequence=sequence)
    kernels = tuple(2 * rate for rate in upsample_rates)
    vocoder_config = replace(VOCODER_PRESETS[vocoder], num_mels=vae.mel_dim, upsample_rates=upsample_rates,
                             upsample_kernel_sizes=kernels)
    return MMAudioConfig(name, network, vae, vocoder_config, clip, TINY_SYNCHFORMER)


PRESETS: dict[str, MMAudioConfig] = {
    **{name: _published(name) for name in VARIANT_MODES},
    "tiny": _tiny("tiny", SEQUENCE_16K, "tiny", (8, 8, 4)),
    "tiny_44k": _tiny("tiny_44k", SEQUENCE_44K, "tiny_44k", (8, 8, 8)),
}
