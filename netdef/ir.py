"""The graph IR: layers (Node) and blob versions (Value), with source locations on every node.

    graph = netdef.compile("alexnet")
    for node in graph.nodes:                       # file order, after NetState filtering
        print(node.name, node.type, [v.meta.get("shape") for v in node.outputs])
    print(graph)                                   # a readable listing (golden tests use it)

A Caffe blob name can be written several times: `relu1` reads `conv1` and writes `conv1` again
(in-place). The IR gives every write its own Value, so the graph is a plain DAG: `conv1` (version
0, made by conv1) and `conv1` (version 1, made by relu1) are distinct, and each Value lists every
layer that reads it (fan-out is explicit; Caffe inserts Split layers for it, netdef does not).

Documented meta keys: every key anything writes, with its writer (nothing else may be assumed).
  Value.meta["shape"]          tuple[int, ...]  the blob shape, as Caffe's Reshape computes it (passes.shapes)
  Value.meta["rf"]             RF | None        receptive field on the net input's spatial axes
                                                (passes.receptive_field)
  Value.meta["undefined"]      True             a bottom that no earlier layer produced (build)
  Value.meta["automatic"]      True             a loss top Caffe adds when none is written
                                                (AutoTopBlobs; build)
  Value.meta["declared_shape"] tuple[int, ...]  a legacy `input:`'s input_shape/input_dim, before
                                                --input (build; passes.shapes reads it)
  Value.meta["input_span"]     Span | None      where that legacy `input:` is written (build)
  Node.meta["blobs"]           list[tuple]      every parameter blob shape, in Caffe's blob order
                                                (passes.shapes)
  Node.meta["params"]          list[tuple]      the learnable ones (what a solver updates)
  Node.meta["stat_params"]     list[tuple]      statistics (BatchNorm mean/variance/factor)
  Node.meta["cost"]            {"macs", "flops", "activation_bytes"}  for the net's batch size
                                                (passes.cost)
  Node.meta["unknown"]         True             a type netdef cannot infer shapes through
                                                (passes.shapes)
  Node.meta["in_place"]        list[bool]       per top: it rewrites the bottom of the same index
                                                (build)
  Node.meta["invalid"]         True             the layer's own parameters are wrong; later passes
                                                skip it (passes.verify)
  Node.meta["shapes_from_options"] True         its top shapes came from --input (a data or
                                                opaque layer; passes.shapes)
  Node.meta["permute_order"]   list[int]        a Permute's full axis order (its infer_shapes, read
                                                by its receptive_field)
  Node.meta["rf_disagree"]     (what, values)   how the bottoms' receptive fields differ ("stride"
                                                or "centre", and the values; Concat and Eltwise's
                                                receptive_field), taken and reported by
                                                passes.receptive_field, which removes the key

Graph.overrides ({blob: shape}, from --input) is an attribute, not meta, and so is a layer
class's memo (Node.geometry): neither is a result of the analysis.
"""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from .diagnostics import Diagnostics, Span

PHASES = ("TRAIN", "TEST")


@dataclass(frozen=True)
class NetState:
    """Caffe's NetState: which layers a net keeps (see build.state_meets_rule)."""

    phase: str = "TEST"
    level: int = 0
    stages: tuple[str, ...] = ()

    def __str__(self) -> str:
        s = f"phase={self.phase} level={self.level}"
        return s + (f" stages={','.join(self.stages)}" if self.stages else "")


@dataclass(frozen=True)
class RF:
    """Receptive field of one blob on the input's spatial axes (one entry per axis, e.g. (h, w)).

    size:   how many input pixels one output element sees
    stride: input pixels between neighbouring output elements (the "jump"; a Fraction after
            deconvolution)
    center: input coordinate of the centre of output position 0 (a half-integer for even windows,
            negative when padding moves it off the image)
    whole:  the blob no longer has spatial axes (InnerProduct, global reductions): every element
            sees the whole input
    """

    size: tuple
    stride: tuple
    center: tuple
    whole: bool = False

    def as_json(self) -> dict:
        return {"size": [_num(x) for x in self.size], "stride": [_num(x) for x in self.stride],
                "center": [_num(x) for x in self.center]}


def _num(x):
    if isinstance(x, Fraction):
        return int(x) if x.denominator == 1 else float(x)
    return x


def fmt_num(x) -> str:
    x = _num(x)
    if isinstance(x, float):
        return f"{x:g}"
    return str(x)


class Value:
    """One version of a blob: the result of one layer writing a top (or a net input)."""

    __slots__ = ("name", "version", "producer", "consumers", "meta", "top_index")

    def __init__(self, name: str, version: int = 0, producer: "Node | None" = None, top_index: int = 0):
        self.name = name
        self.version = version
        self.producer = producer
        self.top_index = top_index
        self.consumers: list[Node] = []
        self.meta: dict = {}

    @property
    def shape(self) -> tuple | None:
        return self.meta.get("shape")

    @property
    def label(self) -> str:
        """The name as written, with the version when an in-place layer rewrote the blob."""
        return self.name if self.version == 0 else f"{self.name}@{self.version}"

    def __repr__(self) -> str:
        return f"Value({self.label}, shape={self.shape})"


class Node:
    """One layer that survived NetState filtering."""

    __slots__ = ("name", "type", "index", "param", "loc", "inputs", "outputs", "impl", "meta", "geometry")

    def __init__(self, name: str, type: str, index: int, param, loc, impl=None):
        self.name = name
        self.type = type
        self.index = index          # position in the file (before filtering)
        self.param = param          # pb.LayerParameter
        self.loc = loc              # loc.Loc of the `layer {` block (None if synthesised)
        self.inputs: list[Value] = []
        self.outputs: list[Value] = []
        self.impl = impl            # the registered layers.Layer, None for unknown types
        self.meta: dict = {}
        # layers.conv.geometry's memo: (number of bottom axes, Geometry); None when not computed
        # or when the layer's parameters changed (the language server's incremental edits)
        self.geometry: tuple | None = None

    # -- spans for diagnostics -------------------------------------------------------------
    @property
    def span(self) -> Span | None:
        return self.loc.span if self.loc is not None else None

    def field_span(self, msg: str | None = None, field: str | None = None, index: int = 0) -> Span | None:
        """The most precise place to point at: `msg { field: ... }` if written, else the
        `msg {` head, else the `layer {` head (for defaulted values). With msg None, a field of
        the layer itself (e.g. "type", "param")."""
        loc = self.loc
        if loc is None:
            return None
        if msg is None:
            return (loc.field(field, index) if field else None) or loc.span
        sub = loc.msg(msg)
        if sub is None:
            return loc.span
        if field is None:
            return sub.span
        return sub.field(field, index) or sub.span

    def bottom_span(self, i: int) -> Span | None:
        if self.loc is None:
            return None
        return self.loc.field("bottom", i) or self.loc.span

    def top_span(self, i: int) -> Span | None:
        if self.loc is None:
            return None
        return self.loc.field("top", i) or self.loc.span

    @property
    def extra(self) -> dict:
        """Fields the schema lacks (fork parameters), as plain values: {name: [value, ...]}."""
        return self.loc.extra if self.loc is not None else {}

    def __repr__(self) -> str:
        return f"Node({self.name!r}, {self.type})"


class Graph:
    """A net after NetState filtering: nodes in file order, every blob version, inputs, outputs."""

    def __init__(self, name: str = "", parsed=None, state: NetState | None = None,
                 diagnostics: Diagnostics | None = None):
        self.name = name
        self.parsed = parsed
        self.state = state or NetState()
        self.diagnostics = diagnostics if diagnostics is not None else Diagnostics()
        self.nodes: list[Node] = []
        self.values: list[Value] = []
        # Values fed from outside: legacy `input:` fields (producer None) and the tops of Input
        # and data layers, in definition order.
        self.inputs: list[Value] = []
        self.outputs: list[Value] = []
        # --input: shapes that supply or replace those of net inputs and data layers' tops
        # (passes.shapes applies them)
        self.overrides: dict[str, tuple] = {}
        self._latest: dict[str, Value] = {}

    def blob(self, name: str) -> Value | None:
        """The latest version of a blob (the value after its last writer)."""
        return self._latest.get(name)

    def node(self, name: str) -> Node | None:
        for n in self.nodes:
            if n.name == name:
                return n
        return None

    @property
    def blob_names(self) -> list[str]:
        return list(self._latest)

    @property
    def batch_size(self) -> int | None:
        for v in self.inputs:
            s = v.meta.get("shape")
            if s:
                return s[0]
        return None

    def __str__(self) -> str:
        def typed(v):  # %conv1:(1,96,55,55); an unknown shape is left out
            shape = v.meta.get("shape")
            return f"%{v.label}" if shape is None else f"%{v.label}:{fmt_shape(shape, 'ir')}"

        def vals(vs):
            return ", ".join(typed(v) for v in vs)

        lines = [f"graph {self.name or '<unnamed>'} ({self.state}) {{"]
        for v in self.inputs:
            if v.producer is None:
                lines.append(f"  input {typed(v)}")
        for n in self.nodes:
            lhs = vals(n.outputs)
            rhs = ", ".join(f"%{v.label}" for v in n.inputs)
            extra = "  # unknown type" if n.meta.get("unknown") else ""
            lines.append(f"  {lhs or '()'} = {n.type}[{n.name}]({rhs}){extra}")
        lines.append("  return " + ", ".join(f"%{v.label}" for v in self.outputs))
        lines.append("}")
        return "\n".join(lines)


def fmt_shape(shape, style: str = "tuple") -> str:
    """A shape as text: netdef's one shape formatter. `style` is "tuple" (messages:
    (1, 3, 224, 224)), "ir" (the IR listing: (1,3,224,224)), or the separator of a flat form,
    "x" (tables, hovers: 1x3x224x224) or "×" (drawings: 1×3×224×224), in which a shape of no
    axes is "scalar". An unknown shape (None) is "?"."""
    if shape is None:
        return "?"
    dims = [str(d) for d in shape]
    if style == "tuple":
        return "(" + ", ".join(dims) + ")"
    if style == "ir":
        return "(" + ",".join(dims) + ")"
    return style.join(dims) if dims else "scalar"

