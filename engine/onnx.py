"""Encoders exported to ONNX, and the onnxruntime sessions that run them on the best provider that really starts.

A family's picture encoders are exported once (`foley models export-encoder`) at fp32, fp16 (GPUs) or int8 (dynamic
weight quantisation, for CPUs) with a dynamic leading axis, and run in place of their torch modules."""

import copy
import logging
import shutil
import tempfile
import warnings
from pathlib import Path

import torch
from torch import nn

logger = logging.getLogger(__name__)

PRECISIONS = ("fp32", "fp16", "int8")
PROVIDER_ORDER = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
PROTOBUF_LIMIT = 2**31 - 1  # a graph whose weights are larger keeps them in a file beside it (external data)


def start_session(path: Path, providers: list[str] | None = None):
    """An onnxruntime session of `path` on the first of `providers` (default: TensorRT, CUDA, CPU) that starts.
    onnxruntime-gpu lists CUDA and TensorRT even on a machine without a GPU, so what started is read back from the
    session and a fallback is logged as a warning."""
    import onnxruntime  # optional extra: `pip install foley-desk[onnx]` (or [gpu])

    available = onnxruntime.get_available_providers()
    wanted = [p for p in providers or PROVIDER_ORDER if p in available]
    options = {"TensorrtExecutionProvider": {"trt_fp16_enable": True, "trt_engine_cache_enable": True,
                                             "trt_engine_cache_path": str(path.parent / "trt-cache")}}
    session = onnxruntime.InferenceSession(str(path), providers=[(p, options.get(p, {})) for p in wanted])
    started = session.get_providers()
    if wanted and started[0] != wanted[0]:
        logger.warning("onnxruntime could not start %s; running %s on %s", wanted[0], path.name, started[0])
    return session


def export(module: nn.Module, examples: dict[str, torch.Tensor], outputs: list[str], path: Path,
           precision: str = "fp32") -> Path:
    """Write `module` (called with `examples` in order) as ONNX, every input and output dynamic on axis 0: fp32,
    fp16 (weights and activations) or int8 (the fp32 graph with its weights quantised, activations in fp32). A
    graph over protobuf's 2 GB (MMAudio's CLIP ViT-H in fp32) keeps its weights in one `FILE.onnx.data` beside it."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision '{precision}' is not one of {', '.join(PRECISIONS)}.")
    path.parent.mkdir(parents=True, exist_ok=True)
    module = copy.deepcopy(module).eval()
    inputs = tuple(examples.values())
    if precision == "fp16":
        module, inputs = module.half(), tuple(e.half() for e in inputs)
    large = sum(p.numel() * p.element_size() for p in module.parameters()) > PROTOBUF_LIMIT
    axes = {name: {0: "batch"} for name in [*examples, *outputs]}
    with tempfile.TemporaryDirectory(dir=path.parent) as scratch:  # a large export scatters its tensors in files
        graph = Path(scratch) / "graph.onnx"
        with torch.no_grad(), warnings.catch_warnings():
            # the tracer warns at every Python-side shape read; the exports are checked against torch at several sizes
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            torch.onnx.export(module, inputs, str(graph), input_names=list(examples), output_names=outputs,
                              dynamic_axes=axes, opset_version=17, dynamo=False)
        if precision == "int8":
            from onnxruntime.quantization import QuantType, quantize_dynamic

            # 7-bit weights: on x86 CPUs without VNNI (AVX2 only) u8 x s8 products saturate at 8 bits
            quantize_dynamic(str(graph), str(path), weight_type=QuantType.QInt8, use_external_data_format=large,
                             reduce_range=True)
        elif large:
            import onnx  # optional extra, as onnxruntime

            onnx.save_model(onnx.load(str(graph)), str(path), save_as_external_data=True,
                            all_tensors_to_one_file=True, location=f"{path.name}.data")
        else:
            shutil.move(graph, path)
    return path
