"""sublinear's graph passes: memory planning and mirroring on the joint graph.

Depends only on :mod:`symbol` and numpy. The passes (liveness, in-place, sharing, co-share,
mirror planning) read op properties from the registry and return plans; the executor
realises them.
"""
from __future__ import annotations

__all__: list[str] = []
