"""Registry-wide op sweep: forward vs torch, gradients vs torch.autograd (float64; on the CPU,
and on CUDA where there is a device)."""
from __future__ import annotations

import importlib

import pytest

from symbol.registry import OPS
from symbol.gradient import gradient

from .harness import check_case

_FAMILIES = ["elemwise", "nn", "shape", "loss"]
CASES = [c for f in _FAMILIES
         for c in getattr(importlib.import_module(f"tests.executor.cases_{f}"), "CASES", [])]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_op_matches_torch(case):
    check_case(case)


@pytest.mark.gpu
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_op_matches_torch_on_cuda(case):
    check_case(case, device="cuda")


def test_sweep_covers_every_op():
    covered: set[str] = set()
    for case in CASES:
        s = case.build()
        wrt = [n for n in s.list_arguments() if n not in case.no_grad]
        covered.update(n.op for n in gradient(s.graph, wrt).graph.nodes)
    missing = sorted(set(OPS) - covered)
    assert not missing, f"ops without a sweep case: {missing}"


def test_every_op_has_a_kernel_and_every_kernel_an_op():
    from executor.kernels import KERNELS
    assert set(OPS) == set(KERNELS)
