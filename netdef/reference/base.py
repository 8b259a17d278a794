"""The reference's registry of ops, the context an op reads, and helpers every family shares.

An op is a function registered under the Caffe type names it computes:

    @op("ReLU")
    def _relu(ctx, layer, bottoms, params):   # -> list of top arrays (float64)

`ctx` is a Ctx (the layer, the phase, its fork fields with the defaults the layer classes of
netdef/layers/ declare), `layer` the pb.LayerParameter, `bottoms` and `params` float64 arrays.
"""
from __future__ import annotations

import numpy as np

from .. import layers
from ..proto import pb

FLT_MAX = float(np.finfo(np.float32).max)

_OPS: dict[str, object] = {}


class ReferenceError(Exception):
    """A layer the reference cannot compute (unknown type, or parameters Caffe would reject)."""

    def __init__(self, layer: str, type_: str, why: str):
        super().__init__(f"layer '{layer}' ({type_}): {why}")
        self.layer, self.type, self.why = layer, type_, why


# A fork's variant of a type (happynear's Normalize, wy1iu's BN; netdef.layers.register_variant):
# type -> [(when(layer, loc, whole_net), fn)], tried before the type's op.
_VARIANTS: dict[str, list] = {}


def op(*types, when=None):
    """Register fn as the op of `types`; with when(layer_param, loc, net_param), as a fork's variant
    of a type whose op is registered too, run for the layers where it holds (ctx.base is then
    the type's own op)."""
    def register(fn):
        for t in types:
            if when is not None:
                _VARIANTS.setdefault(t, []).append((when, fn))
                continue
            if t in _OPS:
                raise ValueError(f"reference op {t} registered twice")
            _OPS[t] = fn
        return fn
    return register


def op_for(ctx):
    """The op that computes ctx.layer: a variant whose fork it belongs to, else its type's op."""
    t = ctx.layer.type
    for when, fn in _VARIANTS.get(t, ()):
        if when(ctx.layer, ctx.loc, ctx.whole):
            ctx.base = _OPS.get(t)
            return fn
    return _OPS.get(t)


def supported_types() -> frozenset[str]:
    return frozenset(_OPS)


class Ctx:
    """What an op may read besides its bottoms and blobs: the layer, the phase, the fork fields
    of its definition, and the net around it (AutoCrop walks back through earlier layers)."""

    def __init__(self, layer: pb.LayerParameter, phase: int, extra: dict | None = None, loc=None,
                 net: pb.NetParameter | None = None, index: int = 0, phase_value=(0, 0, ())):
        self.layer = layer
        self.phase = phase
        self.extra = extra or {}      # fields the schema lacks (fork layers' parameters)
        self.loc = loc                # the layer's Loc: fork fields inside known messages
        self.net = net                # the whole net and this layer's index in it
        self.index = index
        self.phase_value = phase_value  # (phase, level, stages) that decide which layers run
        self.whole = net              # the net before layers were removed (Parsed.whole): forks
        self.base = None              # told by a net's layers; a variant's type op (op_for)

    def fork_given(self, message: str, name: str):
        """The last value given for `message { name: ... }`, a fork field, else None."""
        for block in reversed(self.extra.get(message) or []):
            if isinstance(block, dict) and name in block:
                v = block[name]
                return v[-1] if isinstance(v, list) and v else v
        return None

    def fork_default(self, name: str):
        """The default the layer's class declares for a fork field (its fork_defaults in
        netdef/layers/, as the fork's caffe.proto has it), else None."""
        impl = layers.get(self.layer.type)
        return impl.fork_defaults.get(name) if impl is not None else None

    def fork_param(self, message: str, name: str):
        """A fork field's value, else its declared default, else None."""
        v = self.fork_given(message, name)
        return self.fork_default(name) if v is None else v

    def fork_all(self, message: str, name: str) -> list:
        """Every value given for a repeated fork field (the last block that has it)."""
        for block in reversed(self.extra.get(message) or []):
            if isinstance(block, dict) and name in block:
                v = block[name]
                return list(v) if isinstance(v, list) else [v]
        return []

    def fork_has(self, message: str, name: str) -> bool:
        return bool(self.fork_all(message, name))

    def fail(self, why: str):
        raise ReferenceError(self.layer.name, self.layer.type, why)

    def sub_field(self, message: str, name: str, default):
        """A fork field inside a BVLC parameter block (C3D's kernel_depth in convolution_param)."""
        sub = self.loc.msg(message) if self.loc is not None else None
        vals = sub.extra.get(name) if sub is not None else None
        return vals[-1] if vals else default


# --- which layers run (Net::FilterNet / StateMeetsRule) ---------------------------------------

def _meets(rule: pb.NetStateRule, phase: int, level: int, stages) -> bool:
    if rule.HasField("phase") and rule.phase != phase:
        return False
    if rule.HasField("min_level") and level < rule.min_level:
        return False
    if rule.HasField("max_level") and level > rule.max_level:
        return False
    if any(s not in stages for s in rule.stage):
        return False
    if any(s in stages for s in rule.not_stage):
        return False
    return True


def included(layer: pb.LayerParameter, phase: int, level: int = 0, stages=()) -> bool:
    keep = len(layer.include) == 0
    for rule in layer.exclude:
        if keep and _meets(rule, phase, level, stages):
            keep = False
    for rule in layer.include:
        if not keep and _meets(rule, phase, level, stages):
            keep = True
    return keep


# --- helpers the families share -------------------------------------------------------------

def canonical_axis(ctx, axis: int, ndim: int, allow_end: bool = False) -> int:
    """Blob::CanonicalAxisIndex."""
    hi = ndim + 1 if allow_end else ndim
    if not -ndim <= axis < hi:
        ctx.fail(f"axis {axis} is out of range for a blob with {ndim} axes")
    return axis + ndim if axis < 0 else axis


def bcast(blob: np.ndarray, ndim: int, axis: int) -> np.ndarray:
    """Shape a per-axis parameter (Scale, Bias, PReLU) to broadcast from `axis`."""
    return blob.reshape((1,) * axis + blob.shape + (1,) * (ndim - axis - blob.ndim))


def pads_tlbr(ctx, message: str):
    """Synopsys' pad_t/pad_l/pad_b/pad_r (foss-for-synopsys-dwc-arc-processors/synopsys-caffe
    caffe.proto; used by base_conv_layer.cpp, util/im2col.cpp and pooling_layer.cpp when any is
    non-zero): ([top, left], [bottom, right]), or None."""
    vals = [ctx.sub_field(message, name, 0) for name in ("pad_t", "pad_l", "pad_b", "pad_r")]
    if not any(vals):
        return None
    if any(isinstance(v, bool) or not isinstance(v, int) or v < 0 for v in vals):
        ctx.fail(f"pad_t/pad_l/pad_b/pad_r must be non-negative integers, got {vals}")
    return [vals[0], vals[1]], [vals[2], vals[3]]


def c3d_geometry(ctx, message):
    # facebook/C3D: kernel_size/stride/pad for height and width, kernel_depth/temporal_stride/
    # temporal_pad (convolution only) for the length.
    p = getattr(ctx.layer, message)
    if message == "convolution_param":
        k, s, pd = (p.kernel_size[0] if len(p.kernel_size) else 0), (p.stride[0] if len(p.stride) else 1), \
            (p.pad[0] if len(p.pad) else 0)
        tp = int(ctx.sub_field(message, "temporal_pad", ctx.fork_default("temporal_pad")))
    else:
        k, s, pd, tp = p.kernel_size, p.stride, p.pad, 0
    kd = int(ctx.sub_field(message, "kernel_depth", ctx.fork_default("kernel_depth")))
    ts = int(ctx.sub_field(message, "temporal_stride", ctx.fork_default("temporal_stride")))
    return (kd, k, k), (ts, s, s), (tp, pd, pd)
