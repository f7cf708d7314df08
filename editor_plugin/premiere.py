"""Package the Premiere Pro UXP panel: the plugin folder zipped with manifest.json at its root, the .ccx that
Creative Cloud (or the UXP Developer Tool) installs."""

import json
import zipfile
from pathlib import Path

from editor_plugin.errors import ProjectWriteError

PLUGIN = Path(__file__).with_name("premiere_uxp")


def plugin_files() -> list[Path]:
    """Every file the panel needs (its manifest, page, view and logic modules), in a stable order."""
    return sorted(p for p in PLUGIN.rglob("*") if p.is_file() and "__pycache__" not in p.parts)


def build_ccx(out: Path) -> Path:
    """Write the installable .ccx; return its path. A path that cannot be written is refused in one line."""
    if out.suffix.lower() != ".ccx":
        raise ProjectWriteError(f"{out}: a Premiere plugin package ends in .ccx (for example foley_desk.ccx).")
    if out.is_dir() or not out.parent.is_dir():
        raise ProjectWriteError(f"{out}: not a file in an existing folder; give a path such as ~/foley_desk.ccx.")
    json.loads((PLUGIN / "manifest.json").read_text())  # a broken manifest must not ship
    part = out.with_name(f".{out.name}.part")
    try:
        with zipfile.ZipFile(part, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in plugin_files():
                archive.write(path, path.relative_to(PLUGIN).as_posix())
        part.replace(out)
    except OSError as exc:
        part.unlink(missing_ok=True)
        raise ProjectWriteError(f"{out}: cannot write it ({exc.strerror}); choose a folder you can write to.") from None
    return out
