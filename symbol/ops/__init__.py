"""Operator tables, one module per family. Importing this package registers every op."""
from __future__ import annotations

import importlib

__all__ = ["FAMILIES"]

FAMILIES = ("elemwise", "nn", "shape", "loss")

for _family in FAMILIES:
    importlib.import_module(f"{__name__}.{_family}")
