"""The MMAudio family's stages built from a config: CLIP towers, Synchformer visual branch, network, VAE decoder,
vocoder; `parts()` names them as the installed weights file prefixes them."""

from dataclasses import dataclass, fields

from torch import nn

from engine.mmaudio.clip import ClipModel
from engine.mmaudio.config import MMAudioConfig
from engine.mmaudio.network import MMAudioNetwork
from engine.mmaudio.synchformer import Synchformer
from engine.mmaudio.vae import MelVAEDecoder
from engine.mmaudio.vocoder import BigVGAN


@dataclass
class Stages:
    clip: ClipModel
    synchformer: Synchformer
    network: MMAudioNetwork
    vae: MelVAEDecoder
    vocoder: BigVGAN

    def parts(self) -> dict[str, nn.Module]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def build_modules(config: MMAudioConfig) -> Stages:
    """Random-initialised (or, under `torch.device("meta")`, unallocated) inference stages of `config`."""
    return Stages(
        clip=ClipModel(config.clip).eval(),
        synchformer=Synchformer(config.synchformer).eval(),
        network=MMAudioNetwork(config.network).eval(),
        vae=MelVAEDecoder(config.vae).eval(),
        vocoder=BigVGAN(config.vocoder).eval(),
    )
