"""sublinear's executor: binds a symbolic network to torch tensors and runs it op by op.

Importing this package installs ``Symbol.simple_bind`` and ``Symbol.bind``.
"""
from __future__ import annotations

from symbol.symbol import register_backend

from .bind import bind, resolve_device, simple_bind
from .executor import Executor, ExecutorError
from .initializer import initialize
from .optimizer import SGD

__all__ = ["Executor", "ExecutorError", "simple_bind", "bind", "resolve_device", "initialize",
           "SGD"]

register_backend(simple_bind=simple_bind, bind=bind)
