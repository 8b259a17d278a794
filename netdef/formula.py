"""How a layer's output size was computed, written out with the layer's own numbers.

    formula(node) -> [Line("out = (in + 2×pad − kernel) / stride + 1"),
                      Line("", "/ is integer division (truncates toward zero), ..."),
                      Line("channels: num_output = 96"),
                      Line("height: (227 + 2×0 − 11) / 4 + 1 = 55"), ...]

One text for every consumer: the language server's hover (netdef/lsp/hover.py) renders a Line
as Markdown, the view page (netdef/view/formula.py) as plain text. `Line.math` is a formula
(an axis line ends in the size it computes), `Line.note` words about it; either may be empty.

Kernel, stride and padding come from the geometry the shapes pass reads (netdef.layers.conv
and netdef.layers.pool), with the padding before (`pad`) and after (`pad_end`) each axis, which
differ for Synopsys' pad_t/pad_l/pad_b/pad_r: such a layer's lines read
`in + pad_begin + pad_end` with the real numbers.
"""
from __future__ import annotations

from .ir import fmt_shape
from .layers.base import LayerError, prod
from .layers.convsize import caffe_div


class Line:
    __slots__ = ("math", "note")

    def __init__(self, math: str = "", note: str = ""):
        self.math, self.note = math, note

    def text(self) -> str:
        """Plain text: the formula, then its note in parentheses."""
        if self.math and self.note:
            return f"{self.math} ({self.note})"
        return self.math or self.note

    def __eq__(self, other):
        return isinstance(other, Line) and (self.math, self.note) == (other.math, other.note)

    def __repr__(self):
        return f"Line({self.math!r}, {self.note!r})"


def formula(node) -> list[Line]:
    """Lines explaining the output size; [] when the layer has no such rule or its input has no
    shape. The numbers are computed from the input shape, so a layer whose output the shapes
    pass refused still shows what its parameters give."""
    if node.impl is None or not node.inputs or not node.outputs:
        return []
    ins = [v.meta.get("shape") for v in node.inputs]
    if ins[0] is None:
        return []
    try:
        rule = _rule(node)
        if rule is not None:
            return rule(node, tuple(ins[0]), ins)
        out = node.outputs[0].meta.get("shape")
        if out is not None and tuple(out) == tuple(ins[0]) and \
                (node.meta.get("in_place") and all(node.meta["in_place"]) or node.impl.elementwise):
            return [Line("output shape = input shape", "elementwise")]
    except (LayerError, ArithmeticError, ValueError, TypeError, IndexError, KeyError, AttributeError):
        return []
    return []


def _rule(node):
    from .layers.conv import Convolution, ConvolutionDepthwise

    if isinstance(node.impl, (Convolution, ConvolutionDepthwise)):
        return _conv
    return _RULES.get(node.type)


# --- numbers and padding ------------------------------------------------------------------------

def _n(x: int) -> str:
    """An integer with a true minus sign, as the formulas write their operators."""
    return str(x).replace("-", "−")


def _pads_symbol(asym: bool) -> str:
    return "pad_begin + pad_end" if asym else "2×pad"


def _pads(p: int, e: int, asym: bool) -> str:
    return f"{p} + {e}" if asym else f"2×{p}"


# --- convolution --------------------------------------------------------------------------------

def _conv(node, shape, ins):
    # Caffe's BaseConvolutionLayer::compute_output_shape (BVLC src/caffe/layers/conv_layer.cpp):
    # out = (in + 2 * pad - extent) / stride + 1 on ints, where / truncates toward zero (so a
    # kernel larger than the padded input gives (negative) / stride rounded up, not down);
    # deconv_layer.cpp: out = stride * (in - 1) + extent - 2 * pad. Synopsys' fork
    # (foss-for-synopsys-dwc-arc-processors/synopsys-caffe src/caffe/layers/conv_layer.cpp
    # compute_output_shape) adds pad_t + pad_b and pad_l + pad_r instead of 2 * pad.
    from .layers.conv import ConvolutionDepthwise, axis_name, geometry

    if isinstance(node.impl, ConvolutionDepthwise):
        g = node.impl.geometry(node)
        reverse = False
        channels = Line(f"channels: as the input = {shape[g.axis]}")
    else:
        g = geometry(node, shape)
        reverse = node.impl.reverse(node)
        channels = Line(f"channels: num_output = {node.param.convolution_param.num_output}")
    n = len(g.kernel)
    asym = list(g.pad) != list(g.pad_end)
    dilated = any(d != 1 for d in g.dilation)
    kern = "dilation×(kernel − 1) + 1" if dilated else "kernel"
    if reverse:
        pads = "pad_begin − pad_end" if asym else "2×pad"
        lines = [Line(f"out = stride×(in − 1) + {kern} − {pads}")]
    else:
        ext = f"({kern})" if dilated else kern
        lines = [Line(f"out = (in + {_pads_symbol(asym)} − {ext}) / stride + 1"),
                 Line("", "/ is integer division (truncates toward zero), as in Caffe's C++")]
    lines.append(channels)
    for i in range(n):
        size, k, s, p, e, d = (shape[g.axis + 1 + i], g.kernel[i], g.stride[i], g.pad[i], g.pad_end[i],
                               g.dilation[i])
        extent = d * (k - 1) + 1
        ext = f"{d}×({k} − 1) + 1" if dilated else f"{k}"
        if reverse:
            o = s * (size - 1) + extent - p - e
            pads = f"{p} − {e}" if asym else f"2×{p}"
            lines.append(Line(f"{axis_name(i, n)}: {s}×({size} − 1) + {ext} − {pads} = {_n(o)}"))
            continue
        num = size + p + e - extent
        q = caffe_div(num, s)
        step = "" if num >= 0 and num % s == 0 else f" = {_n(num)} / {s} + 1"
        ext = f"({ext})" if dilated else ext
        lines.append(Line(f"{axis_name(i, n)}: ({size} + {_pads(p, e, asym)} − {ext}) / {s} + 1{step} = {_n(q + 1)}"))
    return lines


# --- pooling ------------------------------------------------------------------------------------

def _pool(node, shape, ins):
    # Caffe's PoolingLayer::Reshape (BVLC src/caffe/layers/pooling_layer.cpp): ceil (or, with
    # round_mode FLOOR / the forks' ceil_mode: false, floor) of (in + 2 * pad - kernel) / stride,
    # plus one; then, when pad_h or pad_w is non-zero, on both axes, a last window that would
    # start at or past in + pad is dropped. Synopsys' fork (pooling_layer.cpp Reshape): pad_t +
    # pad_b (pad_l + pad_r) in the quotient, and the clip against in + pad_t (in + pad_l).
    # The final sizes are netdef.layers.pool.pooled_sizes, the rule the shapes pass runs.
    from .layers.pool import geometry, pooled_sizes

    if len(shape) != 4:
        return []
    g = geometry(node, shape)
    hw = shape[2:]
    out = pooled_sizes(hw, g)
    if g.global_:
        return [Line(f"global pooling: kernel = the whole input {hw[0]}×{hw[1]} → {_n(out[0])}×{_n(out[1])}")]
    asym = list(g.pad) != list(g.pad_end)
    padded = any(g.pad) or any(g.pad_end)
    lo, hi = ("⌈", "⌉") if g.ceil else ("⌊", "⌋")
    lines = [Line(f"out = {lo}(in + {_pads_symbol(asym)} − kernel) / stride{hi} + 1",
                  "rounding up, Caffe's default: a last, partial window is kept" if g.ceil else
                  "rounding down: round_mode FLOOR or ceil_mode: false")]
    if padded:
        start = "in + pad_begin" if asym else "in + pad"
        lines.append(Line(f"if (out − 1)×stride ≥ {start}: out − 1",
                          "with padding, a last window may not start in the padding"))
    for i, axis in enumerate(("height", "width")):
        size, k, s, p, e = hw[i], g.kernel[i], g.stride[i], g.pad[i], g.pad_end[i]
        num = size + p + e - k
        raw = (-(-num // s) if g.ceil else num // s) + 1
        step = "" if num % s == 0 else f" = {lo}{_n(num)} / {s}{hi} + 1"
        line = f"{axis}: {lo}({size} + {_pads(p, e, asym)} − {k}) / {s}{hi} + 1{step} = {_n(raw)}"
        if padded:
            clipped = (raw - 1) * s >= size + p
            line += (f"; ({_n(raw)} − 1)×{s} = {_n((raw - 1) * s)} {'≥' if clipped else '<'} {size} + {p} "
                     f"= {size + p} → {_n(out[i])}")
        lines.append(Line(line))
    return lines


# --- the others ---------------------------------------------------------------------------------

def _inner_product(node, shape, ins):
    # InnerProductLayer::Reshape (BVLC src/caffe/layers/inner_product_layer.cpp): the axes from
    # `axis` on are flattened into K inputs; the top is the leading axes, then num_output.
    ip = node.param.inner_product_param
    axis = ip.axis if ip.axis >= 0 else ip.axis + len(shape)
    k = prod(shape[axis:])
    head = fmt_shape(shape[:axis], "×") if axis else "1"
    return [Line(f"input flattened from axis {axis}: {fmt_shape(shape[axis:], '×')} = {k} values"),
            Line(f"output: {head} × num_output {ip.num_output}")]


def _concat(node, shape, ins):
    # ConcatLayer::Reshape (BVLC src/caffe/layers/concat_layer.cpp): the concat axis adds up,
    # every other axis is the first bottom's.
    if any(s is None for s in ins):
        return []
    cp = node.param.concat_param
    axis = cp.concat_dim if cp.HasField("concat_dim") else cp.axis
    axis = axis if axis >= 0 else axis + len(shape)
    if any(len(s) != len(shape) or any(a != b for j, (a, b) in enumerate(zip(s, shape)) if j != axis) for s in ins):
        return []  # the shapes pass refuses it, and says why
    return [Line(f"axis {axis}: " + " + ".join(str(s[axis]) for s in ins) + f" = {sum(s[axis] for s in ins)}"),
            Line("", "other axes as the inputs")]


_RULES = {"Pooling": _pool, "InnerProduct": _inner_product, "Concat": _concat}
