"""A guard for PySide6 6.12.0 on CPython 3.11: every void-returning Qt call drops one reference to None."""

import ctypes
import sys

# Measured here: 1,000 QLabel.setText / QWidget.update / QPainter.fillRect calls lower sys.getrefcount(None) by
# exactly 1,000, and None starts with about 5,000 references, so a window redrawing at 33 Hz aborts with "Fatal
# Python error: none_dealloc: deallocating None" within minutes. CPython 3.12 made None immortal (PEP 683), which
# hides the bug; on older interpreters give None a reference count no session can use up.
IMMORTAL_REFCOUNT = 1 << 60


def keep_none_alive() -> None:
    """On CPython before 3.12, raise None's reference count so PySide's lost references never reach zero."""
    if sys.version_info < (3, 12) and sys.getrefcount(None) < IMMORTAL_REFCOUNT:
        ctypes.c_ssize_t.from_address(id(None)).value += IMMORTAL_REFCOUNT
