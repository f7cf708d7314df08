"""Peak memory of loading the published model as `foley generate` loads it (`engine.models.open_model` on the CPU),
against the size of its weights file; the target is below 1.5x. Published shapes (zero weights: loading does not
look at the values), each way in its own process so that its peak RSS is its own, every weight read once after
loading (safetensors maps the file: a weight nobody has read is not resident yet, and would not be counted).

Usage: python bench/load.py [--with-int8-encoder]   (about 1-2 minutes and 4 GB of temporary disk; with the int8
encoder export, a few minutes more: then the auto row runs the picture encoder on onnxruntime, as generate does)
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = """
import json, sys, time
from engine.models import describe_runtime, load_model, open_model
def high_water():  # VmHWM, this process's own peak (ru_maxrss keeps the parent's across fork and exec)
    line = next(l for l in open("/proc/self/status") if l.startswith("VmHWM:"))
    return int(line.split()[1]) / 2**20  # kB -> GB
base = high_water()
started = time.perf_counter()
name, way = sys.argv[1], sys.argv[2]
if way == "stored":
    components = load_model(name)
else:
    components = open_model(name, "cpu", way)
seconds = time.perf_counter() - started
for module in components.stages.parts().values():
    for tensor in module.state_dict().values():
        tensor.sum()  # read every weight once
print(json.dumps({"seconds": seconds, "runtime": describe_runtime(components), "base_gb": base,
                  "peak_gb": high_water()}))
"""
WAYS = {"stored": "load_model (fp32 as stored, torch encoder)", "fp32": "open_model --precision fp32",
        "auto": "open_model --precision auto (what generate does)"}
TARGET = 1.5


def write_published(folder: Path) -> Path:
    """The published model's tensors, as zeros, in an installed model's layout."""
    import torch
    from safetensors.torch import save_file

    from engine.vta_ldm.config import VTA_LDM
    from engine.vta_ldm.stages import build_modules

    with torch.device("meta"):
        modules = build_modules(VTA_LDM)
    state = {f"{part}.{k}": torch.zeros(v.shape, dtype=v.dtype) for part, m in modules.parts().items()
             for k, v in m.state_dict().items()}
    folder.mkdir(parents=True)
    save_file(state, str(folder / "weights.safetensors"))
    manifest = {"name": VTA_LDM.name, "preset": VTA_LDM.name, "scale_factor": 1.0, "licences": [], "trained": False}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder / "weights.safetensors"


def export_int8_encoder(name: str) -> None:
    from engine.models import encoder_export, load_model
    from engine.vta_ldm.pipeline import export_encoder

    export_encoder(load_model(name).stages, encoder_export(name, "int8"), "int8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--with-int8-encoder", action="store_true",
                        help="export the int8 picture encoder beside the model first (`foley models export-encoder`)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        os.environ["FOLEY_HOME"] = home
        from engine.models import models_dir
        from engine.vta_ldm.config import VTA_LDM

        weights = write_published(models_dir() / VTA_LDM.name)
        if args.with_int8_encoder:
            export_int8_encoder(VTA_LDM.name)
        size = weights.stat().st_size / 2**30
        print(f"{VTA_LDM.name}: weights file {size:.2f} GB; peak RSS after loading and reading every weight once")
        for way, what in WAYS.items():
            run = subprocess.run([sys.executable, "-c", CHILD, VTA_LDM.name, way], capture_output=True, text=True,
                                 check=True, env=os.environ)
            result = json.loads(run.stdout.strip().splitlines()[-1])
            ratio = result["peak_gb"] / size
            verdict = "below" if ratio < TARGET else "ABOVE"
            print(f"  {what:<48} {result['peak_gb']:5.2f} GB = {ratio:.2f}x the weights ({verdict} {TARGET}x), "
                  f"{result['seconds']:.1f} s; imports alone {result['base_gb']:.2f} GB; {result['runtime']}")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parents[1]))
    main()
