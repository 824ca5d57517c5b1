"""Op-sweep rows for the elementwise family."""
from __future__ import annotations

import torch
import torch.nn.functional as F

import symbol as sym

from .harness import Case

X = sym.Variable("x")
Y = sym.Variable("y")
S = {"x": (3, 4, 5)}
S2 = {"x": (3, 4, 5), "y": (3, 4, 5)}

_ACTS = {"relu": torch.relu, "sigmoid": torch.sigmoid, "tanh": torch.tanh,
         "softrelu": F.softplus}

CASES = [
    *[Case(f"Activation-{a}", lambda a=a: sym.Activation(X, act_type=a), S,
           lambda x, f=f: f(x)) for a, f in _ACTS.items()],
    Case("LeakyReLU-leaky", lambda: sym.LeakyReLU(X, slope=0.1), S,
         lambda x: F.leaky_relu(x, 0.1)),
    Case("LeakyReLU-elu", lambda: sym.LeakyReLU(X, act_type="elu", slope=0.7), S,
         lambda x: F.elu(x, 0.7)),
    Case("elemwise_add", lambda: sym.elemwise_add(X, Y), S2, lambda x, y: x + y),
    Case("elemwise_mul", lambda: X * Y, S2, lambda x, y: x * y),
    Case("elemwise_mul-self", lambda: X * X, S, lambda x: x * x),
    Case("Cast", lambda: sym.Cast(sym.Cast(X, dtype="float32") * 3, dtype="float64"), S,
         lambda x: (x.float() * 3).double()),
    Case("_plus_scalar", lambda: X + 2.5, S, lambda x: x + 2.5),
    Case("_mul_scalar", lambda: 3 * X, S, lambda x: 3 * x),
    Case("_rminus_scalar", lambda: 1.5 - X, S, lambda x: 1.5 - x),
    Case("_rminus_scalar-int", lambda: 1 - X * Y, S2, lambda x, y: 1 - x * y),
    Case("ElementWiseSum", lambda: sym.ElementWiseSum(X, Y, X * Y), S2,
         lambda x, y: x + y + x * y),
    Case("add_n-one", lambda: sym.add_n(X), S, lambda x: x.clone()),
    Case("identity", lambda: sym.identity(X), S, lambda x: x.clone()),
    Case("BlockGrad", lambda: sym.BlockGrad(X) * Y, S2, lambda x, y: x.detach() * y),
    Case("zeros_like", lambda: sym.zeros_like(X) + Y, S2, lambda x, y: torch.zeros_like(x) + y),
]
