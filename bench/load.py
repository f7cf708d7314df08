"""Model loading on the published shapes: random init then overwrite (the old way, and what the reference code
does) vs building on the meta device and assigning the loaded tensors. Each load runs in its own process so
peak RSS is its own. Usage: python bench/load.py   (about 2 minutes, 2.4 GB of temporary disk)"""

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = """
import json, resource, sys, time
import torch
from safetensors.torch import load_file
from engine.models import load_model
from engine.vta_ldm.stages import build_modules
from engine.vta_ldm.config import VTA_LDM
started = time.perf_counter()
if sys.argv[1] == "meta":
    load_model("vta-ldm-clip4clip-v-large")
else:
    modules = build_modules(VTA_LDM)
    tensors = load_file(sys.argv[2])
    for part, module in modules.parts().items():
        module.load_state_dict({k[len(part) + 1:]: v for k, v in tensors.items() if k.startswith(part + ".")})
print(json.dumps({"seconds": time.perf_counter() - started,
                  "peak_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / 1024}))
"""


def main() -> None:
    with tempfile.TemporaryDirectory() as home:
        os.environ["FOLEY_HOME"] = home
        from safetensors.torch import save_file

        from engine.models import models_dir
        from engine.vta_ldm.config import VTA_LDM
        from engine.vta_ldm.stages import build_modules

        folder = models_dir() / VTA_LDM.name
        folder.mkdir(parents=True)
        modules = build_modules(VTA_LDM)
        state = {f"{part}.{k}": v.contiguous() for part, m in modules.parts().items() for k, v in m.state_dict().items()}
        save_file(state, str(folder / "weights.safetensors"))
        del modules, state
        manifest = {"name": VTA_LDM.name, "preset": VTA_LDM.name, "scale_factor": 1.0, "licences": [], "trained": False}
        (folder / "manifest.json").write_text(json.dumps(manifest))
        results = {}
        for way in ("random-init", "meta"):
            run = subprocess.run([sys.executable, "-c", CHILD, way, str(folder / "weights.safetensors")],
                                 capture_output=True, text=True, check=True, env=os.environ)
            results[way] = json.loads(run.stdout.strip().splitlines()[-1])
    old, new = results["random-init"], results["meta"]
    print(f"{VTA_LDM.name}: random init + load {old['seconds']:.1f} s, peak {old['peak_gb']:.2f} GB; "
          f"meta + assign {new['seconds']:.1f} s, peak {new['peak_gb']:.2f} GB "
          f"({old['seconds'] / new['seconds']:.1f}x faster, {old['peak_gb'] / new['peak_gb']:.2f}x less memory)")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parents[1]))
    main()
