"""The layer interface, the registry, and helpers every family shares.

A layer type is a class registered under its Caffe type names:

    @register("Convolution")
    class Convolution(Layer):
        param = "convolution_param"
        def infer_shapes(self, node, in_shapes): ...

The registry holds one instance per class; `get(type)` finds it. Methods take the IR node
(node.param is the pb.LayerParameter, node.loc its source locations) and plain shape tuples:

  check(node, diags)                       static parameter checks (no shapes needed)
  infer_shapes(node, in_shapes) -> [shape] Caffe's Reshape; raises LayerError on bad input
  param_shapes(node, in_shapes) -> [shape] parameter blobs in Caffe's blob order
  stat_blobs(node) -> set[int]             which of those are statistics, not learnable
  alternative_blob_shapes(node, shapes)    {index: (shape, ...)} other shapes a fork's file holds
  neutral_statistics {index: value}        what untrained statistics start from (not fillers)
  filler_params(node) -> [FillerParameter | None]  parallel to param_shapes
  receptive_field(node, in_rfs) -> [RF | None]
  cost(node, in_shapes, out_shapes) -> {"macs": int, "flops": int}
  lint(node, in_shapes, out_shapes, diags) shape-dependent warnings
"""
from __future__ import annotations

import difflib
from fractions import Fraction

from .. import codes
from ..diagnostics import Diagnostic
from ..ir import RF, fmt_shape  # fmt_shape: for the layer files

_REGISTRY: dict[str, "Layer"] = {}


class LayerError(Exception):
    """A layer cannot be set up for these inputs; carries the diagnostic to report."""

    def __init__(self, diagnostic: Diagnostic):
        super().__init__(diagnostic.message)
        self.diagnostic = diagnostic


def register(*types: str):
    """Class decorator: register a layer class under one or more Caffe type names."""

    def deco(cls):
        inst = cls()
        inst.types = types
        for t in types:
            if t in _REGISTRY:
                raise ValueError(f"layer type {t!r} registered twice "
                                 f"({type(_REGISTRY[t]).__name__} and {cls.__name__})")
            _REGISTRY[t] = inst
        return cls

    return deco


def get(type_name: str) -> "Layer | None":
    return _REGISTRY.get(type_name)


def training_only_types() -> frozenset[str]:
    """The registered types a deploy graph leaves out (their class's `training_only`)."""
    return frozenset(t for t, impl in _REGISTRY.items() if impl.training_only)


# Forks that give a type name other semantics (happynear's Normalize, wy1iu's BN): type ->
# [(applies(layer_param, loc, net_param), instance)], tried in order before the registered one.
_VARIANTS: dict[str, list] = {}


def register_variant(type_name: str, applies):
    """Class decorator: `cls` implements `type_name` for the layers where applies(layer_param,
    loc, net_param) holds (loc: the layer's Loc or None, whose `extra` holds its fork fields;
    net_param: the whole NetParameter, for a fork recognised by the net's other layers)."""

    def deco(cls):
        inst = cls()
        inst.types = (type_name,)
        inst.applies = applies
        _VARIANTS.setdefault(type_name, []).append(inst)
        return cls

    return deco


def resolve(type_name: str, layer_param, loc, net_param) -> "Layer | None":
    """The implementation of one layer: a variant whose fork this layer belongs to, else get()."""
    for inst in _VARIANTS.get(type_name, ()):
        if inst.applies(layer_param, loc, net_param):
            return inst
    return _REGISTRY.get(type_name)


def variants() -> list[tuple[str, "Layer"]]:
    """Every (type, variant instance), for the layer table."""
    return [(t, inst) for t in sorted(_VARIANTS) for inst in _VARIANTS[t]]


def known_types() -> list[str]:
    return sorted(_REGISTRY)


def close_types(type_name: str, n: int = 3) -> list[str]:
    names = known_types()
    lower = [t for t in names if t.lower() == type_name.lower()]
    return lower + [t for t in difflib.get_close_matches(type_name, names, n=n, cutoff=0.6) if t not in lower]


class Layer:
    types: tuple[str, ...] = ()
    param: str | None = None        # the LayerParameter field holding this type's parameters
    bottoms: tuple = (1, 1)         # (min, max) bottom count; max None = unbounded
    tops: tuple = (1, 1)
    equal_bottom_top = False        # Convolution: one top per bottom
    source = False                  # its tops are net inputs (Input and data layers)
    sink = False                    # consumes blobs and produces nothing (Silence, HDF5Output)
    opaque = None                   # why netdef cannot infer its tops (Python, data-dependent sizes)
    fork_defaults: dict = {}        # a fork layer's parameter defaults, field -> value, as its fork's
                                    # caffe.proto declares them (fork.ForkParams and the reference read them)
    loss = False                    # top 0 has loss_weight 1 by default
    auto_tops = False               # Caffe's AutoTopBlobs: missing tops are made, anonymous
    compares = False                # compares a prediction with labels, as losses do (Accuracy)
    time_major = False              # reads (T, N, ...) blobs: the batch is axis 1 (RNN, LSTM)
    elementwise = False             # output i has the shape of input 0 and the same RF
    # A deploy graph leaves it out (export, verify): it needs labels or only records results, so
    # a deployed net has nothing to compute with it. Every loss is (see __init_subclass__); also
    # Accuracy, Silence, HDF5Output and the forks' metrics and sinks. Read it through
    # training_only_types() or the class, never a list of type names.
    training_only = False
    # The family draw (and the view) colours the layer's box by: data, convolution, dense,
    # recurrent, pooling, resize, normalisation, activation, merge, shape, loss; "other" when unset.
    family = "other"
    variant = ""                    # for a fork's variant of a type (register_variant): when it applies
    # For the layer-type table (docs/layers.md, `python3 -m netdef.layer_table`): where the type
    # comes from, and the source its rules were checked against (repository and file).
    origin = "BVLC Caffe"
    checked_against = "BVLC/caffe src/caffe/layers/ (the layer's *_layer.cpp) and caffe.proto"

    # -- parameters ------------------------------------------------------------------------
    def p(self, node):
        """This type's parameter message (defaults from the schema when not written)."""
        return getattr(node.param, self.param)

    def count_limits(self, node) -> tuple[tuple, tuple]:
        return self.bottoms, self.tops

    def check(self, node, diags) -> None:
        pass

    def source_shapes(self, node) -> list:
        """For source layers: one shape per top, or a string saying why it is not known."""
        return []

    def infer_shapes(self, node, in_shapes: list[tuple]) -> list[tuple]:
        if self.elementwise:
            return [in_shapes[0]] * len(node.outputs)
        raise NotImplementedError(type(self).__name__)

    def param_shapes(self, node, in_shapes: list[tuple]) -> list[tuple]:
        return []

    def stat_blobs(self, node) -> set[int]:
        return set()

    def alternative_blob_shapes(self, node, shapes: list[tuple]) -> dict:
        """Blob index -> other shapes a .caffemodel may hold for it (a fork that lays out the
        same values with other singleton axes); binding accepts exactly these."""
        return {}

    # Statistics blob index -> the value it starts from without trained weights (netdef.weights
    # fills it so instead of with its filler; BatchNorm in norm.py says why). Read, never written.
    neutral_statistics: dict[int, float] = {}

    def filler_params(self, node) -> list:
        return []

    def receptive_field(self, node, in_rfs: list) -> list:
        first = in_rfs[0] if in_rfs else None
        return [first] * len(node.outputs)

    def cost(self, node, in_shapes: list[tuple], out_shapes: list[tuple]) -> dict:
        # Elementwise work: one operation per output element unless a family says otherwise.
        return {"macs": 0, "flops": sum(prod(s) for s in out_shapes) if self.elementwise else 0}

    def lint(self, node, in_shapes, out_shapes, diags) -> None:
        pass

    def __repr__(self) -> str:
        return f"<layer {'/'.join(self.types)}>"

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        # A loss (top 0 weighted 1 by default, as LossLayer) trains the net and computes nothing a
        # deployed net uses: training-only unless the class itself says otherwise.
        if cls.loss and "training_only" not in cls.__dict__:
            cls.training_only = True


# --- helpers ------------------------------------------------------------------------------

def prod(shape) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def count(shape, start: int = 0, end: int | None = None) -> int:
    return prod(shape[start:end])


def total(shapes) -> int:
    """The elements of all `shapes` together (None: 0), e.g. a layer's parameter count."""
    return sum(prod(s) for s in shapes or ())


def fail(code, span, notes=(), related=(), **fields):
    raise LayerError(code.at(span, notes=notes, related=related, **fields))


def bad(node, message, span=None, notes=(), code=None):
    """Raise a parameter/geometry error for `node`, pointing at `span`: a Span, a
    (message, field[, index]) tuple resolved by node.field_span (so that the hot path never
    builds spans), or None for the layer head."""
    code = code or codes.BAD_PARAM
    if isinstance(span, tuple):
        span = node.field_span(*span)
    raise LayerError(code.at(span if span is not None else node.span, notes=list(notes),
                             message=f"layer '{node.name}': {message}"))


def weight_bias_fillers(p) -> list:
    """The fillers of a layer with a weight and an optional bias (convolution_param,
    inner_product_param, embed_param, ...), in Caffe's blob order."""
    return [p.weight_filler, p.bias_filler] if p.bias_term else [p.weight_filler]


def fork_filler(node, message: str, field: str):
    """A FillerParameter for a fork layer's blob from the fork's own `message { field { type } }`
    (kept as Loc.extra values, as every fork field is); `constant` when not written, as
    FillerParameter's default type is."""
    from ..proto import pb
    raw = (node.extra.get(message) or [{}])[-1]
    spec = raw.get(field, [None])[-1] if isinstance(raw, dict) else None
    f = pb.FillerParameter()
    if isinstance(spec, dict):
        f.type = str((spec.get("type") or ["constant"])[-1])
    return f


def canonical_axis(node, axis: int, shape, field_span=None, what: str = "axis") -> int:
    # field_span: where to point on error, as bad() takes it (a lazy tuple on hot paths).
    """Caffe's Blob::CanonicalAxisIndex: -n <= axis < n; negative counts from the end."""
    n = len(shape)
    if not -n <= axis < n:
        allowed = f"{-n} to {n - 1}" if n else "none (the blob is a scalar)"
        bad(node, f"{what} {axis} is out of range for a {n}-D bottom of shape {fmt_shape(shape)}",
            field_span, notes=[f"allowed values: {allowed}"], code=codes.BAD_AXIS)
    return axis + n if axis < 0 else axis


def need_rank(node, shape, rank: int, blob_index: int = 0, exact: bool = True):
    ok = len(shape) == rank if exact else len(shape) >= rank
    if not ok:
        need = f"{rank}-D (N, C, H, W)" if rank == 4 and exact else (f"{rank}-D" if exact else f"at least {rank}-D")
        fail(codes.BAD_RANK, node.bottom_span(blob_index), layer=node.name, type=node.type, need=need,
             blob=node.inputs[blob_index].name, shape=fmt_shape(shape))


def same_rf(in_rfs, node, what="inputs"):
    """Merge the RFs of several inputs (Concat, Eltwise): the largest per axis, plus whether
    they disagree on stride or centre (the caller warns)."""
    rfs = [r for r in in_rfs if r is not None]
    if not rfs:
        return None, None
    if len(rfs) == 1:
        return rfs[0], None
    first = rfs[0]
    n = len(first.size)
    if any(len(r.size) != n for r in rfs):
        return first, None
    size = tuple(max(r.size[i] for r in rfs) for i in range(n))
    disagree = None
    strides = {r.stride for r in rfs if not r.whole}
    centers = {r.center for r in rfs if not r.whole}
    if len(strides) > 1:
        disagree = ("stride", " vs ".join(sorted({_axes(s) for s in strides})))
    elif len(centers) > 1:
        disagree = ("centre", " vs ".join(sorted({_axes(c) for c in centers})))
    best = max(rfs, key=lambda r: r.size)
    return RF(size, best.stride, best.center, all(r.whole for r in rfs)), disagree


def _axes(t) -> str:
    from ..ir import fmt_num
    return "[" + ", ".join(fmt_num(x) for x in t) + "]"


def window_rf(rf: RF, kernel, stride, pad, dilation=None) -> RF:
    """A sliding window (convolution or pooling) on the spatial axes the RF tracks."""
    n = len(rf.size)
    kernel, stride, pad = list(kernel)[:n], list(stride)[:n], list(pad)[:n]
    dilation = list(dilation or [1] * n)[:n]
    size, jump, center = [], [], []
    for i in range(n):
        ke = dilation[i] * (kernel[i] - 1) + 1
        size.append(rf.size[i] + (ke - 1) * rf.stride[i])
        jump.append(rf.stride[i] * stride[i])
        center.append(rf.center[i] + (Fraction(ke - 1, 2) - pad[i]) * rf.stride[i])
    return RF(tuple(size), tuple(jump), tuple(_simplify(c) for c in center))


def _simplify(x):
    if isinstance(x, Fraction) and x.denominator == 1:
        return int(x)
    return x


def whole_rf(rf: RF, extents) -> RF:
    """Every element sees the whole spatial extent of its input (InnerProduct, global pooling
    that then loses its axes)."""
    n = len(rf.size)
    ext = list(extents)[:n] + [1] * max(0, n - len(extents))
    r = window_rf(rf, ext, [1] * n, [0] * n)
    return RF(r.size, r.stride, r.center, True)
