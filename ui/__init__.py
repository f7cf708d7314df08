"""PySide6 panel (filled by the Qt panel issue)."""
