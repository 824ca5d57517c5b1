"""sublinear's executor: binds a symbolic network to torch tensors and runs it op by op.

Importing this package installs ``Symbol.simple_bind`` and ``Symbol.bind``. torch is imported
on first use of anything that runs tensors (``simple_bind``, ``Executor``, ...), not by the
package itself: the command line parses, checks and plans networks without loading torch.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from symbol.symbol import register_backend

if TYPE_CHECKING:
    from .binding import bind, resolve_device, simple_bind
    from .executor import Executor, ExecutorError
    from .initializer import initialize
    from .optimizer import SGD

__all__ = ["Executor", "ExecutorError", "simple_bind", "bind", "resolve_device", "initialize",
           "SGD"]

#: Public name -> the submodule defining it (imported on first access, PEP 562).
_LAZY = {"Executor": "executor", "ExecutorError": "arrays", "simple_bind": "binding",
         "bind": "binding", "resolve_device": "binding", "initialize": "initializer",
         "SGD": "optimizer"}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'executor' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])


def _simple_bind(*args: Any, **kwargs: Any) -> Any:
    from .binding import simple_bind as impl
    return impl(*args, **kwargs)


def _bind(*args: Any, **kwargs: Any) -> Any:
    from .binding import bind as impl
    return impl(*args, **kwargs)


register_backend(simple_bind=_simple_bind, bind=_bind)
