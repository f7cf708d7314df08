"""Foley Desk engine: video frames in, synchronised foley audio out.

Foundations (`config`, `errors`, `progress`, `video`, `flow`, `metrics`) import nothing above them; model families
(`vta_ldm`) build and load their stages; `models` is the registry of installed models; `core` runs a job whatever
the family; `serving` and `training` sit on top. `pyproject.toml`'s import-linter contracts enforce the order.
"""

__version__ = "0.1.0"
