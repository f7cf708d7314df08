"""Host bridges for video editors (filled by the editor-hosts issue)."""
