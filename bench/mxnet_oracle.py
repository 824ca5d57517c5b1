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

Our own MXNet-style networks (``bench/mxnet_compare.py`` plans their saved JSON with this
framework and prints the ratios):

* ``vgg16_max_pool``: VGG-16 as in MXNet's ``example/image-classification/symbols/vgg.py``
  without batch norm (13 3x3 Convolution + ReLU layers, five 2x2/2 max Pooling, FC 4096 - ReLU -
  Dropout(0.5) twice, FC 1000, SoftmaxOutput), batch 32 at 224x224;
* ``mlp_dropout``: 4096 inputs, three FC 4096 - ReLU - Dropout(0.5) layers, FC 1000,
  SoftmaxOutput, batch 512;
* ``resnet_post_66_units``: the post-activation bottleneck ResNet of the mxnet-memonger
  ``example_resnet.py`` (Conv - BN - act modules, a projection module on each stage's first
  unit, ``sum = shortcut + conv3`` with no activation after it, ``mirror_stage='True'`` on each
  unit's input, the 7x7/2 stem and a 3x3/2 max pool without padding, 7x7 avg pool, FC 1000)
  with ReLU (``Activation``) as the act instead of the example's ``LeakyReLU(act_type='leaky')``,
  64 base filters, units (3, 24, 36, 3) = 66 units, 200 layers, batch 32 at 224x224.

Each symbol's JSON (MXNet's own ``tojson()`` text) is saved in ``bench/mxnet_nets/<net>.json``
when it is at most ``--max-json-mib`` (default 1 MiB, to stay commit-sized), and
``bench/mxnet_nets/shapes.json`` records, per saved net, the input shapes and MXNet's
``infer_shape`` result (argument, auxiliary-state and output names with shapes). The tests load
these files into this framework's Symbol and compare. The printed report is also written to
``bench/mxnet_nets/oracle.json``, so the planned MiB can be compared without MXNet. Both files
are merged by net: a run over some nets replaces those nets' rows and JSON records and keeps
the others' (``--nets vgg16_max_pool`` does not drop the ResNet measured earlier).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
from collections import namedtuple
from typing import Any

import mxnet as mx

NETS: dict[str, tuple[str, Any]] = {
    "resnet_66_units": ("resnet", (3, 24, 36, 3)),
    "resnet_333_units": ("resnet", (3, 131, 196, 3)),
    "lstm_50_steps": ("lstm", 50),
    "lstm_200_steps": ("lstm", 200),
    "vgg16_max_pool": ("vgg", (2, 2, 3, 3, 3)),
    "mlp_dropout": ("mlp", (4096, 4096, 4096)),
    "resnet_post_66_units": ("resnet_post", (3, 24, 36, 3)),
}
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


# -- our own MXNet-style nets: VGG-16, an MLP with Dropout, a post-activation ResNet ----------

def vgg(layers, filters=(64, 128, 256, 512, 512), num_classes=1000):
    """VGG (MXNet's example symbols/vgg.py, no batch norm): conv3x3-ReLU blocks, 2x2/2 max pool
    after each block, then FC 4096 - ReLU - Dropout twice and the classifier."""
    body = mx.sym.Variable("data")
    for i, (num, num_filter) in enumerate(zip(layers, filters)):
        for j in range(num):
            body = mx.sym.Convolution(body, kernel=(3, 3), pad=(1, 1), num_filter=num_filter,
                                      name="conv%d_%d" % (i + 1, j + 1))
            body = mx.sym.Activation(body, act_type="relu", name="relu%d_%d" % (i + 1, j + 1))
        body = mx.sym.Pooling(body, pool_type="max", kernel=(2, 2), stride=(2, 2),
                              name="pool%d" % (i + 1))
    body = mx.sym.Flatten(body, name="flatten")
    for k in (6, 7):
        body = mx.sym.FullyConnected(body, num_hidden=4096, name="fc%d" % k)
        body = mx.sym.Activation(body, act_type="relu", name="relu%d" % k)
        body = mx.sym.Dropout(body, p=0.5, name="drop%d" % k)
    body = mx.sym.FullyConnected(body, num_hidden=num_classes, name="fc8")
    return mx.sym.SoftmaxOutput(body, name="softmax")


def mlp(hidden, num_classes=1000):
    """FC - ReLU - Dropout(0.5) per hidden layer, then the classifier."""
    body = mx.sym.Variable("data")
    for i, num in enumerate(hidden):
        body = mx.sym.FullyConnected(body, num_hidden=num, name="fc%d" % (i + 1))
        body = mx.sym.Activation(body, act_type="relu", name="relu%d" % (i + 1))
        body = mx.sym.Dropout(body, p=0.5, name="drop%d" % (i + 1))
    body = mx.sym.FullyConnected(body, num_hidden=num_classes, name="fc%d" % (len(hidden) + 1))
    return mx.sym.SoftmaxOutput(body, name="softmax")


def conv_module(data, num_filter, kernel, pad=(0, 0), stride=(1, 1), name=None):
    """Conv - BN - ReLU (mxnet-memonger's ConvModule, with ReLU for its LeakyReLU)."""
    conv = mx.sym.Convolution(data, kernel=kernel, stride=stride, pad=pad,
                              num_filter=num_filter, name=name + "_conv")
    bn = mx.sym.BatchNorm(conv, fix_gamma=True, name=name + "_bn")
    return mx.sym.Activation(bn, act_type="relu", name=name + "_relu")


def res_module(data, base_filter, stage, layer):
    """A post-activation bottleneck unit (mxnet-memonger's ResModule)."""
    num_f = base_filter * 2 ** stage
    s = 2 if stage != 0 and layer == 0 else 1
    name = "stage%d_unit%d" % (stage + 1, layer + 1)
    conv1 = conv_module(data, num_f, (1, 1), name=name + "_1")
    conv2 = conv_module(conv1, num_f, (3, 3), pad=(1, 1), stride=(s, s), name=name + "_2")
    conv3 = conv_module(conv2, num_f * 4, (1, 1), name=name + "_3")
    shortcut = data
    if layer == 0:
        shortcut = conv_module(data, num_f * 4, (1, 1), stride=(s, s), name=name + "_sc")
    data._set_attr(mirror_stage="True")
    return mx.sym.elemwise_add(shortcut, conv3, name=name + "_sum")


def resnet_post(units, base_filter=64, num_classes=1000):
    """mxnet-memonger's example_resnet.get_symbol (post-activation, 4 stages)."""
    data = mx.sym.Variable("data")
    body = conv_module(data, base_filter, (7, 7), pad=(3, 3), stride=(2, 2), name="stem")
    body = mx.sym.Pooling(body, pool_type="max", kernel=(3, 3), stride=(2, 2), name="pool0")
    for stage, num in enumerate(units):
        for layer in range(num):
            body = res_module(body, base_filter, stage, layer)
    body = mx.sym.Pooling(body, kernel=(7, 7), stride=(1, 1), pool_type="avg",
                          name="global_pool")
    body = mx.sym.Flatten(body, name="flatten")
    body = mx.sym.FullyConnected(body, num_hidden=num_classes, name="fc1")
    return mx.sym.SoftmaxOutput(body, name="softmax")


# -- measuring ---------------------------------------------------------------------------------

def build(net):
    """``(symbol, input shapes)`` for a name in NETS."""
    kind, size = NETS[net]
    image = {"data": (32, 3, 224, 224), "softmax_label": (32,)}
    if kind == "resnet":
        return resnet(size), image
    if kind == "resnet_post":
        return resnet_post(size), image
    if kind == "vgg":
        return vgg(size), image
    if kind == "mlp":
        return mlp(size), {"data": (512, 4096), "softmax_label": (512,)}
    shapes: dict[str, tuple[int, ...]] = {"t%d_data" % t: (64, 50) for t in range(size)}
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
    """Save the JSON of every net that fits, and merge their records into the shapes sidecar
    (records of other nets are kept); return (saved, skipped)."""
    os.makedirs(out_dir, exist_ok=True)
    sidecar = _read_json(os.path.join(out_dir, "shapes.json")).get("nets", {})
    saved, skipped = [], []
    for net in nets:
        symbol, shapes = build(net)
        text = symbol.tojson()
        size = len(text.encode()) / 2 ** 20
        if size > max_mib:
            skipped.append({"net": net, "json_mib": round(size, 2)})
            sidecar.pop(net, None)
            continue
        with open(os.path.join(out_dir, net + ".json"), "w") as f:
            f.write(text)
        sidecar[net] = {"file": net + ".json", **shape_record(symbol, shapes)}
        saved.append({"net": net, "json_mib": round(size, 2)})
    with open(os.path.join(out_dir, "shapes.json"), "w") as f:
        f.write(_dump_sidecar({"mxnet_version": mx.__version__, "nets": sidecar}))
    return saved, skipped


def _read_json(path):
    """The document at ``path``, or ``{}`` when there is none."""
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        return json.load(f)


def _merge_rows(old, new):
    """``old`` rows (dicts with a "net" key) with those of ``new``'s nets replaced in place and
    new nets appended."""
    fresh = {r["net"]: r for r in new}
    merged = [fresh.pop(r["net"], r) for r in old]
    return merged + [r for r in new if r["net"] in fresh]


def merge_report(path, report):
    """``report`` merged into the oracle file at ``path``: rows, saved and skipped by net."""
    old = _read_json(path)
    out = dict(report)
    for key in ("results", "saved", "skipped"):
        rows = _merge_rows(old.get(key, []), report.get(key, []))
        if key != "results":  # a net is either saved or skipped
            other = {r["net"] for r in report.get("skipped" if key == "saved" else "saved", [])}
            rows = [r for r in rows if r["net"] not in other]
        out[key] = rows
    return out


def _dump_sidecar(doc):
    """Indented JSON with each shape and each ``[name, shape]`` pair on one line."""
    text = json.dumps(doc, indent=1)
    text = re.sub(r"\[[-\d,\s]*\]", lambda m: json.dumps(json.loads(m.group(0))), text)
    text = re.sub(r'\[\s*("[^"]*"),\s*(\[[-\d, ]*\])\s*\]', r"[\1, \2]", text)
    return text + "\n"


def machine():
    """Where the numbers were measured (MXNet's plan does not depend on it, the record does)."""
    model = ""
    if os.path.exists("/proc/cpuinfo"):
        with open("/proc/cpuinfo") as f:
            model = next((line.split(":", 1)[1].strip() for line in f
                          if line.startswith("model name")), "")
    return {"platform": platform.platform(), "cpu": model or platform.processor(),
            "cpus": os.cpu_count(), "python": platform.python_version()}


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
    rows, where = [], machine()
    for net in nets:
        row = {"net": net}
        for setting in SETTINGS:
            row[setting + "_mib"] = measure_in_subprocess(net, setting)
        if net in REFERENCE:
            row["reference_mib"] = dict(zip(SETTINGS, REFERENCE[net]))
        row["machine"] = where
        rows.append(row)
        print(json.dumps(row), file=sys.stderr)
    report = {"mxnet_version": mx.__version__, "device": "cpu",
              "features": [f for f in ("CUDA", "CUDNN", "MKLDNN", "OPENMP")
                           if mx.runtime.Features().is_enabled(f)],
              "results": rows}
    if not args.no_save:
        report["saved"], report["skipped"] = save_jsons(nets, args.out_dir, args.max_json_mib)
        path = os.path.join(args.out_dir, "oracle.json")
        report = merge_report(path, report)
        with open(path, "w") as f:
            f.write(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
