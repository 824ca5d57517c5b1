"""What a ``NET`` argument names: a network file or one of the shipped example networks.

``NET`` is, in this order:
  1. an existing file: an MXNet symbol JSON file if its name ends in ``.json``, else a file in
     the network language (``docs/dsl.md``);
  2. the name of a shipped example (``mlp``, ``resnet``, ``lstm``, ...): ``examples/<name>.sym``
     of the source tree, installed with the package as ``sublinear_examples`` so that every
     command works from any folder after ``pip install``.

The Python builders of the examples (``examples/resnet.py`` ...) are in the same package;
:func:`example_module` imports one (they depend on :mod:`symbol` only).
"""
from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType
from typing import Any, Mapping

from symbol import Symbol, SymbolError

__all__ = ["EXAMPLE_PACKAGE", "example_dir", "example_names", "example_module", "resolve_net",
           "load_net"]

#: The installed name of the source tree's ``examples/`` folder (``package_dir`` in setup.cfg).
EXAMPLE_PACKAGE = "sublinear_examples"


def example_dir() -> Path:
    """The folder holding the example networks (``examples/`` of the source tree)."""
    try:
        package = importlib.import_module(EXAMPLE_PACKAGE)
    except ImportError:
        raise SymbolError(f"the example networks are not installed (package "
                          f"{EXAMPLE_PACKAGE}); reinstall sublinear") from None
    return Path(package.__file__ or "").parent


def example_names() -> list[str]:
    """Names of the shipped example networks, sorted."""
    return sorted(p.stem for p in example_dir().glob("*.sym"))


def example_module(name: str) -> ModuleType:
    """The Python builder of an example network (``resnet``, ``lstm``, ``mlp``)."""
    try:
        return importlib.import_module(f"{EXAMPLE_PACKAGE}.{name}")
    except ImportError:
        raise SymbolError(f"the example network builder '{name}' is not installed "
                          f"({EXAMPLE_PACKAGE}.{name}); reinstall sublinear") from None


def resolve_net(spec: str) -> Path:
    """The file ``spec`` names (see the module docstring).

    Raises:
        SymbolError: neither a file nor an example name (the message lists the examples).
    """
    path = Path(spec)
    if path.is_dir():
        raise SymbolError(f"{spec} is a folder; give a network file (.sym or -symbol.json) or "
                          "an example name")
    if path.exists():
        return path
    if "/" not in spec and "\\" not in spec and spec:
        candidate = example_dir() / f"{spec}.sym"
        if candidate.is_file():
            return candidate
    names = ", ".join(example_names())
    raise SymbolError(f"no such network file or example: {spec} (examples: {names})")


def load_net(spec: str, params: Mapping[str, Any] | None = None) -> tuple[Symbol, dict[str, Any]]:
    """The network ``spec`` names and its parameter values (``param`` statements; none for
    MXNet JSON).

    Raises:
        SymbolError: an unknown ``spec``, ``params`` given for a JSON file, or any error in
            the file. OSError: the file cannot be read.
    """
    import symbol as sym
    from symbol.dsl import lower_text, read_source
    path = resolve_net(spec)
    if path.suffix.lower() == ".json":
        if params:
            raise SymbolError("--param applies to network-language files, not to MXNet JSON")
        return sym.load_json(str(path)), {}
    lowered = lower_text(read_source(str(path)), dict(params or {}), filename=str(path))
    return lowered.symbol, lowered.params
