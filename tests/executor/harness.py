"""Op-sweep harness: run one symbol forward and backward in float64 and compare with torch.

A :class:`Case` gives a symbol, its input shapes and a torch reference of the same computation;
:func:`check_case` binds the symbol on CPU in float64, compares every output with the reference
and every gradient with ``torch.autograd`` (relative tolerance 1e-6).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import torch

import executor  # noqa: F401  (installs simple_bind)
from executor import initialize
from symbol import Symbol

RTOL, ATOL = 1e-6, 1e-9


@dataclass
class Case:
    """One op-sweep row.

    Attributes:
        id: test id.
        build: returns the symbol (built from ``sym.Variable`` inputs).
        shapes: input shapes by name (weights may be left to shape inference).
        reference: ``f(**tensors) -> output or tuple of outputs`` in torch (autograd-able).
        loss: for loss heads, ``f(**tensors) -> scalar`` whose autograd gradient is the op's
            gradient; None means head gradients are random and outputs are differentiated.
        inputs: overrides for generated inputs (``{'label': tensor}``).
        no_grad: argument names with grad_req 'null' (labels).
        aux_reference: ``f(**tensors) -> {aux name: expected tensor after the step}``.
        is_train: forward mode.
    """

    id: str
    build: Callable[[], Symbol]
    shapes: dict[str, tuple[int, ...]]
    reference: Callable[..., Any]
    loss: Callable[..., torch.Tensor] | None = None
    inputs: dict[str, torch.Tensor] = field(default_factory=dict)
    no_grad: tuple[str, ...] = ()
    aux_reference: Callable[..., dict[str, torch.Tensor]] | None = None
    is_train: bool = True


def _outputs(value: Any) -> list[torch.Tensor]:
    return list(value) if isinstance(value, (tuple, list)) else [value]


def check_case(case: Case, seed: int = 0, device: str = "cpu") -> Any:
    """Run ``case`` on ``device``; assert forward, gradients and aux states match the torch
    reference (always computed on the CPU). Returns the executor."""
    gen = torch.Generator().manual_seed(seed)
    sym = case.build()
    reqs = {n: ("null" if n in case.no_grad else "write") for n in sym.list_arguments()}
    exe = sym.simple_bind(device, grad_req=reqs, dtype="float64", **case.shapes)
    for name, t in {**exe.arg_dict, **exe.aux_dict}.items():
        value = case.inputs.get(name)
        if value is None:
            value = torch.randn(t.shape, dtype=t.dtype, generator=gen)
            if name.endswith("_moving_var"):
                value = value.abs() + 0.5
        t.copy_(value)
    ref_in = {n: t.detach().cpu().clone().requires_grad_(n in exe.grad_dict)
              for n, t in exe.arg_dict.items()}
    ref_aux = {n: t.detach().cpu().clone() for n, t in exe.aux_dict.items()}
    outs = [o.cpu() for o in exe.forward(is_train=case.is_train)]
    expected = _outputs(case.reference(**ref_in, **ref_aux))
    assert len(outs) == len(expected), "output count differs from the reference"
    for got, want in zip(outs, expected, strict=True):
        torch.testing.assert_close(got, want.detach().to(got.dtype), rtol=RTOL, atol=ATOL)
    if case.aux_reference is not None:
        for name, want in case.aux_reference(**ref_in, **ref_aux).items():
            torch.testing.assert_close(exe.aux_dict[name].cpu(), want, rtol=RTOL, atol=ATOL)
    if not case.is_train or not exe.grad_dict:
        return exe
    wrt = [n for n in exe.grad_dict]
    if case.loss is not None:
        exe.backward()
        grads = torch.autograd.grad(case.loss(**ref_in, **ref_aux), [ref_in[n] for n in wrt],
                                    allow_unused=True)
    else:
        heads = [torch.randn(o.shape, dtype=o.dtype, generator=gen) for o in outs]
        exe.backward([h.to(exe.device) for h in heads])
        pairs = [(w, h) for w, h in zip(expected, heads) if w.requires_grad]
        grads = torch.autograd.grad([w for w, _ in pairs], [ref_in[n] for n in wrt],
                                    [h for _, h in pairs], allow_unused=True)
    for name, g in zip(wrt, grads, strict=True):
        want = torch.zeros_like(ref_in[name]) if g is None else g
        torch.testing.assert_close(exe.grad_dict[name].cpu(), want, rtol=RTOL, atol=ATOL,
                                   msg=lambda m, n=name: f"gradient of '{n}': {m}")
    return exe


def bind_filled(net: Symbol, shapes: dict[str, tuple[int, ...]], ctx: str = "cpu", *,
                init_seed: int, data_seed: int, classes: int = 10, **bind_args: Any) -> Any:
    """Bind ``net`` (no gradients for the inputs in ``shapes`` and for labels), initialise its
    parameters (seed ``init_seed``) and fill inputs and labels from a CPU generator (seed
    ``data_seed``), so the values are the same whatever the device."""
    reqs = {n: "null" if n in shapes or n.endswith("label") else "write"
            for n in net.list_arguments()}
    exe = net.simple_bind(ctx, grad_req=reqs, **bind_args, **shapes)
    initialize(exe, seed=init_seed)
    gen = torch.Generator().manual_seed(data_seed)
    for n, t in exe.arg_dict.items():
        if n in shapes:
            t.copy_(torch.randn(t.shape, generator=gen, dtype=t.dtype))
        elif n.endswith("label"):
            t.copy_(torch.randint(0, classes, t.shape, generator=gen))
    return exe
