"""Unrolled multi-layer LSTM from fine-grained ops, as in the paper's released example.

Per step t: a fully connected embedding of the step's input, ``num_layers`` LSTM cells (one
shared set of weights per layer across time), a ``num_label``-way classifier and a per-step loss
``MakeLoss(softmax_cross_entropy(...))``. With ``mirror_stage=True`` each step's c and h carry
``mirror_stage=str(t)``, so all cells of one step form one cut line for the planner.
"""
from __future__ import annotations

from typing import NamedTuple

import symbol as sym

__all__ = ["LSTMParam", "lstm_cell", "get_symbol"]


class LSTMParam(NamedTuple):
    i2h_weight: sym.Symbol
    i2h_bias: sym.Symbol
    h2h_weight: sym.Symbol
    h2h_bias: sym.Symbol


def lstm_cell(num_hidden: int, x: sym.Symbol, c: sym.Symbol, h: sym.Symbol, param: LSTMParam,
              name: str, attr: dict[str, str] | None = None) -> tuple[sym.Symbol, sym.Symbol]:
    """One LSTM step: returns (next_c, next_h). Gate order: input, transform, forget, output."""
    i2h = sym.FullyConnected(x, weight=param.i2h_weight, bias=param.i2h_bias,
                             num_hidden=4 * num_hidden, name=name + "_i2h")
    h2h = sym.FullyConnected(h, weight=param.h2h_weight, bias=param.h2h_bias,
                             num_hidden=4 * num_hidden, name=name + "_h2h")
    gates = sym.SliceChannel(sym.elemwise_add(i2h, h2h, name=name + "_gates"), num_outputs=4,
                             name=name + "_slice")
    in_gate = sym.Activation(gates[0], act_type="sigmoid", name=name + "_in_gate")
    in_transform = sym.Activation(gates[1], act_type="tanh", name=name + "_in_transform")
    forget_gate = sym.Activation(gates[2], act_type="sigmoid", name=name + "_forget_gate")
    out_gate = sym.Activation(gates[3], act_type="sigmoid", name=name + "_out_gate")
    next_c = sym.elemwise_add(sym.elemwise_mul(forget_gate, c, name=name + "_fc"),
                              sym.elemwise_mul(in_gate, in_transform, name=name + "_ig"),
                              name=name + "_c", attr=attr)
    next_h = sym.elemwise_mul(out_gate, sym.Activation(next_c, act_type="tanh",
                                                       name=name + "_c_tanh"),
                              name=name + "_h", attr=attr)
    return next_c, next_h


def get_symbol(seq_len: int = 10, num_layers: int = 4, num_hidden: int = 1024,
               input_size: int = 50, num_embed: int | None = None, num_label: int = 5000,
               *, mirror_stage: bool = True, dropout: float = 0.0) -> sym.Symbol:
    """A group of ``seq_len`` per-step losses. Inputs ``t{t}_data`` (batch, input_size),
    labels ``t{t}_label`` (batch,), initial states ``l{i}_init_c``/``l{i}_init_h``."""
    num_embed = num_embed or num_hidden
    embed_weight = sym.Variable("embed_weight")
    cls_weight, cls_bias = sym.Variable("cls_weight"), sym.Variable("cls_bias")
    params = [LSTMParam(*(sym.Variable(f"l{i}_{k}") for k in LSTMParam._fields))
              for i in range(num_layers)]
    states = [(sym.Variable(f"l{i}_init_c"), sym.Variable(f"l{i}_init_h"))
              for i in range(num_layers)]
    losses = []
    for t in range(seq_len):
        attr = {"mirror_stage": str(t)} if mirror_stage else None
        hidden = sym.FullyConnected(sym.Variable(f"t{t}_data"), weight=embed_weight,
                                    num_hidden=num_embed, no_bias=True, name=f"t{t}_embed")
        for i in range(num_layers):
            c, h = lstm_cell(num_hidden, hidden, *states[i], params[i], f"t{t}_l{i}", attr)
            states[i] = (c, h)
            hidden = h
        if dropout > 0:
            hidden = sym.Dropout(hidden, p=dropout, name=f"t{t}_dropout")
        fc = sym.FullyConnected(hidden, weight=cls_weight, bias=cls_bias, num_hidden=num_label,
                                name=f"t{t}_cls")
        ce = sym.softmax_cross_entropy(fc, sym.Variable(f"t{t}_label"), name=f"t{t}_ce")
        losses.append(sym.MakeLoss(ce, name=f"t{t}_loss"))
    return sym.Group(losses)
