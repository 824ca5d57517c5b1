"""MXNet 1.x symbol JSON: read it (``load_json``/``fromjson``) and write it (``Symbol.tojson``).

The document (NNVM's ``SaveJSON``)::

    {"nodes": [{"op": "null", "name": "data", "inputs": []},
               {"op": "FullyConnected", "name": "fc1", "attrs": {"num_hidden": "10"},
                "inputs": [[0, 0, 0], [1, 0, 0], [2, 0, 0]]}, ...],
     "arg_nodes": [0, 1, 2], "node_row_ptr": [0, 1, 2, 3, 4], "heads": [[3, 0, 0]],
     "attrs": {"mxnet_version": ["int", 10901]}}

``inputs``/``heads`` are ``[node, output, version]`` (``version`` optional, ignored); a node may
read only earlier nodes. Attribute values are strings. MXNet 1.0+ writes ``attrs``; 0.9 wrote
``attr``; 0.8 split ``param`` (op parameters) from ``attr`` (user attributes). All three are
read and merged (one key with two different values is an error).

Attribute rules, import (MXNet -> here) and export (here -> MXNet)
------------------------------------------------------------------
1. **Operator parameters** (the op's ``Param`` names) are op attributes both ways.
2. **MXNet-only parameters** (:data:`MXNET_ONLY_ATTRS`): parameters MXNet 1.9 declares for a
   supported op that this framework has no ``Param`` for. They are dropped on import when they
   cannot change the result (``workspace``-like hints, ``is_int``, calibration ranges), or only
   at their default value (``output_mean_var=False``); any other value is an error naming the op
   and the node. (``workspace``, ``cudnn_tune``, ``cudnn_off`` are ``Param``\\ s here already:
   accepted and ignored by the kernels.)
3. **MXNet's hidden keys** (:data:`HIDDEN_KEYS`, MXNet's ``kHiddenKeys``): users set them plainly
   (``AttrScope(mirror_stage='True')``) and MXNet *stores* them as ``__key__``. Import gives each
   the spelling this framework reads: ``mirror_stage``, ``ctx_group`` and ``profiler_scope`` are
   plain here (``__mirror_stage__`` -> ``mirror_stage``); ``__force_mirroring__``,
   ``__lr_mult__`` and ``__wd_mult__`` keep their dunder names, which are their real names here
   (the mirror planner reads ``__force_mirroring__``; ``Variable(lr_mult=...)`` writes
   ``__lr_mult__``). Export writes the plain ones back as ``__key__``, so MXNet (whose parameter
   parser rejects plain unknown keys on operators) loads the file and round trips are exact.
   Files older than this format (no ``mxnet_version``, or older than 1.9.1) also get MXNet's
   own upgrade: plain ``force_mirroring``/``lr_mult``/``wd_mult`` become dunder keys.
4. **Other ``__key__`` attributes** (``__shape__``, ``__init__``, ``__foo__``) are kept verbatim
   both ways, except the value of ``__dtype__``: MXNet stores a type code (``"0"``), this
   framework a name (``"float32"``); :data:`DTYPE_CODES` converts both ways.
5. **Other plain keys**: on variables, user attributes kept verbatim. On operators MXNet allows
   none (its parser fails with "Cannot find argument"), so import reports them as unknown
   attributes, and export refuses a plain user attribute on an operator (name it ``__key__``).

Operator names: the registry's names and aliases, plus the names older MXNet versions wrote
(:data:`MXNET_OP_ALIASES`, ``_Plus``...). Unknown operators are reported together in one
:class:`OpError`. Output indices may name only *visible* outputs (MXNet's graphs never read a
hidden one, and hidden outputs differ: MXNet's BatchNorm hides ``(mean, var)``, this one
``(mean, invstd)``), so visible indices map one to one. ``node_row_ptr`` (cumulative output
counts) is checked for form only: it depends on the MXNet build (max ``Pooling`` has a hidden
MKLDNN workspace output in pip wheels, none otherwise); export writes this registry's counts.
Malformed documents raise :class:`GraphError` naming the file and the node.
"""
from __future__ import annotations

import difflib
import json
import os
from typing import Any, Callable, Mapping

from .errors import AttrError, GraphError, OpError, SymbolError
from .graph import VARIABLE, Entry, Graph, Node, make_node, make_variable
from .registry import OpDef, all_names, get_op

__all__ = ["MXNET_VERSION", "MXNET_OP_ALIASES", "MXNET_ONLY_ATTRS", "HIDDEN_KEYS", "DTYPE_CODES",
           "read_source", "read_json", "write_json"]

#: The version written into ``attrs.mxnet_version`` (MXNet 1.9.1).
MXNET_VERSION = 10901

#: Op names written by older MXNet versions that are not registry aliases. They stay out of the
#: registry on purpose: only old files use them, and ``sym._Plus`` should not be API.
MXNET_OP_ALIASES: Mapping[str, str] = {
    "_Plus": "elemwise_add", "_Mul": "elemwise_mul", "_PlusScalar": "_plus_scalar",
    "_MulScalar": "_mul_scalar", "_RMinusScalar": "_rminus_scalar",
}

#: MXNet's hidden keys -> the spelling this framework uses (rule 3 of the module docstring).
HIDDEN_KEYS: Mapping[str, str] = {
    "mirror_stage": "mirror_stage", "ctx_group": "ctx_group", "profiler_scope": "profiler_scope",
    "force_mirroring": "__force_mirroring__", "lr_mult": "__lr_mult__", "wd_mult": "__wd_mult__",
}

#: MXNet's ``__dtype__`` codes (``mshadow::TypeFlag``) -> dtype names.
DTYPE_CODES: Mapping[str, str] = {
    "0": "float32", "1": "float64", "2": "float16", "3": "uint8", "4": "int32", "5": "int8",
    "6": "int64", "7": "bool", "8": "int16", "9": "uint16", "10": "uint32", "11": "uint64",
    "12": "bfloat16",
}
_DTYPE_NAMES = {name: code for code, name in DTYPE_CODES.items()}


def _any(value: str) -> bool:
    return True


def _false(value: str) -> bool:
    return value.strip().lower() in ("false", "0")


def _empty(value: str) -> bool:
    return value.strip() in ("", "()", "[]")


def _nchw(value: str) -> bool:
    return value.strip() in ("None", "NCHW")


#: Rule 2: op -> MXNet parameter -> (accepted values, what they are). MXNet 1.9.1's parameter
#: lists for the supported ops, minus the ``Param``\ s this framework declares.
MXNET_ONLY_ATTRS: Mapping[str, Mapping[str, tuple[Callable[[str], bool], str]]] = {
    "BatchNorm": {"output_mean_var": (_false, "False (the batch statistics are hidden here)"),
                  "min_calib_range": (_any, "any (quantisation only)"),
                  "max_calib_range": (_any, "any (quantisation only)")},
    "LeakyReLU": {"lower_bound": (_any, "any (rrelu only)"),
                  "upper_bound": (_any, "any (rrelu only)")},
    "Pooling": {"p_value": (_any, "any (lp pooling only)"), "layout": (_nchw, "None or NCHW")},
    "Reshape": {"target_shape": (_empty, "() (deprecated; use shape)"),
                "keep_highest": (_false, "False (deprecated)")},
    "_plus_scalar": {"is_int": (_any, "any")},
    "_mul_scalar": {"is_int": (_any, "any")},
    "_rminus_scalar": {"is_int": (_any, "any")},
}

Row = Mapping[str, Any]


def _is_dunder(key: str) -> bool:
    return len(key) > 4 and key.startswith("__") and key.endswith("__")


# -- reading ----------------------------------------------------------------------------------

def read_source(json_str_or_path: str | os.PathLike[str]) -> tuple[str, str]:
    """``(text, source name)`` for ``load_json``: JSON text as is, anything else read as a file.

    Raises:
        SymbolError: the file cannot be read.
    """
    if isinstance(json_str_or_path, str) and json_str_or_path.lstrip()[:1] in ("{", "["):
        return json_str_or_path, "<string>"
    path = os.fspath(json_str_or_path)
    try:
        with open(path, encoding="utf-8") as f:
            return f.read(), path
    except (OSError, UnicodeDecodeError) as e:
        reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        raise SymbolError(f"cannot read MXNet symbol JSON file '{path}': {reason} (load_json "
                          "takes a JSON string or a file path)") from None


def read_json(text: str, *, source: str = "<string>") -> tuple[Entry, ...]:
    """The output entries (``heads``) of an MXNet symbol JSON document.

    Args:
        text: the document.
        source: the file name used in error messages.

    Raises:
        GraphError: not JSON, or not a well-formed symbol document (missing keys, bad indices).
        OpError: unknown operators (all of them in one message), wrong number of inputs.
        AttrError: unknown, unsupported or ill-typed attributes (naming the op and the node).
    """
    return _Reader(_parse_document(text, source), source).heads()


def _parse_document(text: str, source: str) -> dict[str, Any]:
    """The JSON object, with its required keys present."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise GraphError(f"{source}:{e.lineno}:{e.colno}: not an MXNet symbol JSON document: "
                         f"invalid JSON ({e.msg})") from None
    except (ValueError, RecursionError) as e:
        raise GraphError(f"{source}: not an MXNet symbol JSON document ({e})") from None
    if not isinstance(doc, dict):
        raise GraphError(f"{source}: not an MXNet symbol JSON document: expected an object "
                         f"with 'nodes' and 'heads', got {type(doc).__name__}")
    missing = [k for k in ("nodes", "heads") if k not in doc]
    if missing:
        raise GraphError(f"{source}: not an MXNet symbol JSON document: missing key "
                         + " and ".join(f"'{k}'" for k in missing))
    return doc


def _mxnet_version(doc: Mapping[str, Any]) -> int | None:
    """``attrs.mxnet_version`` (``["int", 10901]``), or None when absent or malformed."""
    attrs = doc.get("attrs")
    value = attrs.get("mxnet_version") if isinstance(attrs, dict) else None
    if isinstance(value, list) and len(value) == 2 and isinstance(value[1], int):
        return value[1]
    return None


class _Reader:
    """Builds the graph of one document, node by node, with located error messages."""

    def __init__(self, doc: Mapping[str, Any], source: str) -> None:
        self.doc, self.source = doc, source
        version = _mxnet_version(doc)
        self.legacy = version is None or version < MXNET_VERSION  # MXNet's FixParsing upgrade
        self.rows = self._rows()
        self.nodes: list[Node] = []

    def fail(self, message: str, cls: type[SymbolError] = GraphError) -> SymbolError:
        """An error of class ``cls`` prefixed with the source name (raise it)."""
        return cls(f"{self.source}: {message}")

    def where(self, i: int) -> str:
        """``node 3 ('fc1')``."""
        return f"node {i} ('{self.rows[i]['name']}')"

    # step 1: document structure
    def _rows(self) -> list[Row]:
        rows = self.doc["nodes"]
        if not isinstance(rows, list) or not rows:
            raise self.fail("'nodes' must be a non-empty list of node objects")
        for i, row in enumerate(rows):
            if not isinstance(row, dict):
                raise self.fail(f"node {i} is not an object")
            for key in ("op", "name"):
                if not isinstance(row.get(key), str) or not row[key]:
                    raise self.fail(f"node {i} needs a non-empty string '{key}'")
        return rows

    def heads(self) -> tuple[Entry, ...]:
        """Check the document, build every node in order, return the head entries."""
        self._check_ops()
        self._check_index_lists()
        heads = self.doc["heads"]
        if not isinstance(heads, list) or not heads:
            raise self.fail("'heads' must be a non-empty list of [node, output, version]")
        names: dict[str, int] = {}
        for i, row in enumerate(self.rows):
            if row["name"] in names:
                raise self.fail(f"nodes {names[row['name']]} and {i} are both named "
                                f"'{row['name']}'")
            names[row["name"]] = i
            self.nodes.append(self._node(i, row))
        return tuple(self._entry(ref, f"head {k}", len(self.nodes))
                     for k, ref in enumerate(heads))

    def _check_ops(self) -> None:
        """One OpError listing every operator the registry does not know, with its nodes."""
        unknown: dict[str, list[str]] = {}
        for row in self.rows:
            if row["op"] != VARIABLE and self._opdef(row["op"]) is None:
                unknown.setdefault(row["op"], []).append(row["name"])
        if unknown:
            s = "s" if len(unknown) > 1 else ""
            listed = ", ".join(_describe_unknown(op, nodes) for op, nodes in unknown.items())
            raise OpError(f"unknown MXNet operator{s} in {self.source}: {listed}")

    @staticmethod
    def _opdef(op: str) -> OpDef | None:
        try:
            opdef = get_op(MXNET_OP_ALIASES.get(op, op))
        except OpError:
            return None
        return None if opdef.is_backward else opdef

    def _check_index_lists(self) -> None:
        """``arg_nodes`` name variables; ``node_row_ptr`` has the form of cumulative counts."""
        args = self.doc.get("arg_nodes", [])
        n = len(self.rows)
        if not isinstance(args, list) or not all(_is_int(a) and 0 <= a < n for a in args):
            raise self.fail(f"'arg_nodes' must list node indices in 0..{n - 1}")
        for a in args:
            if self.rows[a]["op"] != VARIABLE:
                raise self.fail(f"'arg_nodes' lists {self.where(a)}, which is not a variable "
                                f"(op '{self.rows[a]['op']}')")
        ptr = self.doc.get("node_row_ptr")
        if ptr is not None and not (
                isinstance(ptr, list) and len(ptr) == n + 1 and all(_is_int(p) for p in ptr)
                and ptr[0] == 0 and all(a <= b for a, b in zip(ptr, ptr[1:]))):
            raise self.fail(f"'node_row_ptr' must be {n + 1} non-decreasing integers from 0")

    # step 2: one node
    def _node(self, i: int, row: Row) -> Node:
        refs = row.get("inputs", [])
        if not isinstance(refs, list):
            raise self.fail(f"{self.where(i)}: 'inputs' must be a list")
        inputs = [self._entry(ref, f"{self.where(i)} input {k}", i) for k, ref in enumerate(refs)]
        attrs = self._merged_attrs(i, row)
        if row["op"] == VARIABLE:
            if inputs:
                raise self.fail(f"{self.where(i)}: a variable (op 'null') has no inputs")
            return make_variable(row["name"], self._user_attrs(i, attrs, variable=True))
        opdef = self._opdef(row["op"])
        assert opdef is not None  # _check_ops ran first
        op_attrs, user = self._split(i, opdef, attrs)
        try:
            return make_node(opdef, row["name"], inputs, attrs=op_attrs, user_attrs=user)
        except (AttrError, OpError) as e:
            raise self.fail(str(e), type(e)) from None

    def _entry(self, ref: Any, what: str, limit: int) -> Entry:
        """``[node, output(, version)]`` -> Entry; the node must come before ``limit``."""
        if not (isinstance(ref, list) and len(ref) in (2, 3) and all(_is_int(x) for x in ref)):
            raise self.fail(f"{what}: expected [node, output, version] (integers), got "
                            f"{json.dumps(ref)}")
        j, k = ref[0], ref[1]
        if not 0 <= j < limit:
            why = ("comes later (inputs must refer to earlier nodes)" if 0 <= j < len(self.rows)
                   else "does not exist")
            raise self.fail(f"{what} refers to node {j}, which {why}")
        node = self.nodes[j]
        visible = 1 if node.is_variable else node.opdef.visible_outputs(node.params)
        if not 0 <= k < node.num_outputs:
            raise self.fail(f"{what} reads output {k} of {self.where(j)}, which has "
                            f"{visible} output{'s' if visible > 1 else ''}")
        if k >= visible:
            hidden = node.opdef.list_outputs(node.params)[k]
            raise self.fail(f"{what} reads output {k} ('{hidden}') of {self.where(j)}, a hidden "
                            f"output of {node.op}, which shows {visible} output(s) here")
        return Entry(node, k)

    # step 3: attributes
    def _merged_attrs(self, i: int, row: Row) -> dict[str, str]:
        merged: dict[str, str] = {}
        for field in ("param", "attr", "attrs"):
            part = row.get(field, {})
            if not isinstance(part, dict):
                raise self.fail(f"{self.where(i)}: '{field}' must be an object of strings")
            for k, v in part.items():
                if not isinstance(v, str):
                    raise self.fail(f"{self.where(i)}: attribute {k}={json.dumps(v)} must be a "
                                    "string (MXNet writes every attribute as a string)")
                if merged.get(k, v) != v:
                    raise self.fail(f"{self.where(i)}: attribute '{k}' has two values, "
                                    f"{merged[k]!r} and {v!r}")
                merged[k] = v
        return merged

    def _split(self, i: int, opdef: OpDef, attrs: Mapping[str, str]
               ) -> tuple[dict[str, str], dict[str, str]]:
        """Rules 1, 2 and 5: op attributes, dropped MXNet-only ones, user attributes."""
        ops: dict[str, str] = {}
        user: dict[str, str] = {}
        extra = MXNET_ONLY_ATTRS.get(opdef.name, {})
        for k, v in attrs.items():
            if opdef.param(k) is not None:
                ops[k] = v
            elif k in extra:
                accepted, expected = extra[k]
                if not accepted(v):
                    raise self.fail(f"operator '{self.rows[i]['name']}' ({opdef.name}): MXNet "
                                    f"attribute {k}={v!r} is not supported (accepted: "
                                    f"{expected})", AttrError)
            elif self._is_user_key(k):
                user[k] = v
            else:
                raise self.fail(self._unknown_attr(i, opdef, k), AttrError)
        if opdef.variadic:
            self._check_num_args(i, opdef, ops.pop("num_args", None))
        return ops, self._user_attrs(i, user, variable=False)

    def _is_user_key(self, key: str) -> bool:
        if _is_dunder(key) or HIDDEN_KEYS.get(key) == key:
            return True
        # MXNet's FixParsing keeps legacy per-argument keys such as weight_lr_mult verbatim
        return self.legacy and (key in HIDDEN_KEYS
                                or any(key.endswith("_" + h) for h in HIDDEN_KEYS))

    def _unknown_attr(self, i: int, opdef: OpDef, key: str) -> str:
        names = [p.name for p in opdef.params] + list(MXNET_ONLY_ATTRS.get(opdef.name, {}))
        hint = difflib.get_close_matches(key, names, n=1)
        return (f"operator '{self.rows[i]['name']}' ({opdef.name}): unknown attribute '{key}'"
                + (f"; did you mean '{hint[0]}'?" if hint else "")
                + f" (valid attributes: {', '.join(names) or 'none'}; a user attribute on an "
                  f"operator is written '__{key}__')")

    def _check_num_args(self, i: int, opdef: OpDef, value: str | None) -> None:
        n = len(self.rows[i].get("inputs", []))
        if value is not None and value.strip() != str(n):
            raise self.fail(f"operator '{self.rows[i]['name']}' ({opdef.name}): num_args="
                            f"{value!r} but the node has {n} inputs", AttrError)

    def _user_attrs(self, i: int, attrs: Mapping[str, str], *, variable: bool) -> dict[str, str]:
        """Rules 3 and 4: hidden keys to this framework's spelling, ``__dtype__`` to a name."""
        out: dict[str, str] = {}
        for key, value in attrs.items():
            name = self._canonical_key(key)
            if variable and name == "__dtype__":
                value = self._dtype_name(i, value)
            if out.get(name, value) != value:
                raise self.fail(f"{self.where(i)}: attributes '{name}' and its MXNet spelling "
                                f"disagree ({out[name]!r} and {value!r})")
            out[name] = value
        return out

    def _canonical_key(self, key: str) -> str:
        if _is_dunder(key) and key[2:-2] in HIDDEN_KEYS:
            return HIDDEN_KEYS[key[2:-2]]
        if self.legacy and key in HIDDEN_KEYS:
            return HIDDEN_KEYS[key]
        return key

    def _dtype_name(self, i: int, value: str) -> str:
        if not value.strip().isdigit():
            return value
        if value.strip() not in DTYPE_CODES:
            raise self.fail(f"{self.where(i)}: unknown MXNet __dtype__ code {value!r} (known: "
                            f"{', '.join(f'{c}={n}' for c, n in DTYPE_CODES.items())})")
        return DTYPE_CODES[value.strip()]


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _describe_unknown(op: str, nodes: list[str]) -> str:
    """``'Crop' (node crop0)``, ``'Crop' (nodes a, b, c and 4 more; did you mean 'X'?)``."""
    shown = ", ".join(nodes[:3]) + (f" and {len(nodes) - 3} more" if len(nodes) > 3 else "")
    label = "node" if len(nodes) == 1 else "nodes"
    hint = _suggest(op)
    return f"'{op}' ({label} {shown}{f'; did you mean {hint!r}?' if hint else ''})"


def _suggest(op: str) -> str | None:
    """A forward op that ``op`` abbreviates or miscases (``Conv`` -> ``Convolution``).

    No fuzzy matching: most unknown names are real MXNet ops (``Deconvolution``,
    ``ROIPooling``), for which a similar-looking op here would be a wrong hint.
    """
    if len(op) < 3:
        return None
    names = sorted((n for n in all_names() if not get_op(n).is_backward), key=len)
    return next((n for n in names if n.lower().startswith(op.lower())), None)


# -- writing ----------------------------------------------------------------------------------

def write_json(graph: Graph) -> str:
    """MXNet 1.x symbol JSON for ``graph`` (one node per line; MXNet 1.9.1 loads it).

    Raises:
        SymbolError: an attribute with no faithful MXNet spelling (module docstring, rule 5).
    """
    nodes = graph.all_nodes
    index = graph.node_index
    rows = [json.dumps(_row(n, index), separators=(", ", ": ")) for n in nodes]
    row_ptr = [0]
    for n in nodes:
        row_ptr.append(row_ptr[-1] + n.num_outputs)
    tail = {"arg_nodes": [i for i, n in enumerate(nodes) if n.is_variable],
            "node_row_ptr": row_ptr,
            "heads": [[index[e.node], e.index, 0] for e in graph.outputs],
            "attrs": {"mxnet_version": ["int", MXNET_VERSION]}}
    lines = [f'  "{k}": {json.dumps(v, separators=(", ", ": "))}' for k, v in tail.items()]
    return "{\n  \"nodes\": [\n    " + ",\n    ".join(rows) + "\n  ],\n" + ",\n".join(lines) + "\n}"


def _row(node: Node, index: Mapping[Node, int]) -> dict[str, Any]:
    row: dict[str, Any] = {"op": node.op, "name": node.name}
    attrs = _export_attrs(node)
    if attrs:
        row["attrs"] = dict(sorted(attrs.items()))
    row["inputs"] = [[index[e.node], e.index, 0] for e in node.inputs]
    return row


def _export_attrs(node: Node) -> dict[str, str]:
    """Rules 1, 3, 4 and 5 in the export direction."""
    out: dict[str, str] = {}
    opdef = None if node.is_variable else node.opdef
    for key, value in node.attrs.items():
        if opdef is not None and opdef.param(key) is not None:
            out[key] = value
            continue
        base = key[2:-2] if _is_dunder(key) else key
        if HIDDEN_KEYS.get(base) == base:  # plain here, __key__ in MXNet
            if key != base:
                raise SymbolError(f"tojson: node '{node.name}' has the attribute '{key}', "
                                  f"MXNet's stored spelling of '{base}'; this framework reads "
                                  f"'{base}', so name it that way")
            key = f"__{key}__"
        elif opdef is not None and not _is_dunder(key):
            raise SymbolError(f"tojson: operator '{node.name}' ({node.op}) has the user "
                              f"attribute '{key}'; MXNet symbol JSON holds only operator "
                              f"parameters and '__key__' attributes on operators (MXNet "
                              f"rejects the file otherwise), so name it '__{key}__'")
        elif node.is_variable and key == "__dtype__":
            value = _dtype_code(node.name, value)
        out[key] = value
    return out


def _dtype_code(name: str, value: str) -> str:
    if value not in _DTYPE_NAMES:
        raise SymbolError(f"tojson: variable '{name}' has __dtype__={value!r}; expected a dtype "
                          f"name ({', '.join(_DTYPE_NAMES)})")
    return _DTYPE_NAMES[value]
