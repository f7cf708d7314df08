"""Safe project writes: refuse read-only files, back up the original, write atomically keeping the file mode."""

import logging
import os
import shutil
import stat
import time
from pathlib import Path

from editor_plugin.errors import ProjectWriteError

logger = logging.getLogger(__name__)


def check_writable(path: Path) -> None:
    """Refuse before any work: os.replace would silently swap a read-only file for a writable one."""
    if not path.is_file():
        raise ProjectWriteError(f"{path} does not exist; save the project in your editor first.")
    # the mode bit as well as access(): root may write anything, but a file marked read-only means "keep"
    if not os.access(path, os.W_OK) or not path.stat().st_mode & stat.S_IWUSR:
        raise ProjectWriteError(f"{path} is read-only; make it writable (or save a copy) and try again. "
                                "Nothing was changed.")
    if not os.access(path.parent, os.W_OK):
        raise ProjectWriteError(f"The folder {path.parent} is read-only, so the project cannot be replaced safely. "
                                "Save the project somewhere writable and try again. Nothing was changed.")


def backup(path: Path) -> Path:
    """Copy the project next to itself as `<name>.foley-backup-<UTC time>` (kept; undo restores from it)."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    target = path.with_name(f"{path.name}.foley-backup-{stamp}")
    counter = 1
    while target.exists():
        counter += 1
        target = path.with_name(f"{path.name}.foley-backup-{stamp}-{counter}")
    shutil.copy2(path, target)
    return target


def replace_project(path: Path, data: bytes) -> Path:
    """Back up `path`, then write `data` in its place atomically with the original's permissions."""
    check_writable(path)
    saved = backup(path)
    mode = stat.S_IMODE(path.stat().st_mode)
    tmp = path.with_name(f".{path.name}.foley-part")
    try:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    logger.info("wrote %s (backup %s)", path, saved)
    return saved


def restore(path: Path, saved: Path) -> None:
    """Undo a write: put the backup back in place atomically."""
    tmp = path.with_name(f".{path.name}.foley-restore")
    shutil.copy2(saved, tmp)
    os.replace(tmp, path)


def editors_with_file_open(path: Path, programs: tuple[str, ...]) -> list[str]:
    """Names of running `programs` whose command line names `path` (Linux /proc; empty elsewhere)."""
    found = []
    proc = Path("/proc")
    if not proc.is_dir():
        return found
    wanted = {str(path), str(path.resolve()), path.name}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        words = [word.decode(errors="replace") for word in argv if word]
        if words and Path(words[0]).name in programs and any(Path(w).name in wanted or w in wanted for w in words[1:]):
            found.append(f"{Path(words[0]).name} (pid {entry.name})")
    return found
