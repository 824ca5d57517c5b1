"""``simple_bind`` and ``bind``: turn a Symbol plus shapes or arrays into an Executor."""
from __future__ import annotations

import difflib
from dataclasses import replace
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from symbol import Symbol, SymbolError
from symbol.infer_shape import check_input_types, infer_type

from optim.flags import PlannerFlags, read_flags
from optim.pipeline import NetworkPlan, owned_gradients, resolve_strategy
from optim.search import plan_training

from .executor import (GRAD_REQS, SUPPORTED_DTYPES, Executor, ExecutorError, dtype_name,
                       kind_of, torch_dtype)

__all__ = ["simple_bind", "bind", "resolve_device"]


def resolve_device(ctx: Any) -> torch.device:
    """``'cpu'``, ``'cuda'``, ``'cuda:1'``, ``'gpu'`` (MXNet), ``'auto'`` or a torch.device."""
    if isinstance(ctx, torch.device):
        return ctx
    name = str(ctx).strip().lower()
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    name = name.replace("gpu", "cuda")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise ExecutorError(f"unknown device '{ctx}' (use cpu, cuda, cuda:N or auto)") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ExecutorError(f"device '{ctx}' requested but CUDA is not available")
    return dev


def _grad_reqs(grad_req: Any, names: Sequence[str]) -> dict[str, str]:
    if isinstance(grad_req, str):
        reqs = {n: grad_req for n in names}
    elif isinstance(grad_req, Mapping):
        unknown = set(grad_req) - set(names)
        if unknown:
            raise ExecutorError(f"grad_req names unknown arguments: {', '.join(sorted(unknown))}")
        reqs = {n: grad_req.get(n, "null") for n in names}
    else:
        reqs = dict(zip(names, grad_req, strict=True))
    for n, r in reqs.items():
        if r not in GRAD_REQS:
            raise ExecutorError(f"grad_req for '{n}' is {r!r}; expected one of "
                                f"{', '.join(GRAD_REQS)}")
    return reqs


def simple_bind(symbol: Symbol, ctx: Any = "cpu", grad_req: Any = "write",
                type_dict: Mapping[str, str] | None = None, dtype: str | None = None,
                strategy: str | None = None, mirror: str | None = None,
                budget: str | int | None = None, budget_scope: str | None = None,
                update_in_backward: bool | None = None, **shapes: Any) -> Executor:
    """Allocate arguments, gradients and auxiliary states from input shapes and bind.

    Args:
        symbol: the network.
        ctx: device (see :func:`resolve_device`).
        grad_req: ``'write'``, ``'add'``, ``'null'``, or a per-argument dict/list.
        type_dict: argument name -> dtype (a name such as ``'float16'``, a numpy or torch
            dtype); ``dtype`` sets the default (``'float32'``). The inputs of one operator
            must have one dtype (the labels of loss ops may differ), a floating one.
        strategy: memory strategy ``none``/``inplace``/``sharing`` (default: from the
            environment, MXNet's names; ``sharing`` when unset).
        mirror: recompute strategy ``none``/``drop-cheap``/``drop-cheap-keep-bn``/
            ``sublinear``/``recursive``/``optimal`` (default: ``SUBLINEAR_MIRROR`` or
            ``MXNET_BACKWARD_DO_MIRROR``, else none).
        budget: memory budget (``'3GiB'`` or bytes; default ``SUBLINEAR_MEMORY_BUDGET``): the
            plan with the least recomputation that fits (``optimal``; with another ``mirror``,
            the cheapest fixed strategy that fits).
        budget_scope: what the budget counts: ``'step'`` (default, or
            ``SUBLINEAR_BUDGET_SCOPE``): the whole step, parameters, their gradients, inputs,
            auxiliary states and operator workspace included; ``'activations'``: the planned
            activations and intermediate gradients only.
        update_in_backward: the optimizer inside the backward pass (default
            ``SUBLINEAR_UPDATE_IN_BACKWARD``): every ``write`` gradient is a short-lived
            planned entry, valid only inside a gradient-ready hook
            (``Executor.on_gradient_ready``), which must apply the update there (the
            ``train`` command does); no gradient array is allocated for it.
        **shapes: input shapes by name (``data=(32, 3, 224, 224)``).

    Raises:
        ShapeError: inconsistent shapes. SymbolError: a shape that is not a tuple of positive
            integers. ExecutorError: a shape that cannot be inferred, an unknown dtype or
            type_dict name, operator inputs of different dtypes.
        FlagError, MirrorError: a bad setting or an impossible budget.
        All before anything is allocated.
    """
    flags = _with_update(read_flags(), update_in_backward)
    resolve_strategy(strategy, flags)
    device = resolve_device(ctx)
    arg_shapes, _, aux_shapes = symbol.infer_shape_partial(**shapes)
    args, aux = symbol.list_arguments(), symbol.list_auxiliary_states()
    missing = [n for n, s in zip(args + aux, arg_shapes + aux_shapes) if s is None]
    if missing:
        raise ExecutorError(f"simple_bind: cannot infer the shape of {', '.join(missing)}; "
                            "give it as a keyword argument, e.g. data=(32, 100)")
    default = _dtype_arg(dtype or "float32", "simple_bind: dtype")
    types = _type_dict(type_dict, args + aux)
    dtypes = {n: types.get(n, default) for n in args + aux}
    _check_dtypes(symbol, dtypes, "simple_bind", "give every argument the same dtype: "
                  "simple_bind(..., dtype=...) sets all of them, type_dict=... single ones")
    reqs = _grad_reqs(grad_req, args)
    known = dict(zip(args + aux, arg_shapes + aux_shapes))
    planned = plan_training(symbol.graph, known, grad_req=reqs, aux=aux, strategy=strategy,
                            mirror=mirror, budget=budget, budget_scope=budget_scope,
                            flags=flags, default_dtype=default,
                            dtypes=dtypes)

    def alloc(name: str, shape: tuple[int, ...], fill: float = 0.0) -> torch.Tensor:
        return torch.full(shape, fill, dtype=torch_dtype(dtypes[name]), device=device)

    arg_dict = {n: alloc(n, s) for n, s in zip(args, arg_shapes, strict=True)}
    released = _released(planned[1], reqs)
    grad_dict = {n: alloc(n, arg_dict[n].shape) for n in args
                 if reqs[n] != "null" and n not in released}
    aux_dict = {n: alloc(n, s, 1.0 if n.endswith("_var") else 0.0)
                for n, s in zip(aux, aux_shapes, strict=True)}
    return Executor(symbol, device, arg_dict, grad_dict, aux_dict, reqs, flags=flags,
                    planned=planned)


def _with_update(flags: PlannerFlags, update_in_backward: bool | None) -> PlannerFlags:
    if update_in_backward is None:
        return flags
    if not isinstance(update_in_backward, bool):
        raise ExecutorError(f"update_in_backward must be True or False, got "
                            f"{update_in_backward!r}")
    return replace(flags, update_in_backward=update_in_backward)


def _released(net: NetworkPlan, reqs: Mapping[str, str]) -> set[str]:
    """Arguments whose gradient the plan keeps in its arena (update inside backward)."""
    return {n for e, n in owned_gradients(net.joint, reqs).items() if e not in net.plan.external}


def _dtype_arg(value: Any, what: str) -> str:
    """The dtype name of ``value`` (a name, a numpy or torch dtype), or ExecutorError."""
    name = value if isinstance(value, str) else None
    if isinstance(value, torch.dtype):
        name = str(value).replace("torch.", "")
    elif value is not None:  # np.dtype(None) would be float64
        try:
            name = np.dtype(value).name
        except TypeError:
            pass
    if name is None:
        raise ExecutorError(f"{what}: {value!r} is not a dtype")
    try:
        torch_dtype(name)
    except ExecutorError as e:
        raise ExecutorError(f"{what}: {e}") from None
    return name


def _type_dict(type_dict: Mapping[str, Any] | None, names: Sequence[str]) -> dict[str, str]:
    """``type_dict`` checked: known argument names, supported dtypes (as names)."""
    if type_dict is None:
        return {}
    if not isinstance(type_dict, Mapping):
        raise ExecutorError(f"simple_bind: type_dict must be a dict name -> dtype, got "
                            f"{kind_of(type_dict)}")
    for k in type_dict:
        if k not in names:
            hint = difflib.get_close_matches(str(k), names, n=1)
            raise ExecutorError(f"simple_bind: type_dict: '{k}' is not an argument or auxiliary "
                                "state" + (f"; did you mean '{hint[0]}'?" if hint else ""))
    return {k: _dtype_arg(v, f"simple_bind: type_dict['{k}']") for k, v in type_dict.items()}


def _check_dtypes(symbol: Symbol, dtypes: Mapping[str, str], who: str, hint: str) -> None:
    """Operator inputs of different or non-float dtypes -> ExecutorError, before allocating."""
    try:
        check_input_types(symbol.graph, infer_type(symbol.graph, dtypes), hint=hint)
    except SymbolError as e:
        raise ExecutorError(f"{who}: {e}") from None


def _array(what: str, name: str, value: Any) -> torch.Tensor:
    """A caller-given array for ``bind``: a torch tensor, or a numeric numpy array (shared)."""
    if isinstance(value, np.ndarray) and value.dtype.kind in "biuf":
        try:
            value = torch.from_numpy(value)
        except (TypeError, ValueError):
            raise ExecutorError(f"bind: {what}['{name}']: torch cannot share a numpy array of "
                                f"dtype {value.dtype} with these strides; pass "
                                "np.ascontiguousarray(x) or a torch tensor") from None
    if not isinstance(value, torch.Tensor):
        got = kind_of(value)
        if isinstance(value, np.ndarray):
            got += f" of dtype {value.dtype}"
        raise ExecutorError(f"bind: {what}['{name}'] must be a torch tensor or a numeric numpy "
                            f"array, got {got}")
    try:
        dtype_name(value.dtype)
    except ExecutorError:
        raise ExecutorError(f"bind: {what}['{name}'] has dtype "
                            f"{str(value.dtype).replace('torch.', '')}, which the executor does "
                            f"not run (supported: {', '.join(SUPPORTED_DTYPES)})") from None
    return value


def _named(what: str, arrays: Any, names: Sequence[str]) -> dict[str, torch.Tensor]:
    if arrays is None:
        return {}
    if isinstance(arrays, Mapping):
        unknown = set(arrays) - set(names)
        if unknown:
            raise ExecutorError(f"bind: {what} names unknown inputs: {', '.join(sorted(unknown))}")
        return {k: _array(what, k, v) for k, v in arrays.items()}
    if not isinstance(arrays, (list, tuple)):
        raise ExecutorError(f"bind: {what} must be a dict name -> array or a list of arrays in "
                            f"the order {', '.join(names)}; got {kind_of(arrays)}")
    if len(arrays) != len(names):
        raise ExecutorError(f"bind: {len(arrays)} {what} for {len(names)} names "
                            f"({', '.join(names)})")
    return {k: _array(what, k, v) for k, v in zip(names, arrays)}


def _check_grads(grads: Mapping[str, torch.Tensor], args: Mapping[str, torch.Tensor]) -> None:
    """Gradient arrays must match their argument's shape, dtype and device."""
    for k, g in grads.items():
        a = args[k]
        if g.shape != a.shape or g.dtype != a.dtype or g.device != a.device:
            raise ExecutorError(f"bind: args_grad['{k}'] must match its argument: shape "
                                f"{tuple(a.shape)}, {dtype_name(a.dtype)} on {a.device}; got "
                                f"shape {tuple(g.shape)}, {dtype_name(g.dtype)} on {g.device}")


def bind(symbol: Symbol, ctx: Any = "cpu", args: Any = None, args_grad: Any = None,
         grad_req: Any = "write", aux_states: Any = None, strategy: str | None = None,
         mirror: str | None = None, budget: str | int | None = None,
         budget_scope: str | None = None, update_in_backward: bool | None = None) -> Executor:
    """Bind to caller-given tensors (dicts by name, or lists in ``list_arguments`` order).

    Arrays are torch tensors on the executor's device, or numeric numpy arrays (shared, CPU
    only). Gradient tensors missing from ``args_grad`` are allocated for arguments whose
    grad_req is not null; given ones must match their argument's shape, dtype and device.
    ``strategy``, ``mirror``, ``budget``, ``budget_scope`` and ``update_in_backward`` as in
    :func:`simple_bind` (with ``update_in_backward``, ``grad_dict`` holds the plan's views
    instead of the given gradient arrays for the gradients the update consumes).

    Raises:
        ExecutorError: a missing or unknown name, an array that is not a tensor or of an
            unsupported dtype, on another device, operator inputs of different dtypes.
        ShapeError: inconsistent shapes. All before the executor allocates anything.
    """
    flags = _with_update(read_flags(), update_in_backward)
    resolve_strategy(strategy, flags)
    device = resolve_device(ctx)
    names, aux_names = symbol.list_arguments(), symbol.list_auxiliary_states()
    arg_dict = _named("args", args, names)
    missing = [n for n in names if n not in arg_dict]
    if missing:
        raise ExecutorError(f"bind: no array for argument(s) {', '.join(missing)}")
    aux_dict = _named("aux_states", aux_states, aux_names)
    missing = [n for n in aux_names if n not in aux_dict]
    if missing:
        raise ExecutorError(f"bind: no array for auxiliary state(s) {', '.join(missing)}")
    for d in (arg_dict, aux_dict):
        for k, v in d.items():
            if v.device != device:
                raise ExecutorError(f"bind: '{k}' is on {v.device}, the executor on {device}")
    _check_dtypes(symbol, {k: dtype_name(v.dtype) for k, v in {**arg_dict, **aux_dict}.items()},
                  "bind", "convert the arrays to one dtype")
    reqs = _grad_reqs(grad_req, names)
    grad_dict = {k: v for k, v in _named("args_grad", args_grad, names).items()
                 if reqs[k] != "null"}
    _check_grads(grad_dict, arg_dict)
    for n in names:
        if reqs[n] != "null" and n not in grad_dict:
            grad_dict[n] = torch.zeros_like(arg_dict[n])
    return Executor(symbol, device, arg_dict, grad_dict, aux_dict, reqs, strategy=strategy,
                    mirror=mirror, budget=budget, budget_scope=budget_scope, flags=flags)
