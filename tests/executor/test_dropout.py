"""Dropout with a random mask (p > 0), which the op sweep cannot compare with torch.

The mask is not visible, but y / x recovers it wherever x != 0 (always, for randn inputs).
"""
from __future__ import annotations

import torch

import executor  # noqa: F401  (installs simple_bind)
import symbol as sym
from executor.kernels import KERNELS, KernelContext

SHAPE = (64, 64)
P = 0.5


def _bind(p: float = P, mode: str = "training"):
    exe = sym.Dropout(sym.Variable("x"), p=p, mode=mode).simple_bind("cpu", dtype="float64",
                                                                     x=SHAPE)
    exe.arg_dict["x"].copy_(torch.randn(SHAPE, dtype=torch.float64,
                                        generator=torch.Generator().manual_seed(0)))
    return exe


def _mask(exe) -> torch.Tensor:
    return exe.outputs[0] / exe.arg_dict["x"]


def test_dropout_mask_is_zero_or_inverse_keep_probability():
    exe = _bind()
    exe.forward(is_train=True)
    mask = _mask(exe)
    scale = 1 / (1 - P)
    assert torch.all((mask == 0) | torch.isclose(mask, torch.tensor(scale, dtype=mask.dtype)))
    dropped = (mask == 0).double().mean().item()
    assert 0.4 < dropped < 0.6


def test_dropout_gradient_is_out_grad_times_mask():
    exe = _bind()
    exe.forward(is_train=True)
    mask = _mask(exe)
    dy = torch.randn(SHAPE, dtype=torch.float64)
    exe.backward(dy)
    torch.testing.assert_close(exe.grad_dict["x"], dy * mask)


def test_dropout_same_seed_step_and_node_reproduce_the_mask():
    a, b = _bind(), _bind()
    b.state["seed"] = a.state["seed"]
    a.forward(is_train=True)
    b.forward(is_train=True)
    torch.testing.assert_close(a.outputs[0], b.outputs[0], rtol=0, atol=0)


def test_dropout_kernel_replay_draws_the_same_mask():
    # what a recomputed (mirrored) node relies on: same (seed, step, node) -> same mask
    state = {"is_train": True, "step": 3, "seed": 7}
    ctx = KernelContext("drop", {"p": P, "mode": "training"}, node_index=2, state=state)
    x = torch.randn(SHAPE, dtype=torch.float64)
    masks = []
    for _ in range(2):
        y, mask = torch.empty_like(x), torch.empty_like(x)
        KERNELS["Dropout"](ctx, [x], [y, mask])
        masks.append(mask)
    torch.testing.assert_close(masks[0], masks[1], rtol=0, atol=0)


def test_dropout_masks_differ_between_steps():
    exe = _bind()
    exe.forward(is_train=True)
    first = _mask(exe)
    exe.forward(is_train=True)
    assert not torch.equal(first, _mask(exe))


def test_dropout_mode_always_drops_at_inference():
    exe = _bind(mode="always")
    exe.forward(is_train=False)
    assert (_mask(exe) == 0).any()


def test_dropout_p1_drops_everything_without_nan():
    exe = _bind(p=1.0)
    exe.forward(is_train=True)
    assert torch.equal(exe.outputs[0], torch.zeros(SHAPE, dtype=torch.float64))
