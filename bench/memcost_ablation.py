"""Which model or operator detail moves our planned memory to the paper's: ablations.

    python bench/memcost_ablation.py                  # Markdown tables (docs/results.md)
    python bench/memcost_ablation.py --json

Plans the paper's networks (``examples.resnet`` batch 32 at 224x224, ``examples.lstm`` 4 x 1024
at batch 64) as ``sublinear memcost`` does, then again with one detail changed to what the
paper's setup had, and prints planned GiB (activations + intermediate gradients) with the ratio
to the paper's value. Op changes hold for this process only (``register(..., override=True)``
inside a context manager that restores the original records):

* ``add-grad-copies``: the gradient of ``elemwise_add`` is two materialised copies of the head
  gradient (MXNet's ``_backward_add``) instead of passing the head gradient through;
* ``act-reads-input``: ``Activation``'s backward reads its input as well as its output (MXNet's
  ``ActivationProp`` built with cuDNN, 2015-16: ``DeclareBackwardDependency`` returned
  ``{out_grad, out_data, in_data}``), so a ReLU can no longer overwrite its input in place;
* ``one-grad-sum``: all gradient contributions to one weight are summed by a single
  ``ElementWiseSum`` (no ``MXNET_EXEC_INPLACE_GRAD_SUM_CAP`` chain of in-place additions);
* ``released-example``: the network of the paper's released planner example
  (``example_resnet.py`` of mxnet-memonger) instead of ``examples.resnet``: post-activation
  Conv(+bias)-BN-LeakyReLU modules, a Conv-BN-LeakyReLU projection on each stage's first unit,
  no BatchNorm on the data, the same unit lists;
* ``keep-bn``: "drop bn-relu" as the paper-era mirror rule (BatchNorm kept, mirror strategy
  ``drop-cheap-keep-bn``) instead of MXNet 1.x's (``drop-cheap``).

Last, the LSTM's plans at 50 steps split by what fills each storage (the producing op and
output of its largest entry), to show where the bytes are.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from contextlib import ExitStack, contextmanager
from typing import Iterator

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, ROOT)

from examples import lstm, resnet  # noqa: E402
from executor.app.memcost import STRATEGIES, paper_figures  # noqa: E402
from optim.flags import read_flags  # noqa: E402
from optim.pipeline import default_grad_req  # noqa: E402
from optim.search import plan_training  # noqa: E402
from symbol.ops._helpers import backward_node, head, out, same_shape  # noqa: E402
from symbol.registry import OPS, OpDef, get_op, register  # noqa: E402


@contextmanager
def _replaced(name: str, **changes: object) -> Iterator[None]:
    old = get_op(name)
    register(dataclasses.replace(old, **changes), override=True)
    try:
        yield
    finally:
        register(old, override=True)


def add_grad_copies() -> ExitStack:
    def grad(node, ograds):
        # y = a + b  ->  da = copy(dy), db = copy(dy)
        return [out(backward_node("identity", node, [head(ograds)], suffix=f"_in{i}_backward",
                                  params={})) for i in range(2)]
    stack = ExitStack()
    stack.enter_context(_replaced("elemwise_add", gradient=grad))
    return stack


def act_reads_input() -> ExitStack:
    if "_backward_Activation_cudnn" not in OPS:
        def shape(params, ins):
            s = same_shape(params, ins)[1][0]
            return [s, s, s], [s]
        register(OpDef("_backward_Activation_cudnn", "elemwise",
                       ("out_grad", "out_data", "in_data"), shape, None,
                       params=get_op("_backward_Activation").params,
                       inplace=lambda p: ((0, 0),), is_backward=True))

    def grad(node, ograds):
        # y = f(x)  ->  dx = dy * f'(x), reading y and x (as cuDNN's activation backward did)
        inputs = [head(ograds), out(node), node.inputs[0]]
        return [out(backward_node("_backward_Activation_cudnn", node, inputs))]
    stack = ExitStack()
    stack.enter_context(_replaced("Activation", gradient=grad))
    return stack


VARIANTS = {"ours": [], "add-grad-copies": ["add-grad-copies"],
            "act-reads-input": ["act-reads-input"],
            "both": ["add-grad-copies", "act-reads-input"],
            "one-grad-sum": ["one-grad-sum"],
            "one-grad-sum + add-grad-copies": ["one-grad-sum", "add-grad-copies"],
            "keep-bn": ["keep-bn"], "keep-bn + act-reads-input": ["keep-bn", "act-reads-input"],
            "released-example": ["released-example"],
            "released-example + add-grad-copies": ["released-example", "add-grad-copies"]}
CHANGES = {"add-grad-copies": add_grad_copies, "act-reads-input": act_reads_input}


def released_resnet(units):
    """mxnet-memonger's example_resnet.py: Conv-BN-LeakyReLU modules, bottleneck units."""
    import symbol as sym

    def module(x, name, filters, kernel, stride=1, attr=None):
        conv = sym.Convolution(x, num_filter=filters, kernel=(kernel, kernel),
                               stride=(stride, stride), pad=(kernel // 2, kernel // 2),
                               name=name + "_conv")
        bn = sym.BatchNorm(conv, fix_gamma=True, name=name + "_bn")
        return sym.LeakyReLU(bn, act_type="leaky", name=name + "_act", attr=attr)

    stage = {"mirror_stage": "True"}
    body = module(sym.Variable("data"), "conv0", 64, 7, 2)
    body = sym.Pooling(body, pool_type="max", kernel=(3, 3), stride=(2, 2), name="pool0",
                       attr=stage)
    for j, n in enumerate(units):
        for i in range(n):
            name, filters, s = f"s{j}u{i}", 64 * 2 ** j, 2 if j and not i else 1
            c1 = module(body, name + "_1", filters, 1)
            c2 = module(c1, name + "_2", filters, 3, s)
            c3 = module(c2, name + "_3", filters * 4, 1)
            short = module(body, name + "_sc", filters * 4, 1, s) if i == 0 else body
            body = sym.elemwise_add(short, c3, name=name + "_plus", attr=stage)
    pool = sym.Pooling(body, kernel=(7, 7), pool_type="avg", name="global_pool")
    fc = sym.FullyConnected(sym.Flatten(pool, name="flatten"), num_hidden=1000, name="fc1")
    return sym.SoftmaxOutput(fc, name="softmax")


def build(net: str, size: int, released: bool = False):
    if released:
        return released_resnet(resnet.units_for_depth(size)), {"data": (32, 3, 224, 224)}
    if net == "resnet":
        return resnet.get_symbol(units=resnet.units_for_depth(size)), {"data": (32, 3, 224, 224)}
    shapes = {f"t{t}_data": (64, 50) for t in range(size)}
    shapes.update({f"l{i}_init_{k}": (64, 1024) for i in range(4) for k in "ch"})
    return lstm.get_symbol(seq_len=size), shapes


def plan_of(net: str, size: int, strategy: str, changes: list[str]):
    """Our NetworkPlan of one point with ``changes`` applied."""
    memory, mirror = STRATEGIES[strategy]
    if strategy == "drop_bn_relu" and "keep-bn" in changes:
        mirror = "drop-cheap-keep-bn"
    flags = read_flags()
    if "one-grad-sum" in changes:
        flags = dataclasses.replace(flags, grad_sum_cap=10**9)
    with ExitStack() as stack:
        for c in changes:
            if c in CHANGES:
                stack.enter_context(CHANGES[c]())
        sym, shapes = build(net, size, "released-example" in changes)
        reqs = default_grad_req(sym.list_arguments(), list(shapes))
        _, nplan = plan_training(sym.graph, shapes, grad_req=reqs,
                                 aux=sym.list_auxiliary_states(), strategy=memory,
                                 mirror=mirror, flags=flags)
    return nplan


def by_producer(plan) -> dict[str, int]:
    """Bytes of each storage, keyed by the op and output name of its largest entry."""
    largest: dict[int, tuple[int, int, str]] = {}
    for e, sid in plan.storage.items():
        outputs = e.node.opdef.outputs
        names = outputs(e.node.params) if callable(outputs) else outputs
        # the largest entry; among equals the first defined (the one that allocated it)
        cand = (plan.nbytes[e], -plan.liveness.def_pos(e), f"{e.node.op}.{names[e.index]}")
        largest[sid] = max(largest.get(sid, cand), cand)
    out: dict[str, int] = {}
    for sid, (_, _, key) in largest.items():
        out[key] = out.get(key, 0) + plan.storage_bytes[sid]
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


PLAN = {"resnet": ([100, 200, 400, 600, 800, 1000], {
            "ours": ["no_optimization", "inplace", "sharing", "drop_bn_relu", "sublinear"],
            "add-grad-copies": ["no_optimization", "inplace"],
            "act-reads-input": ["inplace", "sharing", "sublinear"],
            "both": ["no_optimization", "inplace", "sharing", "sublinear"],
            "keep-bn": ["drop_bn_relu"], "keep-bn + act-reads-input": ["drop_bn_relu"],
            "released-example": ["no_optimization", "inplace", "sharing", "drop_bn_relu",
                                 "sublinear"],
            "released-example + add-grad-copies": ["no_optimization", "inplace"]}),
        "lstm": ([50, 200], {
            "ours": ["no_optimization", "inplace", "sharing", "sublinear"],
            "one-grad-sum": ["no_optimization", "inplace", "sharing"],
            "one-grad-sum + add-grad-copies": ["no_optimization", "inplace"]})}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    rows = []
    for net, (sizes, variants) in PLAN.items():
        section = paper_figures()[net]
        xs = section["layers" if net == "resnet" else "steps"]
        for variant, strategies in variants.items():
            for strategy in strategies:
                for size in sizes:
                    plan = plan_of(net, size, strategy, VARIANTS[variant]).plan
                    gib = plan.planned_bytes / 2**30
                    paper = section["feature_map_plan_GB"][strategy][xs.index(size)]
                    rows.append({"net": net, "variant": variant, "strategy": strategy,
                                 "size": size, "gib": round(gib, 2), "paper": paper,
                                 "ratio": round(gib / paper, 2)})
                    print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    split = {s: by_producer(plan_of("lstm", 50, s, []).plan)
             for s in ("no_optimization", "inplace", "sharing")}
    if args.json:
        print(json.dumps({"rows": rows, "lstm_50_by_producer": split}, indent=1))
        return
    for net, (sizes, _) in PLAN.items():
        print(f"\n{net}: GiB (ratio to the paper)\n")
        print("| change | strategy | " + " | ".join(map(str, sizes)) + " |")
        print("|---|---|" + "---|" * len(sizes))
        keys = dict.fromkeys((r["variant"], r["strategy"]) for r in rows if r["net"] == net)
        for variant, strategy in keys:
            cells = [next(f"{r['gib']:.2f} ({r['ratio']:.2f})" for r in rows
                          if (r["net"], r["variant"], r["strategy"], r["size"])
                          == (net, variant, strategy, s)) for s in sizes]
            print(f"| {variant} | {strategy} | " + " | ".join(cells) + " |")
    print("\nlstm, 50 steps: GiB of storages by what fills them (op.output of the largest entry)\n")
    keys = list(dict.fromkeys(k for d in split.values() for k in list(d)[:6]))
    print("| producer | " + " | ".join(split) + " |")
    print("|---|" + "---|" * len(split))
    for k in keys:
        print(f"| {k} | " + " | ".join(f"{d.get(k, 0) / 2**30:.2f}" for d in split.values())
              + " |")


if __name__ == "__main__":
    main()
