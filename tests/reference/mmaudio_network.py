"""Record MMAudio's own network and sampler outputs at the tiny sizes, for tests/test_mmaudio_network.py.

Run with the reference venv, against a checkout of hkchengrex/MMAudio:

    /work/refvenv/bin/python tests/reference/mmaudio_network.py --mmaudio /tmp/mmaudio-ref-network

For the tiny (v1) and tiny_v2 sizes it builds THEIR `MMAudio` (mmaudio/model/networks.py) after
`torch.manual_seed(0)`, replaces its weights with seeded random values (their own init zeroes every adaLN and
the output layer, so the velocity would be 0) rounded to float16 (the file stores them as float16, exactly), and
records in float32 on the CPU:

- their `preprocess_conditions` (and the global condition `global_cond_mlp(clip_f_c + text_f_c)`),
  `get_empty_conditions` with and without negative text features, `predict_flow`, `ode_wrapper` (cfg 4.5),
  `normalize`/`unnormalize` (at 2.5 s);
- their `eval_utils.generate()` with `FlowMatching(min_sigma=0, inference_mode='euler', num_steps=4)` and a seeded
  generator, which returns the un-normalised latent here because a stand-in for `FeaturesUtils` passes given
  features through (encode_*), and decode/vocode are the identity; the start noise is captured from `to_data`;
- all of it at 8 s (16 kHz) and at 2.5 s after their `update_seq_lengths`;
- their `SequenceConfig` lengths for a few durations at 16 kHz and 44.1 kHz;
- in the metadata, a digest of the keys and shapes of every published variant (built on the meta device).

`generate()` is compiled from the source of their eval_utils.py alone (the `ast` node of the function), so its
module's imports (torchvision, av, PIL, colorlog, open_clip via FeaturesUtils) are not needed; nothing is put into
`sys.modules`. The tiny sizes are written out here and must equal engine/mmaudio/network.py's TINY and TINY_V2.
"""

import argparse
import ast
import dataclasses
import hashlib
import sys
from pathlib import Path
from typing import Optional

import torch
from safetensors.torch import save_file

MMAUDIO_COMMIT = "974010a026c731054592d8f777218bd9d85a6c24"
TINY = {"latent_dim": 8, "clip_dim": 16, "sync_dim": 16, "text_dim": 16, "hidden_dim": 8, "depth": 3, "fused_depth": 1,
        "num_heads": 2, "latent_seq_len": 250, "clip_seq_len": 64, "sync_seq_len": 192, "text_seq_len": 8}
VARIANTS = {"tiny": dict(TINY, v2=False), "tiny_v2": dict(TINY, v2=True)}
BATCH = 2
CFG_STRENGTH = 4.5
NUM_STEPS = 4
NOISE_SEED = 7
SHORT_DURATION = 2.5
DURATIONS = (8.0, 2.5, 5.0, 10.0, 1.3, 0.64, 3.7)
OUTPUT = Path(__file__).resolve().parents[1] / "fixtures" / "mmaudio" / "network.safetensors"


class FeatureStub:
    """Stands in for their FeaturesUtils: the 'videos' are already features, texts are looked up, decode and vocode
    return the latent."""

    device = torch.device("cpu")
    dtype = torch.float32

    def __init__(self, texts: dict[str, torch.Tensor]):
        self.texts = texts

    def encode_video_with_clip(self, video, batch_size):
        return video

    def encode_video_with_sync(self, video, batch_size):
        return video

    def encode_text(self, texts):
        return torch.stack([self.texts[text] for text in texts])

    def decode(self, latent):
        return latent

    def vocode(self, spec):
        return spec


def their_generate(checkout: Path, MMAudio, FlowMatching):
    """Their eval_utils.generate, compiled from its source alone."""
    tree = ast.parse((checkout / "mmaudio" / "eval_utils.py").read_text())
    node = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "generate")
    namespace = {"torch": torch, "Optional": Optional, "MMAudio": MMAudio, "FlowMatching": FlowMatching,
                 "FeaturesUtils": FeatureStub}
    # their own source, from the checkout the caller names: running it is the point of the harness
    exec(compile(ast.Module(body=[node], type_ignores=[]), "eval_utils.py", "exec"), namespace)  # noqa: S102
    return namespace["generate"]


def randomise(net: torch.nn.Module, seed: int) -> None:
    """Seeded random weights of a sensible scale, rounded to float16 values."""
    rng = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in net.state_dict().items():
            noise = torch.randn(p.shape, generator=rng)
            if name.endswith("latent_std"):
                value = 0.5 + torch.rand(p.shape, generator=rng)
            elif name.endswith(("q_norm.weight", "k_norm.weight")):
                value = 1 + 0.1 * noise
            elif p.ndim >= 2 and not name.startswith(("empty_", "sync_pos_emb", "latent_")):
                value = noise / p[0].numel() ** 0.5
            elif name.startswith(("empty_", "sync_pos_emb", "latent_")):
                value = 0.5 * noise
            else:
                value = 0.2 * noise
            p.copy_(value.half().float())


def conditions_tensors(prefix: str, net, conditions) -> dict[str, torch.Tensor]:
    """Their preprocessed conditions as our fields: clip, sync, text and the global condition."""
    return {
        f"{prefix}/clip": conditions.clip_f,
        f"{prefix}/sync": conditions.sync_f,
        f"{prefix}/text": conditions.text_f,
        f"{prefix}/global_c": net.global_cond_mlp(conditions.clip_f_c + conditions.text_f_c),
    }


def make_inputs(prefix: str, lengths: tuple[int, int, int], rng: torch.Generator) -> dict[str, torch.Tensor]:
    """Random features and latents for sequence `lengths` (latent, clip, sync), shared by both variants."""
    latent_len, clip_len, sync_len = lengths
    return {
        f"{prefix}/clip": torch.randn(BATCH, clip_len, TINY["clip_dim"], generator=rng),
        f"{prefix}/sync": torch.randn(BATCH, sync_len, TINY["sync_dim"], generator=rng),
        f"{prefix}/text": torch.randn(BATCH, TINY["text_seq_len"], TINY["text_dim"], generator=rng),
        f"{prefix}/negative_text": torch.randn(BATCH, TINY["text_seq_len"], TINY["text_dim"], generator=rng),
        f"{prefix}/latent": torch.randn(BATCH, latent_len, TINY["latent_dim"], generator=rng),
        f"{prefix}/t": torch.tensor([0.25, 0.75]),
        f"{prefix}/t_cfg": torch.tensor(0.5),
    }


def record_duration(prefix: str, inputs: dict, net, generate, FlowMatching, negative: bool) -> dict:
    """Their outputs at the network's current sequence lengths; `negative`: generate with negative prompts."""
    clip, sync, text, negative_text, latent, t, t_cfg = inputs.values()
    out = {}
    conditions = net.preprocess_conditions(clip, sync, text)
    empty = net.get_empty_conditions(BATCH)
    empty_negative = net.get_empty_conditions(BATCH, negative_text_features=negative_text)
    out.update(conditions_tensors(f"{prefix}/conditions", net, conditions))
    out.update(conditions_tensors(f"{prefix}/empty", net, empty))
    out.update(conditions_tensors(f"{prefix}/empty_negative", net, empty_negative))
    out[f"{prefix}/velocity"] = net.predict_flow(latent, t, conditions)
    out[f"{prefix}/cfg_velocity"] = net.ode_wrapper(t_cfg, latent, conditions, empty_negative, CFG_STRENGTH)

    class RecordingFlow(FlowMatching):
        def to_data(self, fn, x0):
            out[f"{prefix}/noise"] = x0.clone()
            return super().to_data(fn, x0)

    texts = {"prompt a": text[0], "prompt b": text[1], "negative a": negative_text[0], "negative b": negative_text[1]}
    out[f"{prefix}/generated"] = generate(
        clip, sync, ["prompt a", "prompt b"], negative_text=["negative a", "negative b"] if negative else None,
        feature_utils=FeatureStub(texts), net=net,
        fm=RecordingFlow(min_sigma=0, inference_mode="euler", num_steps=NUM_STEPS),
        rng=torch.Generator().manual_seed(NOISE_SEED), cfg_strength=CFG_STRENGTH)
    return out


def record_variant(name: str, kwargs: dict, inputs: dict, generate, modules) -> dict[str, torch.Tensor]:
    """Weights (float16) and recorded tensors of one tiny network."""
    networks, flow_matching, sequence_config = modules
    torch.manual_seed(0)
    net = networks.MMAudio(**kwargs).eval()
    randomise(net, seed=1)
    out = {f"{name}/weights/{key}": value.half() for key, value in net.state_dict().items()}
    with torch.no_grad():
        out.update(record_duration(f"{name}/8s", inputs["8s"], net, generate, flow_matching.FlowMatching, True))
        short = dataclasses.replace(sequence_config.CONFIG_16K, duration=SHORT_DURATION)
        net.update_seq_lengths(short.latent_seq_len, short.clip_seq_len, short.sync_seq_len)
        out.update(record_duration(f"{name}/short", inputs["short"], net, generate, flow_matching.FlowMatching, False))
        latent = inputs["short"]["inputs/short/latent"]
        out[f"{name}/short/normalized"] = net.normalize(latent.clone())
        out[f"{name}/short/unnormalized"] = net.unnormalize(latent.clone())
    return out


def sequence_lengths(sequence_config) -> dict[str, torch.Tensor]:
    """Their (latent, clip, sync, audio samples) per duration, for 16 kHz and 44.1 kHz."""
    out = {"sequence/durations": torch.tensor(DURATIONS, dtype=torch.float64)}
    for mode, base in (("16k", sequence_config.CONFIG_16K), ("44k", sequence_config.CONFIG_44K)):
        rows = []
        for duration in DURATIONS:
            config = dataclasses.replace(base, duration=duration)
            rows.append([config.latent_seq_len, config.clip_seq_len, config.sync_seq_len, config.num_audio_frames])
        out[f"sequence/{mode}"] = torch.tensor(rows, dtype=torch.int64)
    return out


def layout_digests(networks) -> dict[str, str]:
    """Per published variant: the number of keys and a SHA-256 of the sorted 'key shape' lines of their state dict
    (built on the meta device), so the test checks every released layout without the weights."""
    digests = {}
    for variant in ("small_16k", "small_44k", "medium_44k", "large_44k", "large_44k_v2"):
        with torch.device("meta"):
            state = networks.get_my_mmaudio(variant).state_dict()
        lines = sorted(f"{key} {tuple(value.shape)}" for key, value in state.items())
        digests[f"layout/{variant}"] = f"{len(lines)} {hashlib.sha256(chr(10).join(lines).encode()).hexdigest()}"
    return digests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mmaudio", type=Path, required=True, help="a checkout of hkchengrex/MMAudio")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    parser.add_argument("--commit", default=MMAUDIO_COMMIT, help="the MMAudio commit of the checkout (recorded)")
    args = parser.parse_args()
    sys.path.insert(0, str(args.mmaudio.resolve()))
    from mmaudio.model import flow_matching, networks, sequence_config

    generate = their_generate(args.mmaudio, networks.MMAudio, flow_matching.FlowMatching)
    tensors = sequence_lengths(sequence_config)
    short = dataclasses.replace(sequence_config.CONFIG_16K, duration=SHORT_DURATION)
    rng = torch.Generator().manual_seed(2)
    inputs = {
        "8s": make_inputs("inputs/8s", (TINY["latent_seq_len"], TINY["clip_seq_len"], TINY["sync_seq_len"]), rng),
        "short": make_inputs("inputs/short", (short.latent_seq_len, short.clip_seq_len, short.sync_seq_len), rng),
    }
    tensors.update(inputs["8s"])
    tensors.update(inputs["short"])
    for name, kwargs in VARIANTS.items():
        tensors.update(record_variant(name, kwargs, inputs, generate, (networks, flow_matching, sequence_config)))
    tensors = {key: value.clone().contiguous() for key, value in tensors.items()}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    metadata = {
        "mmaudio_commit": args.commit,
        "command": "/work/refvenv/bin/python tests/reference/mmaudio_network.py --mmaudio <checkout>",
        "torch": torch.__version__,
        "settings": f"batch={BATCH} cfg_strength={CFG_STRENGTH} num_steps={NUM_STEPS} noise_seed={NOISE_SEED} "
                    f"short_duration={SHORT_DURATION}",
        **layout_digests(networks),
    }
    save_file(tensors, str(args.output), metadata=metadata)
    print(f"wrote {args.output} ({args.output.stat().st_size / 1e6:.2f} MB, {len(tensors)} tensors)")


if __name__ == "__main__":
    main()
