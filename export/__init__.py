"""Stems, loudness and muxing (filled by the timing-and-delivery issue)."""
