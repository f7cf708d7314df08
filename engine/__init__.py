"""Foley Desk engine: video frames in, synchronised foley audio out (VTA-LDM method)."""

__version__ = "0.1.0"
