"""Checkpoints: a network's parameters, its optimizer and its random state in one file.

A checkpoint is one safetensors file. Tensors use MXNet's parameter names, so
:func:`load_params` reads like MXNet's ``load_checkpoint``:

* ``arg:<name>``: a parameter, an argument that is trained (see :func:`parameter_names`);
* ``aux:<name>``: an auxiliary state (batch-norm moving statistics);
* ``opt:<name>:<key>``: a tensor of the optimizer's state for parameter ``<name>``
  (``momentum_buffer``; ``exp_avg``, ``exp_avg_sq``, ``step``), the optimizer's parameter
  indices mapped to argument names;
* ``rng:torch``: torch's CPU generator state (uint8); ``rng:cuda:<i>``: CUDA generator states,
  when CUDA was in use.

The metadata (strings, JSON values) holds ``format`` and ``version``; ``network``: the saved
names with shapes and dtypes (``{"arg": {name: {"shape", "dtype"}}, "aux": ..., "inputs":
...}``), what a resume is checked against; ``optimizer``: its class, ``param_groups`` (hyper-
parameters, ``params`` as argument names) and non-tensor state; ``state``: the trainer's dict
(epoch, step, schedule, seed); ``rng``: a numpy generator's state and the executor's dropout
seed and step; ``sha256``: a digest of every tensor, so a damaged file is an error, not
silently wrong numbers.

Writing is atomic: the file is written under a temporary name in the same folder, flushed to
disk (fsync) and renamed over the old one (``os.replace``), so a crash while saving leaves the
last good checkpoint as it was. An exception while writing removes the temporary file; a
process killed outright can leave one behind (``.NAME.<pid>-<hex>.tmp``), never a damaged
``NAME``.

Every failure a user can cause is a :class:`CheckpointError` (a
:class:`~symbol.errors.SymbolError`): a missing, truncated or foreign file, a checkpoint of
another network (all differences in one message), state that is not JSON.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Iterable, Mapping, Sequence

import numpy as np
import safetensors.torch
import torch
from safetensors import SafetensorError, safe_open

from symbol.errors import SymbolError

from ..arrays import label_rules
from ..executor import Executor

__all__ = ["CheckpointError", "Checkpoint", "RngState", "save_checkpoint", "load_checkpoint",
           "restore", "load_params", "parameter_names", "FORMAT", "VERSION"]

log = logging.getLogger(__name__)

#: The ``format`` metadata of a checkpoint, and the newest ``version`` this code reads.
FORMAT = "sublinear-checkpoint"
VERSION = 1
#: Argument names the initializer treats as inputs (``executor.initialize``'s rule).
_INPUT_NAMES = ("data", "label")
_INPUT_SUFFIXES = ("_data", "_label", "_head_grad")
_SHOWN = 5  # differences listed by name in one error
_CHUNK = 1 << 22  # bytes per write call


class CheckpointError(SymbolError):
    """A checkpoint that cannot be written, read or restored."""


@dataclass(frozen=True)
class RngState:
    """Random state saved with a checkpoint.

    Attributes:
        cpu: torch's CPU generator state (``torch.get_rng_state()``).
        cuda: the CUDA generators' states, one per device (empty when CUDA was not in use).
        numpy: a numpy bit generator's ``state`` dict, if one was given.
        executor: the executor's ``seed`` and ``step``, which key its dropout masks.
    """

    cpu: torch.Tensor | None = None
    cuda: list[torch.Tensor] = field(default_factory=list)
    numpy: dict[str, Any] | None = None
    executor: dict[str, int] | None = None


@dataclass(frozen=True)
class Checkpoint:
    """A loaded checkpoint (tensors on the CPU).

    Attributes:
        arg_params: parameter name -> tensor (MXNet's ``arg_params``).
        aux_params: auxiliary state name -> tensor (MXNet's ``aux_params``).
        optimizer: ``None``, or the optimizer's ``state_dict()`` keyed by argument names:
            ``{"class": "Adam", "param_groups": [{"lr": ..., "params": [names]}], "state":
            {name: {key: tensor or number}}}``.
        state: the trainer's dict, as JSON gives it back (tuples are lists, keys strings).
        rng: the random state.
        metadata: the file's raw metadata.
        path: the file it was read from.
    """

    arg_params: dict[str, torch.Tensor]
    aux_params: dict[str, torch.Tensor]
    optimizer: dict[str, Any] | None
    state: dict[str, Any]
    rng: RngState
    metadata: dict[str, str]
    path: Path | None = None


def parameter_names(exe: Executor) -> list[str]:
    """The arguments a checkpoint saves: those trained, in ``list_arguments()`` order.

    An argument is trained when its ``grad_req`` is not ``'null'`` and it is not an input:
    not the label of a loss op, not named like an input (``data``, ``label``, ``*_data``,
    ``*_label``, ``*_head_grad``, as ``executor.initialize`` skips them), not declared with a
    shape (the DSL's ``input data: (...)``, ``Variable(..., shape=...)``: inputs and the RNN
    examples' initial states; parameter shapes are inferred). Bind inputs with
    ``grad_req='null'`` to be sure, or pass ``params=`` to :func:`save_checkpoint`.
    """
    labels = label_rules(exe.joint, exe.shapes)
    declared = {v.name for v in exe.symbol.graph.inputs if "__shape__" in v.attrs}
    return [n for n in exe.symbol.list_arguments()
            if exe.grad_req.get(n, "null") != "null" and n not in labels
            and n not in declared and n not in _INPUT_NAMES and not n.endswith(_INPUT_SUFFIXES)]


# -- saving ---------------------------------------------------------------------------------------
def save_checkpoint(path: str | os.PathLike[str], exe: Executor, *,
                    optimizer: torch.optim.Optimizer | None = None,
                    state: Mapping[str, Any] | None = None,
                    numpy_rng: np.random.Generator | np.random.BitGenerator | None = None,
                    params: Sequence[str] | None = None) -> Path:
    """Write ``exe``'s parameters, aux states, optimizer and random state to ``path``, atomically.

    Args:
        path: the file (``.safetensors`` by convention); its folder must exist. An existing
            file is replaced only once the new one is complete on disk.
        exe: the executor whose ``arg_dict`` / ``aux_dict`` are saved.
        optimizer: a ``torch.optim.Optimizer`` built on tensors of ``exe.arg_dict``; its
            ``state_dict()`` is saved with parameter indices mapped to argument names.
        state: the trainer's JSON-able dict (epoch, step, lr-schedule state, seed).
        numpy_rng: a numpy Generator (or BitGenerator) whose state is saved.
        params: the argument names to save (default :func:`parameter_names`), e.g. to keep
            frozen (``grad_req='null'``) parameters too.

    Returns:
        The path written.

    Raises:
        CheckpointError: unknown names in ``params``, an optimizer parameter that is not in
            ``exe.arg_dict``, state that is not JSON, a folder that does not exist, a failed
            write (the previous file is then unchanged and no temporary file is left).
    """
    path = Path(path)
    names = parameter_names(exe) if params is None else list(params)
    unknown = [n for n in names if n not in exe.arg_dict]
    if unknown:
        raise CheckpointError(f"save_checkpoint: params names {_names(unknown)}, which are not "
                              "arguments of the network")
    tensors = {f"arg:{n}": exe.arg_dict[n] for n in names}
    tensors.update({f"aux:{n}": t for n, t in exe.aux_dict.items()})
    inputs = {n: t for n, t in exe.arg_dict.items() if n not in names}
    meta = {"format": FORMAT, "version": str(VERSION),
            "network": _dumps({"arg": _specs({n: exe.arg_dict[n] for n in names}),
                               "aux": _specs(exe.aux_dict), "inputs": _specs(inputs)},
                              "the network"),
            "state": _dumps(dict(state or {}), "state")}
    if optimizer is not None:
        opt_meta, opt_tensors = _optimizer_state(optimizer, exe)
        meta["optimizer"] = _dumps(opt_meta, "the optimizer's state")
        tensors.update(opt_tensors)
    rng_meta, rng_tensors = _rng_state(exe, numpy_rng)
    meta["rng"] = _dumps(rng_meta, "the numpy generator's state")
    tensors.update(rng_tensors)
    host = _to_host(tensors)
    meta["sha256"] = _digest(host)
    _write_atomic(path, safetensors.torch.save(host, meta))
    log.debug("saved checkpoint %s: %d tensors", path, len(host))
    return path


def _optimizer_names(optimizer: torch.optim.Optimizer, exe: Executor) -> list[list[str]]:
    """Argument names of the optimizer's parameters, per param group."""
    by_id = {id(t): n for n, t in exe.arg_dict.items()}
    groups = []
    for g, group in enumerate(optimizer.param_groups):
        names = []
        for k, p in enumerate(group["params"]):
            if id(p) not in by_id:
                raise CheckpointError(
                    f"optimizer parameter {k} of param group {g} (shape {tuple(p.shape)}) is not "
                    "a tensor of the executor's arg_dict; build the optimizer on "
                    "[exe.arg_dict[name] for name in parameter_names(exe)]")
            names.append(by_id[id(p)])
        groups.append(names)
    return groups


def _optimizer_state(optimizer: torch.optim.Optimizer,
                     exe: Executor) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """The optimizer's state_dict keyed by argument names: (JSON part, tensors)."""
    groups = _optimizer_names(optimizer, exe)
    sd = optimizer.state_dict()
    name_of = {i: n for group, names in zip(sd["param_groups"], groups, strict=True)
               for i, n in zip(group["params"], names, strict=True)}
    param_groups = [{**{k: v for k, v in group.items() if k != "params"}, "params": names}
                    for group, names in zip(sd["param_groups"], groups, strict=True)]
    # state: name -> key -> the value, or None for a tensor (stored as opt:<name>:<key>)
    state: dict[str, dict[str, Any]] = {}
    tensors: dict[str, torch.Tensor] = {}
    for i, values in sd["state"].items():
        for key, value in values.items():
            if isinstance(value, torch.Tensor):
                tensors[f"opt:{name_of[i]}:{key}"] = value
            state.setdefault(name_of[i], {})[key] = (None if isinstance(value, torch.Tensor)
                                                     else value)
    meta = {"class": type(optimizer).__name__, "param_groups": param_groups, "state": state}
    return meta, tensors


def _bit_generator(rng: Any) -> np.random.BitGenerator:
    if isinstance(rng, np.random.Generator):
        return rng.bit_generator
    if isinstance(rng, np.random.BitGenerator):
        return rng
    raise CheckpointError(f"numpy_rng must be a numpy Generator, got {type(rng).__name__}")


def _rng_state(exe: Executor, numpy_rng: Any) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    tensors = {"rng:torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng:cuda:{i}"] = s
    meta = {"numpy": None if numpy_rng is None else _bit_generator(numpy_rng).state,
            "executor": {"seed": int(exe.state["seed"]), "step": int(exe.state["step"])},
            "cuda": len(tensors) - 1}
    return meta, tensors


def _to_host(tensors: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Contiguous CPU tensors; those sharing a storage are copied (safetensors may refuse them)."""
    host: dict[str, torch.Tensor] = {}
    storages: set[int] = set()
    for name, t in tensors.items():
        h = t.detach().to("cpu").contiguous()
        if h.untyped_storage().data_ptr() in storages:
            h = h.clone()
        storages.add(h.untyped_storage().data_ptr())
        host[name] = h
    return host


def _write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path``, fsync it, rename it to ``path``."""
    folder = path.parent
    if not folder.is_dir():
        raise CheckpointError(f"cannot save checkpoint '{path}': folder '{folder}' does not exist")
    if path.is_dir():
        raise CheckpointError(f"cannot save checkpoint '{path}': it is a folder")
    tmp = folder / f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp"
    try:
        with open(tmp, "xb") as f:
            _write_all(f, data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:  # also KeyboardInterrupt: never leave the temporary behind
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(e, OSError):
            raise CheckpointError(f"cannot save checkpoint '{path}': {e.strerror or e}; the "
                                  "previous checkpoint, if any, is unchanged") from e
        raise
    _fsync_folder(folder)


def _write_all(f: IO[bytes], data: bytes) -> None:
    view = memoryview(data)
    for start in range(0, len(view), _CHUNK):
        f.write(view[start:start + _CHUNK])


def _fsync_folder(folder: Path) -> None:
    """Make the rename itself durable (POSIX); not possible everywhere, hence best effort."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


# -- loading --------------------------------------------------------------------------------------
def load_checkpoint(path: str | os.PathLike[str]) -> Checkpoint:
    """Read a checkpoint written by :func:`save_checkpoint`.

    Raises:
        CheckpointError: the file is missing, is not a safetensors file, is truncated or
            damaged (its digest differs), or has no checkpoint metadata.
    """
    path = Path(path)
    tensors, meta = _read(path)
    if meta is None or meta.get("format") != FORMAT:
        raise CheckpointError(f"'{path}' is a safetensors file but not a checkpoint: it has no "
                              f"'{FORMAT}' metadata (use load_params for parameters only)")
    version = meta.get("version", "")
    if not version.isdigit() or int(version) > VERSION:
        raise CheckpointError(f"checkpoint '{path}' has format version {version!r}; this "
                              f"version of sublinear reads versions up to {VERSION}")
    _verify_digest(path, tensors, meta, required=True)
    network = _loads(path, meta, "network")
    args = _by_prefix(tensors, "arg:", order=network.get("arg", {}))
    aux = _by_prefix(tensors, "aux:", order=network.get("aux", {}))
    for what, found in (("arg", args), ("aux", aux)):
        if _specs(found) != network.get(what):
            raise CheckpointError(f"checkpoint '{path}' is damaged: its {what} tensors do not "
                                  "match the network recorded in its metadata")
    rng = _loads(path, meta, "rng")
    cuda = [tensors[f"rng:cuda:{i}"] for i in range(int(rng.get("cuda", 0)))]
    return Checkpoint(args, aux, _optimizer_from(path, meta, tensors),
                      _loads(path, meta, "state"),
                      RngState(tensors.get("rng:torch"), cuda, rng.get("numpy"),
                               rng.get("executor")),
                      dict(meta), path)


def load_params(path: str | os.PathLike[str]
                ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """``(arg_params, aux_params)`` of a checkpoint, by MXNet name (``fc1_weight``).

    Reads any safetensors file whose tensors are named ``arg:<name>`` / ``aux:<name>``
    (``opt:`` and ``rng:`` tensors are skipped); a checkpoint's digest is checked.

    Raises:
        CheckpointError: a missing or damaged file, a tensor named otherwise.
    """
    path = Path(path)
    tensors, meta = _read(path)
    _verify_digest(path, tensors, meta or {}, required=False)
    other = [n for n in tensors if n.partition(":")[0] not in ("arg", "aux", "opt", "rng")]
    if other:
        raise CheckpointError(f"'{path}' is not a parameter file: tensor {_names(other)} is not "
                              "named arg:<name> or aux:<name>")
    network = _loads(path, meta, "network") if meta and "network" in meta else {}
    return (_by_prefix(tensors, "arg:", order=network.get("arg", {})),
            _by_prefix(tensors, "aux:", order=network.get("aux", {})))


def _read(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str] | None]:
    if not path.exists():
        raise CheckpointError(f"checkpoint '{path}' does not exist")
    if path.is_dir():
        raise CheckpointError(f"checkpoint '{path}' is a folder, not a file")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata()
            # get_tensor maps the file; a copy does not change if the file is overwritten
            tensors = {k: f.get_tensor(k).clone() for k in f.keys()}
    except SafetensorError as e:
        raise CheckpointError(f"'{path}' is not a safetensors checkpoint, or it is truncated or "
                              f"damaged ({e})") from None
    except OSError as e:
        raise CheckpointError(f"cannot read checkpoint '{path}': {e.strerror or e}") from None
    return tensors, meta


def _verify_digest(path: Path, tensors: Mapping[str, torch.Tensor], meta: Mapping[str, str], *,
                   required: bool) -> None:
    if "sha256" not in meta:
        if required:
            raise CheckpointError(f"checkpoint '{path}' is damaged: its metadata lacks 'sha256'")
        return
    if meta["sha256"] != _digest(tensors):
        raise CheckpointError(f"checkpoint '{path}' is damaged: its tensors do not match the "
                              "digest recorded when it was saved")


def _optimizer_from(path: Path, meta: Mapping[str, str],
                    tensors: Mapping[str, torch.Tensor]) -> dict[str, Any] | None:
    if "optimizer" not in meta:
        return None
    opt = _loads(path, meta, "optimizer")
    state = {n: {k: tensors.get(f"opt:{n}:{k}", v) for k, v in values.items()}
             for n, values in opt["state"].items()}
    return {"class": opt["class"], "param_groups": opt["param_groups"], "state": state}


def _by_prefix(tensors: Mapping[str, torch.Tensor], prefix: str, *,
               order: Iterable[str]) -> dict[str, torch.Tensor]:
    """Tensors named ``prefix<name>`` by name, in ``order`` first, then sorted."""
    found = {k[len(prefix):]: t for k, t in sorted(tensors.items()) if k.startswith(prefix)}
    ordered = {n: found[n] for n in order if n in found}
    return {**ordered, **found}


# -- restoring ------------------------------------------------------------------------------------
def restore(exe: Executor, ckpt: Checkpoint, *, optimizer: torch.optim.Optimizer | None = None,
            numpy_rng: np.random.Generator | np.random.BitGenerator | None = None) -> None:
    """Put a checkpoint back: parameters, aux states, optimizer state and random state.

    Everything is checked first and nothing changes unless all of it fits: the checkpoint's
    names, shapes and dtypes against the executor's (:func:`parameter_names` and every aux
    state must be in the checkpoint; every tensor of it must be an argument or aux state of
    the network), the optimizer's class and parameters against the saved ones. Then the
    tensors are copied into ``exe.arg_dict`` / ``exe.aux_dict`` in place, the optimizer loads
    its state (names mapped to its own parameter indices), and torch's generators (CPU; CUDA
    as far as the devices exist), ``numpy_rng`` and the executor's dropout seed and step are
    set back.

    Args:
        exe: the executor to restore into.
        ckpt: from :func:`load_checkpoint`.
        optimizer: a ``torch.optim.Optimizer`` built on tensors of ``exe.arg_dict``, of the
            class that was saved; ``None`` leaves any saved optimizer state unused.
        numpy_rng: a numpy Generator to set to the saved state.

    Raises:
        CheckpointError: one message naming every difference (missing and unexpected names,
            the first shape and dtype mismatches), an optimizer that does not match, or state
            asked for that the checkpoint does not hold.
    """
    # step 1: check everything, change nothing
    _check_fits(exe, ckpt)
    opt_state = None if optimizer is None else _optimizer_state_dict(optimizer, exe, ckpt)
    bitgen = None if numpy_rng is None else _check_numpy(ckpt, numpy_rng)
    torch_rng = ckpt.rng.cpu
    if torch_rng is not None and (torch_rng.dtype != torch.uint8
                                  or torch_rng.shape != torch.get_rng_state().shape):
        raise CheckpointError(f"checkpoint '{ckpt.path}': its torch generator state is not one "
                              "this torch can use")
    # step 2: copy
    with torch.no_grad():
        for n, t in ckpt.arg_params.items():
            exe.arg_dict[n].copy_(t)
        for n, t in ckpt.aux_params.items():
            exe.aux_dict[n].copy_(t)
    if optimizer is not None and opt_state is not None:
        optimizer.load_state_dict(opt_state)
    # step 3: random state
    if torch_rng is not None:
        torch.set_rng_state(torch_rng)
    _restore_cuda(ckpt.rng.cuda)
    if bitgen is not None and ckpt.rng.numpy is not None:
        bitgen.state = ckpt.rng.numpy
    if ckpt.rng.executor is not None:
        exe.state.update(seed=ckpt.rng.executor["seed"], step=ckpt.rng.executor["step"])


def _check_fits(exe: Executor, ckpt: Checkpoint) -> None:
    """One CheckpointError listing how the checkpoint's tensors differ from the network's."""
    ours = {**{n: exe.arg_dict[n] for n in parameter_names(exe)}, **exe.aux_dict}
    theirs = {**ckpt.arg_params, **ckpt.aux_params}
    missing = [n for n in ours if n not in theirs]
    unexpected = [f"arg:{n}" for n in ckpt.arg_params if n not in exe.arg_dict]
    unexpected += [f"aux:{n}" for n in ckpt.aux_params if n not in exe.aux_dict]
    mine = {**exe.arg_dict, **exe.aux_dict}
    shapes = [f"{n}: {_shape(t)} in the checkpoint, {_shape(mine[n])} in the network"
              for n, t in theirs.items() if n in mine and t.shape != mine[n].shape]
    dtypes = [f"{n}: {_dtype(t)} in the checkpoint, {_dtype(mine[n])} in the network"
              for n, t in theirs.items()
              if n in mine and t.shape == mine[n].shape and t.dtype != mine[n].dtype]
    lines = []
    if missing:
        lines.append(f"missing from the checkpoint: {_names(missing)}")
    if unexpected:
        lines.append(f"not in the network: {_names(unexpected)}")
    lines += [f"shape of {s}" for s in shapes[:_SHOWN]]
    if len(shapes) > _SHOWN:
        lines.append(f"and {len(shapes) - _SHOWN} more shape differences")
    lines += [f"dtype of {s}" for s in dtypes[:_SHOWN]]
    if len(dtypes) > _SHOWN:
        lines.append(f"and {len(dtypes) - _SHOWN} more dtype differences")
    if lines:
        raise CheckpointError(f"checkpoint '{ckpt.path}' does not fit this network (saved from "
                              "another one?):\n  " + "\n  ".join(lines))


def _optimizer_state_dict(optimizer: torch.optim.Optimizer, exe: Executor,
                          ckpt: Checkpoint) -> dict[str, Any]:
    """The saved optimizer state as a state_dict for ``optimizer`` (its own indices)."""
    saved, cls = ckpt.optimizer, type(optimizer).__name__
    if saved is None:
        raise CheckpointError(f"checkpoint '{ckpt.path}' holds no optimizer state; restore "
                              "without optimizer= to load the parameters only")
    if saved["class"] != cls:
        raise CheckpointError(f"checkpoint '{ckpt.path}' holds {saved['class']} state; the "
                              f"optimizer is {cls}")
    groups = _optimizer_names(optimizer, exe)
    if len(groups) != len(saved["param_groups"]):
        raise CheckpointError(f"checkpoint '{ckpt.path}': the optimizer has {len(groups)} "
                              f"param groups, the saved one {len(saved['param_groups'])}")
    # torch pairs saved indices with its parameters by position: index = position here
    index = {n: i for i, n in enumerate(n for names in groups for n in names)}
    param_groups = []
    for g, (names, old, new) in enumerate(zip(groups, saved["param_groups"],
                                              optimizer.param_groups, strict=True)):
        if set(names) != set(old["params"]):
            lacks = [n for n in old["params"] if n not in names]
            extra = [n for n in names if n not in old["params"]]
            raise CheckpointError(
                f"checkpoint '{ckpt.path}': param group {g} of the optimizer differs from the "
                f"saved one" + (f"; it lacks {_names(lacks)}" if lacks else "")
                + (f"; it also has {_names(extra)}" if extra else ""))
        hyper = {k: _like(v, new.get(k)) for k, v in old.items() if k != "params"}
        param_groups.append({**{k: v for k, v in new.items() if k != "params"}, **hyper,
                             "params": [index[n] for n in names]})
    # clones: the optimizer updates its state in place, the checkpoint stays as loaded
    state = {index[n]: {k: v.clone() if isinstance(v, torch.Tensor) else v
                        for k, v in values.items()}
             for n, values in saved["state"].items()}
    return {"state": state, "param_groups": param_groups}


def _like(value: Any, current: Any) -> Any:
    """JSON turns tuples (Adam's ``betas``) into lists; give them back the current type."""
    return tuple(value) if isinstance(current, tuple) and isinstance(value, list) else value


def _check_numpy(ckpt: Checkpoint, numpy_rng: Any) -> np.random.BitGenerator:
    bitgen = _bit_generator(numpy_rng)
    saved = ckpt.rng.numpy
    if saved is None:
        raise CheckpointError(f"checkpoint '{ckpt.path}' holds no numpy generator state")
    kind = type(bitgen).__name__
    if saved.get("bit_generator") != kind:
        raise CheckpointError(f"checkpoint '{ckpt.path}' holds a {saved.get('bit_generator')} "
                              f"generator's state; numpy_rng is a {kind}")
    return bitgen


def _restore_cuda(states: Sequence[torch.Tensor]) -> None:
    if not states:
        return
    if not torch.cuda.is_available():
        log.info("checkpoint has CUDA generator states; no CUDA here, not restored")
        return
    for i, s in enumerate(states[:torch.cuda.device_count()]):
        torch.cuda.set_rng_state(s, i)


# -- helpers --------------------------------------------------------------------------------------
def _dtype(t: torch.Tensor) -> str:
    return str(t.dtype).removeprefix("torch.")


def _shape(t: torch.Tensor) -> tuple[int, ...]:
    return tuple(t.shape)


def _specs(tensors: Mapping[str, torch.Tensor]) -> dict[str, dict[str, Any]]:
    return {n: {"shape": list(t.shape), "dtype": _dtype(t)} for n, t in tensors.items()}


def _names(names: Sequence[str]) -> str:
    shown = ", ".join(f"'{n}'" for n in names[:_SHOWN])
    return shown + (f" and {len(names) - _SHOWN} more" if len(names) > _SHOWN else "")


def _digest(tensors: Mapping[str, torch.Tensor]) -> str:
    """sha256 over every tensor's name, dtype, shape and bytes, in name order."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name]
        h.update(f"{name}|{_dtype(t)}|{list(t.shape)}|".encode())
        h.update(t.contiguous().reshape(-1).view(torch.uint8).numpy().data)
    return h.hexdigest()


def _to_json(value: Any) -> Any:
    """``json.dumps`` default: numpy scalars and arrays (an MT19937 state holds one)."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return {"__ndarray__": value.tolist(), "dtype": value.dtype.name}
    raise TypeError(f"it holds a {type(value).__name__}")


def _from_json(obj: dict[str, Any]) -> Any:
    if set(obj) == {"__ndarray__", "dtype"}:
        return np.array(obj["__ndarray__"], dtype=obj["dtype"])
    return obj


def _dumps(value: Any, what: str) -> str:
    try:
        return json.dumps(value, default=_to_json)
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"save_checkpoint: {what} is not JSON ({e}); a checkpoint keeps "
                              "numbers, strings, lists and dicts besides tensors") from None


def _loads(path: Path, meta: Mapping[str, str], key: str) -> Any:
    if key not in meta:
        raise CheckpointError(f"checkpoint '{path}' is damaged: its metadata lacks '{key}'")
    try:
        return json.loads(meta[key], object_hook=_from_json)
    except ValueError:
        raise CheckpointError(f"checkpoint '{path}' is damaged: its metadata '{key}' is not "
                              "JSON") from None
