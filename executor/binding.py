"""``simple_bind`` and ``bind``: turn a Symbol plus shapes or arrays into an Executor."""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch

from symbol import Symbol

from optim.flags import read_flags
from optim.pipeline import resolve_strategy
from optim.search import plan_training

from .executor import GRAD_REQS, Executor, ExecutorError, torch_dtype

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
                budget: str | int | None = None, **shapes: Any) -> Executor:
    """Allocate arguments, gradients and auxiliary states from input shapes and bind.

    Args:
        symbol: the network.
        ctx: device (see :func:`resolve_device`).
        grad_req: ``'write'``, ``'add'``, ``'null'``, or a per-argument dict/list.
        type_dict: argument name -> dtype name; ``dtype`` sets the default (``'float32'``).
        strategy: memory strategy ``none``/``inplace``/``sharing`` (default: from the
            environment, MXNet's names; ``sharing`` when unset).
        mirror: recompute strategy ``none``/``drop-cheap``/``drop-cheap-keep-bn``/
            ``sublinear``/``recursive`` (default: ``SUBLINEAR_MIRROR`` or
            ``MXNET_BACKWARD_DO_MIRROR``, else none).
        budget: memory budget (``'3GB'`` or bytes; default ``SUBLINEAR_MEMORY_BUDGET``): the
            cheapest mirror plan whose planned bytes fit.
        **shapes: input shapes by name (``data=(32, 3, 224, 224)``).

    Raises:
        ShapeError: inconsistent shapes. ExecutorError: a shape that cannot be inferred.
        FlagError, MirrorError: a bad setting or an impossible budget, before anything is
            allocated.
    """
    flags = read_flags()
    resolve_strategy(strategy, flags)
    device = resolve_device(ctx)
    arg_shapes, _, aux_shapes = symbol.infer_shape_partial(**shapes)
    args, aux = symbol.list_arguments(), symbol.list_auxiliary_states()
    missing = [n for n, s in zip(args + aux, arg_shapes + aux_shapes) if s is None]
    if missing:
        raise ExecutorError(f"simple_bind: cannot infer the shape of {', '.join(missing)}; "
                            "give it as a keyword argument, e.g. data=(32, 100)")
    default = dtype or "float32"
    types = dict(type_dict or {})
    reqs = _grad_reqs(grad_req, args)
    known = dict(zip(args + aux, arg_shapes + aux_shapes))
    planned = plan_training(symbol.graph, known, grad_req=reqs, aux=aux, strategy=strategy,
                            mirror=mirror, budget=budget, flags=flags, default_dtype=default,
                            dtypes={n: types.get(n, default) for n in args + aux})

    def alloc(name: str, shape: tuple[int, ...], fill: float = 0.0) -> torch.Tensor:
        return torch.full(shape, fill, dtype=torch_dtype(types.get(name, default)),
                          device=device)

    arg_dict = {n: alloc(n, s) for n, s in zip(args, arg_shapes, strict=True)}
    grad_dict = {n: alloc(n, arg_dict[n].shape) for n in args if reqs[n] != "null"}
    aux_dict = {n: alloc(n, s, 1.0 if n.endswith("_var") else 0.0)
                for n, s in zip(aux, aux_shapes, strict=True)}
    return Executor(symbol, device, arg_dict, grad_dict, aux_dict, reqs, flags=flags,
                    planned=planned)


def _named(what: str, arrays: Any, names: Sequence[str]) -> dict[str, torch.Tensor]:
    if arrays is None:
        return {}
    if isinstance(arrays, Mapping):
        unknown = set(arrays) - set(names)
        if unknown:
            raise ExecutorError(f"bind: {what} names unknown inputs: {', '.join(sorted(unknown))}")
        return {k: torch.as_tensor(v) for k, v in arrays.items()}
    arrays = list(arrays)
    if len(arrays) != len(names):
        raise ExecutorError(f"bind: {len(arrays)} {what} for {len(names)} names "
                            f"({', '.join(names)})")
    return {k: torch.as_tensor(v) for k, v in zip(names, arrays)}


def bind(symbol: Symbol, ctx: Any = "cpu", args: Any = None, args_grad: Any = None,
         grad_req: Any = "write", aux_states: Any = None, strategy: str | None = None,
         mirror: str | None = None, budget: str | int | None = None) -> Executor:
    """Bind to caller-given tensors (dicts by name, or lists in ``list_arguments`` order).

    Gradient tensors missing from ``args_grad`` are allocated for arguments whose grad_req is
    not null. ``strategy``, ``mirror`` and ``budget`` as in :func:`simple_bind`.
    """
    flags = read_flags()
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
    reqs = _grad_reqs(grad_req, names)
    grad_dict = {k: v for k, v in _named("args_grad", args_grad, names).items()
                 if reqs[k] != "null"}
    for n in names:
        if reqs[n] != "null" and n not in grad_dict:
            grad_dict[n] = torch.zeros_like(arg_dict[n])
    return Executor(symbol, device, arg_dict, grad_dict, aux_dict, reqs, strategy=strategy,
                    mirror=mirror, budget=budget, flags=flags)
