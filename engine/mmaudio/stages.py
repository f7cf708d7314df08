"""The MMAudio family's stages built from a config: CLIP towers, Synchformer visual branch, network, VAE decoder,
vocoder; `parts()` names them as the installed weights file prefixes them."""

from dataclasses import dataclass

from torch import nn

from engine.mmaudio.clip import ClipModel
from engine.mmaudio.config import MMAudioConfig
from engine.mmaudio.encoders import OnnxPictureEncoders
from engine.mmaudio.network import MMAudioNetwork
from engine.mmaudio.synchformer import Synchformer
from engine.mmaudio.vae import MelVAEDecoder
from engine.mmaudio.vocoder import BigVGAN

PARTS = ("clip", "synchformer", "network", "vae", "vocoder")


@dataclass
class Stages:
    clip: ClipModel
    synchformer: Synchformer
    network: MMAudioNetwork
    vae: MelVAEDecoder
    vocoder: BigVGAN
    onnx: OnnxPictureEncoders | None = None  # the picture encoders' ONNX export, run instead of CLIP's image tower
    # and the Synchformer when set (`use_onnx_encoder`)

    def parts(self) -> dict[str, nn.Module]:
        """Name -> torch module, in checkpoint order."""
        return {name: getattr(self, name) for name in PARTS}


def build_modules(config: MMAudioConfig) -> Stages:
    """Random-initialised (or, under `torch.device("meta")`, unallocated) inference stages of `config`."""
    return Stages(
        clip=ClipModel(config.clip).eval(),
        synchformer=Synchformer(config.synchformer).eval(),
        network=MMAudioNetwork(config.network).eval(),
        vae=MelVAEDecoder(config.vae).eval(),
        vocoder=BigVGAN(config.vocoder).eval(),
    )
