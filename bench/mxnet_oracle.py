"""Real MXNet 1.9.1 as an optional oracle: its planned memory and its symbol JSON.

Never a dependency: run it with the python of a separate MXNet virtual environment::

    python3 -m venv /tmp/mxnet-venv
    /tmp/mxnet-venv/bin/pip install mxnet==1.9.1 "numpy<1.24"
    /tmp/mxnet-venv/bin/python bench/mxnet_oracle.py            # prints JSON

For each network it builds the symbol with ``mx.sym``, ``simple_bind``\\ s it on the CPU
(batch 32 at 224x224 for ResNet, batch 64 for the LSTM; inputs, labels and initial states with
``grad_req='null'``, parameters ``'write'``, as ``Module`` does) and reads MXNet's plan from
``executor.debug_str()`` ("Total N MB allocated": activations, mirror copies and backward
temporaries; no parameters, parameter gradients, inputs, aux states or workspace). Each
environment setting runs in its own subprocess, since MXNet reads some variables once:

* ``default``: no variables set;
* ``mirror``: ``MXNET_BACKWARD_DO_MIRROR=1``;
* ``no_sharing``: ``NNVM_EXEC_MATCH_RANGE=0``.

Networks: MXNet's ImageNet pre-activation bottleneck ResNet as written in MXNet's
``example/image-classification/symbols/resnet.py`` (``identity`` on the data, ReLU, 1x1-3x3-1x1
units with a projection on each stage's first unit, ``workspace=256``, ``memonger=True`` so the
shortcuts carry ``mirror_stage``), with units (3, 24, 36, 3) = 66 units, 200 layers and
(3, 131, 196, 3) = 333 units, 1001 layers; and the 4 x 1024 LSTM of ``examples/lstm.py`` (50-d
input, FC embedding, 5000-way ``softmax_cross_entropy`` + ``MakeLoss`` per step, shared weights,
``mirror_stage=str(t)`` on each step's c and h) with 50 and 200 steps.

Each symbol's JSON (MXNet's own ``tojson()`` text) is saved in ``bench/mxnet_nets/<net>.json``
when it is at most ``--max-json-mib`` (default 1 MiB, to stay commit-sized), and
``bench/mxnet_nets/shapes.json`` records, per saved net, the input shapes and MXNet's
``infer_shape`` result (argument, auxiliary-state and output names with shapes). The tests load
these files into this framework's Symbol and compare. The printed report is also written to
``bench/mxnet_nets/oracle.json``, so the planned MiB can be compared without MXNet.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from collections import namedtuple

import mxnet as mx

NETS = {"resnet_66_units": ("resnet", (3, 24, 36, 3)),
        "resnet_333_units": ("resnet", (3, 131, 196, 3)),
        "lstm_50_steps": ("lstm", 50),
        "lstm_200_steps": ("lstm", 200)}
SETTINGS = {"default": {}, "mirror": {"MXNET_BACKWARD_DO_MIRROR": "1"},
            "no_sharing": {"NNVM_EXEC_MATCH_RANGE": "0"}}
#: MiB values from the paper's notes (MXNet 1.9.1): default / mirror / match range 0.
REFERENCE = {"resnet_66_units": (10481, 7972, 20605), "resnet_333_units": (47135, 35461, 93912),
             "lstm_50_steps": (1201, 1105, 8978), "lstm_200_steps": (3972, 3576, 35912)}
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# -- MXNet's example/image-classification/symbols/resnet.py (bottleneck, ImageNet) ------------

def residual_unit(data, num_filter, stride, dim_match, name, bn_mom=0.9, workspace=256,
                  memonger=False):
    """Pre-activation bottleneck unit, as in MXNet's example."""
    bn1 = mx.sym.BatchNorm(data=data, fix_gamma=False, eps=2e-5, momentum=bn_mom,
                           name=name + '_bn1')
    act1 = mx.sym.Activation(data=bn1, act_type='relu', name=name + '_relu1')
    conv1 = mx.sym.Convolution(data=act1, num_filter=int(num_filter * 0.25), kernel=(1, 1),
                               stride=(1, 1), pad=(0, 0), no_bias=True, workspace=workspace,
                               name=name + '_conv1')
    bn2 = mx.sym.BatchNorm(data=conv1, fix_gamma=False, eps=2e-5, momentum=bn_mom,
                           name=name + '_bn2')
    act2 = mx.sym.Activation(data=bn2, act_type='relu', name=name + '_relu2')
    conv2 = mx.sym.Convolution(data=act2, num_filter=int(num_filter * 0.25), kernel=(3, 3),
                               stride=stride, pad=(1, 1), no_bias=True, workspace=workspace,
                               name=name + '_conv2')
    bn3 = mx.sym.BatchNorm(data=conv2, fix_gamma=False, eps=2e-5, momentum=bn_mom,
                           name=name + '_bn3')
    act3 = mx.sym.Activation(data=bn3, act_type='relu', name=name + '_relu3')
    conv3 = mx.sym.Convolution(data=act3, num_filter=num_filter, kernel=(1, 1), stride=(1, 1),
                               pad=(0, 0), no_bias=True, workspace=workspace,
                               name=name + '_conv3')
    if dim_match:
        shortcut = data
    else:
        shortcut = mx.sym.Convolution(data=act1, num_filter=num_filter, kernel=(1, 1),
                                      stride=stride, no_bias=True, workspace=workspace,
                                      name=name + '_sc')
    if memonger:
        shortcut._set_attr(mirror_stage='True')
    return conv3 + shortcut


def resnet(units, num_classes=1000, bn_mom=0.9, workspace=256, memonger=True):
    """ImageNet ResNet with filters (64, 256, 512, 1024, 2048), as in MXNet's example."""
    filter_list = (64, 256, 512, 1024, 2048)
    data = mx.sym.Variable(name='data')
    data = mx.sym.identity(data=data, name='id')
    data = mx.sym.BatchNorm(data=data, fix_gamma=True, eps=2e-5, momentum=bn_mom, name='bn_data')
    body = mx.sym.Convolution(data=data, num_filter=filter_list[0], kernel=(7, 7), stride=(2, 2),
                              pad=(3, 3), no_bias=True, name="conv0", workspace=workspace)
    body = mx.sym.BatchNorm(data=body, fix_gamma=False, eps=2e-5, momentum=bn_mom, name='bn0')
    body = mx.sym.Activation(data=body, act_type='relu', name='relu0')
    body = mx.sym.Pooling(data=body, kernel=(3, 3), stride=(2, 2), pad=(1, 1), pool_type='max')
    for i, n in enumerate(units):
        s = 1 if i == 0 else 2
        body = residual_unit(body, filter_list[i + 1], (s, s), False,
                             name='stage%d_unit%d' % (i + 1, 1), bn_mom=bn_mom,
                             workspace=workspace, memonger=memonger)
        for j in range(n - 1):
            body = residual_unit(body, filter_list[i + 1], (1, 1), True,
                                 name='stage%d_unit%d' % (i + 1, j + 2), bn_mom=bn_mom,
                                 workspace=workspace, memonger=memonger)
    bn1 = mx.sym.BatchNorm(data=body, fix_gamma=False, eps=2e-5, momentum=bn_mom, name='bn1')
    relu1 = mx.sym.Activation(data=bn1, act_type='relu', name='relu1')
    pool1 = mx.sym.Pooling(data=relu1, global_pool=True, kernel=(7, 7), pool_type='avg',
                           name='pool1')
    flat = mx.sym.Flatten(data=pool1)
    fc1 = mx.sym.FullyConnected(data=flat, num_hidden=num_classes, name='fc1')
    return mx.sym.SoftmaxOutput(data=fc1, name='softmax')


# -- the LSTM of examples/lstm.py, in mx.sym ---------------------------------------------------

LSTMParam = namedtuple("LSTMParam", "i2h_weight i2h_bias h2h_weight h2h_bias")


def lstm_cell(num_hidden, x, c, h, param, name, attr):
    """One step: returns (next_c, next_h); gate order input, transform, forget, output."""
    i2h = mx.sym.FullyConnected(x, weight=param.i2h_weight, bias=param.i2h_bias,
                                num_hidden=4 * num_hidden, name=name + "_i2h")
    h2h = mx.sym.FullyConnected(h, weight=param.h2h_weight, bias=param.h2h_bias,
                                num_hidden=4 * num_hidden, name=name + "_h2h")
    gates = mx.sym.SliceChannel(mx.sym.elemwise_add(i2h, h2h, name=name + "_gates"),
                                num_outputs=4, name=name + "_slice")
    in_gate = mx.sym.Activation(gates[0], act_type="sigmoid", name=name + "_in_gate")
    in_transform = mx.sym.Activation(gates[1], act_type="tanh", name=name + "_in_transform")
    forget_gate = mx.sym.Activation(gates[2], act_type="sigmoid", name=name + "_forget_gate")
    out_gate = mx.sym.Activation(gates[3], act_type="sigmoid", name=name + "_out_gate")
    next_c = mx.sym.elemwise_add(mx.sym.elemwise_mul(forget_gate, c, name=name + "_fc"),
                                 mx.sym.elemwise_mul(in_gate, in_transform, name=name + "_ig"),
                                 name=name + "_c", attr=attr)
    c_tanh = mx.sym.Activation(next_c, act_type="tanh", name=name + "_c_tanh")
    next_h = mx.sym.elemwise_mul(out_gate, c_tanh, name=name + "_h", attr=attr)
    return next_c, next_h


def lstm(seq_len, num_layers=4, num_hidden=1024, num_label=5000):
    """A group of ``seq_len`` per-step losses, names as in examples/lstm.py."""
    embed_weight = mx.sym.Variable("embed_weight")
    cls_weight, cls_bias = mx.sym.Variable("cls_weight"), mx.sym.Variable("cls_bias")
    params = [LSTMParam(*(mx.sym.Variable("l%d_%s" % (i, k)) for k in LSTMParam._fields))
              for i in range(num_layers)]
    states = [(mx.sym.Variable("l%d_init_c" % i), mx.sym.Variable("l%d_init_h" % i))
              for i in range(num_layers)]
    losses = []
    for t in range(seq_len):
        attr = {"mirror_stage": str(t)}
        hidden = mx.sym.FullyConnected(mx.sym.Variable("t%d_data" % t), weight=embed_weight,
                                       num_hidden=num_hidden, no_bias=True, name="t%d_embed" % t)
        for i in range(num_layers):
            c, h = lstm_cell(num_hidden, hidden, *states[i], params[i], "t%d_l%d" % (t, i), attr)
            states[i] = (c, h)
            hidden = h
        fc = mx.sym.FullyConnected(hidden, weight=cls_weight, bias=cls_bias,
                                   num_hidden=num_label, name="t%d_cls" % t)
        ce = mx.sym.softmax_cross_entropy(fc, mx.sym.Variable("t%d_label" % t), name="t%d_ce" % t)
        losses.append(mx.sym.MakeLoss(ce, name="t%d_loss" % t))
    return mx.sym.Group(losses)


# -- measuring ---------------------------------------------------------------------------------

def build(net):
    """``(symbol, input shapes)`` for a name in NETS."""
    kind, size = NETS[net]
    if kind == "resnet":
        return resnet(size), {"data": (32, 3, 224, 224), "softmax_label": (32,)}
    shapes = {"t%d_data" % t: (64, 50) for t in range(size)}
    shapes.update({"t%d_label" % t: (64,) for t in range(size)})
    shapes.update({"l%d_init_%s" % (i, k): (64, 1024) for i in range(4) for k in "ch"})
    return lstm(size), shapes


def planned_mib(net):
    """MXNet's "Total N MB allocated" for ``net`` under the current environment."""
    symbol, shapes = build(net)
    reqs = {a: "null" if a in shapes else "write" for a in symbol.list_arguments()}
    exe = symbol.simple_bind(mx.cpu(), grad_req=reqs, **shapes)
    text = exe.debug_str()
    found = re.findall(r"Total (\d+) MB allocated", text)
    if not found:
        raise RuntimeError("no 'Total N MB allocated' line in debug_str()")
    return int(found[-1])


def measure_in_subprocess(net, setting):
    """Run ``--measure`` in a fresh interpreter with the setting's environment."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("MXNET_BACKWARD_DO_MIRROR", "NNVM_EXEC_MATCH_RANGE")}
    env.update(SETTINGS[setting])
    res = subprocess.run([sys.executable, os.path.abspath(__file__), "--measure", net],
                         env=env, capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError(f"{net} ({setting}) failed:\n{res.stderr[-2000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])["mib"]


def shape_record(symbol, shapes):
    """Names and shapes as MXNet infers them, for the sidecar file."""
    args, outs, aux = symbol.infer_shape(**shapes)
    return {"input_shapes": {k: list(v) for k, v in shapes.items()},
            "arguments": [[n, list(s)] for n, s in zip(symbol.list_arguments(), args)],
            "auxiliary_states": [[n, list(s)] for n, s in
                                 zip(symbol.list_auxiliary_states(), aux)],
            "outputs": [[n, list(s)] for n, s in zip(symbol.list_outputs(), outs)]}


def save_jsons(nets, out_dir, max_mib):
    """Save the JSON of every net that fits, and the shapes sidecar; return (saved, skipped)."""
    os.makedirs(out_dir, exist_ok=True)
    sidecar, saved, skipped = {}, [], []
    for net in nets:
        symbol, shapes = build(net)
        text = symbol.tojson()
        size = len(text.encode()) / 2 ** 20
        if size > max_mib:
            skipped.append({"net": net, "json_mib": round(size, 2)})
            continue
        with open(os.path.join(out_dir, net + ".json"), "w") as f:
            f.write(text)
        sidecar[net] = {"file": net + ".json", **shape_record(symbol, shapes)}
        saved.append({"net": net, "json_mib": round(size, 2)})
    with open(os.path.join(out_dir, "shapes.json"), "w") as f:
        f.write(_dump_sidecar({"mxnet_version": mx.__version__, "nets": sidecar}))
    return saved, skipped


def _dump_sidecar(doc):
    """Indented JSON with each shape and each ``[name, shape]`` pair on one line."""
    text = json.dumps(doc, indent=1)
    text = re.sub(r"\[[-\d,\s]*\]", lambda m: json.dumps(json.loads(m.group(0))), text)
    text = re.sub(r'\[\s*("[^"]*"),\s*(\[[-\d, ]*\])\s*\]', r"[\1, \2]", text)
    return text + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nets", default=",".join(NETS), help="comma-separated, from NETS")
    parser.add_argument("--out-dir", default=os.path.join(ROOT, "bench", "mxnet_nets"))
    parser.add_argument("--max-json-mib", type=float, default=1.0)
    parser.add_argument("--no-save", action="store_true", help="measure only")
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps({"net": args.measure, "mib": planned_mib(args.measure)}))
        return
    nets = [n for n in args.nets.split(",") if n]
    unknown = [n for n in nets if n not in NETS]
    if unknown:
        parser.error(f"unknown nets {unknown}; choose from {list(NETS)}")
    rows = []
    for net in nets:
        row = {"net": net}
        for setting in SETTINGS:
            row[setting + "_mib"] = measure_in_subprocess(net, setting)
        row["reference_mib"] = dict(zip(SETTINGS, REFERENCE[net]))
        rows.append(row)
        print(json.dumps(row), file=sys.stderr)
    report = {"mxnet_version": mx.__version__, "device": "cpu",
              "features": [f for f in ("CUDA", "CUDNN", "MKLDNN", "OPENMP")
                           if mx.runtime.Features().is_enabled(f)],
              "results": rows}
    if not args.no_save:
        report["saved"], report["skipped"] = save_jsons(nets, args.out_dir, args.max_json_mib)
        with open(os.path.join(args.out_dir, "oracle.json"), "w") as f:
            f.write(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
