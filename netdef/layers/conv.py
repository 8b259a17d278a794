"""Convolution, Deconvolution and Im2col: Caffe's BaseConvolutionLayer geometry.

Caffe reads kernel/stride/pad/dilation from repeated fields (one value for every spatial axis,
or one per axis) or from the 2-D-only *_h/*_w fields, never both. The repeated fields have no
schema defaults; BaseConvolutionLayer::LayerSetUp supplies them (the constants below).
"""
from __future__ import annotations

from fractions import Fraction

from .. import codes
from ..ir import RF
from .base import Layer, bad, canonical_axis, fmt_shape, get, need_rank, prod, register, weight_bias_fillers, window_rf
from .convsize import conv_size, kernel_larger, onnx_conv, rule as _rule, too_small
from .fork import synopsys_pads

# BaseConvolutionLayer's kDefaultStride, kDefaultPad, kDefaultDilation.
DEFAULT_STRIDE = 1
DEFAULT_PAD = 0
DEFAULT_DILATION = 1


class Geometry:
    """`pad` is the padding before each spatial axis, `pad_end` after it (equal to `pad` but
    for Synopsys' pad_t/pad_l/pad_b/pad_r)."""
    __slots__ = ("axis", "kernel", "stride", "pad", "dilation", "pad_end")

    def __init__(self, axis, kernel, stride, pad, dilation, pad_end=None):
        self.axis, self.kernel, self.stride, self.pad, self.dilation = axis, kernel, stride, pad, dilation
        self.pad_end = list(pad) if pad_end is None else pad_end

    def padded(self, i: int, size: int) -> int:
        return size + self.pad[i] + self.pad_end[i]

    def extent(self, i: int) -> int:
        return self.dilation[i] * (self.kernel[i] - 1) + 1


def _per_axis(node, cp, name, n, default):
    values = list(getattr(cp, name))
    if default is None and not values:
        bad(node, f"{name} is not set", node.field_span("convolution_param"),
            notes=["give kernel_size (once, or once per spatial axis) or kernel_h and kernel_w"])
    if len(values) not in (0, 1, n):
        bad(node, f"{name} is given {len(values)} times for {n} spatial axes",
            node.field_span("convolution_param", name, len(values) - 1),
            notes=[f"give {name} once (for every axis) or once per spatial axis ({n} values)"])
    if not values:
        return [default] * n
    return [values[0] if len(values) == 1 else values[i] for i in range(n)]


def geometry(node, shape) -> Geometry:
    """Kernel, stride, pad and dilation per spatial axis, exactly as LayerSetUp reads them.
    They depend on the bottom only through its number of axes, so they are computed once."""
    cached = node.geometry
    if cached is not None and cached[0] == len(shape):
        return cached[1]
    g = _geometry(node, shape)
    node.geometry = (len(shape), g)
    return g


def _geometry(node, shape) -> Geometry:
    cp = node.param.convolution_param
    axis = canonical_axis(node, cp.axis, shape, ("convolution_param", "axis"))
    n = len(shape) - axis - 1
    hw = {}
    for base in ("kernel", "stride", "pad"):
        h, w = f"{base}_h", f"{base}_w"
        rep = "kernel_size" if base == "kernel" else base
        if cp.HasField(h) or cp.HasField(w):
            span = node.field_span("convolution_param", h if cp.HasField(h) else w)
            if n != 2:
                bad(node, f"{h}/{w} apply to 2-D convolution only, but the bottom has {n} spatial "
                          f"axes (shape {fmt_shape(shape)})", span, notes=[f"use the repeated '{rep}' field"])
            if len(getattr(cp, rep)):
                bad(node, f"both {rep} and {h}/{w} are given", span, notes=["give one or the other"])
            hw[base] = [getattr(cp, h), getattr(cp, w)]
    kernel = hw.get("kernel") or _per_axis(node, cp, "kernel_size", n, None)
    stride = hw.get("stride") or _per_axis(node, cp, "stride", n, DEFAULT_STRIDE)
    pad = hw.get("pad") or _per_axis(node, cp, "pad", n, DEFAULT_PAD)
    dilation = _per_axis(node, cp, "dilation", n, DEFAULT_DILATION)
    for name, vals in (("kernel size", kernel), ("stride", stride), ("dilation", dilation)):
        if any(v <= 0 for v in vals):
            field = {"kernel size": "kernel_size", "stride": "stride", "dilation": "dilation"}[name]
            bad(node, f"{name} must be positive, got {_list(vals)}",
                node.field_span("convolution_param", field), notes=["every axis needs a value of at least 1"])
        if any(v > 2**31 - 1 for v in vals):
            # BaseConvolutionLayer copies the uint32 fields into int blobs: 2^31 and more turn
            # negative and fail its CHECK_GT(..., 0).
            field = {"kernel size": "kernel_size", "stride": "stride", "dilation": "dilation"}[name]
            bad(node, f"{name} must be at most 2147483647, got {_list(vals)}",
                node.field_span("convolution_param", field), notes=["Caffe holds it in an int"])
    pad_end = None
    # Synopsys' fork (foss-for-synopsys-dwc-arc-processors/synopsys-caffe src/caffe/layers/
    # base_conv_layer.cpp LayerSetUp, conv_layer.cpp compute_output_shape, util/im2col.cpp):
    # pad_t/pad_b and pad_l/pad_r pad height and width unequally, out = (H + t + b - ext) / s + 1.
    asym = synopsys_pads(node, "convolution_param")
    if asym is not None:
        if n != 2:
            bad(node, f"pad_l/pad_r/pad_t/pad_b apply to 2-D convolution only, but the bottom has {n} spatial "
                      f"axes (shape {fmt_shape(shape)})", node.field_span("convolution_param"))
        if node.type != "Convolution":
            bad(node, f"pad_l/pad_r/pad_t/pad_b of a {node.type} layer are not supported by netdef",
                node.field_span("convolution_param"), notes=["netdef implements them for Convolution"])
        pad, pad_end = [asym[0], asym[1]], [asym[2], asym[3]]
    return Geometry(axis, kernel, stride, pad, dilation, pad_end)


def _list(vals) -> str:
    return " x ".join(str(v) for v in vals)


AXIS_NAMES = {1: ("length",), 2: ("height", "width"), 3: ("depth", "height", "width")}


def _kernel_span(node):
    cp = node.param.convolution_param
    return node.field_span("convolution_param", "kernel_size" if len(cp.kernel_size) else "kernel_h")


def _kernel_text(kernel: int, extent: int) -> str:
    return f"kernel {kernel}" + (f" dilated to {extent}" if extent != kernel else "")


def axis_name(i: int, n: int) -> str:
    names = AXIS_NAMES.get(n)
    return names[i] if names else f"spatial axis {i}"


@register("Convolution", "Deconvolution")
class Convolution(Layer):
    family = "convolution"
    param = "convolution_param"
    bottoms = (1, None)
    tops = (1, None)
    equal_bottom_top = True

    def reverse(self, node) -> bool:
        return node.type == "Deconvolution"

    def check(self, node, diags):
        cp = node.param.convolution_param
        if not cp.HasField("num_output"):
            diags.add(codes.MISSING_PARAM.at(node.field_span("convolution_param"), what="num_output",
                                             layer=node.name, type=node.type,
                                             notes=["num_output is the number of output channels"]))
        elif cp.num_output == 0:
            diags.add(codes.BAD_PARAM.at(node.field_span("convolution_param", "num_output"),
                                         message=f"layer '{node.name}': num_output must be positive, got 0"))
        if cp.group == 0:
            diags.add(codes.BAD_GROUP.at(node.field_span("convolution_param", "group"),
                                         message=f"layer '{node.name}': group must be positive, got 0"))
        elif cp.num_output and cp.num_output % cp.group:
            diags.add(codes.BAD_GROUP.at(
                node.field_span("convolution_param", "group"),
                notes=[f"num_output must be a multiple of group; e.g. group {_divisors(cp.num_output)}"],
                message=f"layer '{node.name}': group {cp.group} does not divide num_output {cp.num_output}"))
        if not cp.kernel_size and not (cp.HasField("kernel_h") or cp.HasField("kernel_w")):
            diags.add(codes.MISSING_PARAM.at(node.field_span("convolution_param"), what="the kernel size",
                                             layer=node.name, type=node.type,
                                             notes=["give kernel_size, or kernel_h and kernel_w"]))

    def infer_shapes(self, node, in_shapes):
        shape = in_shapes[0]
        for i, s in enumerate(in_shapes[1:], 1):
            if s != shape:
                bad(node, f"all bottoms of a {node.type} layer must have one shape; '{node.inputs[0].name}' is "
                          f"{fmt_shape(shape)} but '{node.inputs[i].name}' is {fmt_shape(s)}",
                    node.bottom_span(i), code=codes.SHAPE_MISMATCH)
        g = geometry(node, shape)
        cp = node.param.convolution_param
        channels = shape[g.axis]
        if channels % cp.group:
            bad(node, f"group {cp.group} does not divide the {channels} input channels of "
                      f"'{node.inputs[0].name}' {fmt_shape(shape)}",
                node.field_span("convolution_param", "group"), code=codes.BAD_GROUP,
                notes=[f"allowed groups for {channels} channels: {_divisors(channels)}"])
        out = list(shape[:g.axis]) + [cp.num_output]
        n = len(g.kernel)
        for i in range(n):
            size = shape[g.axis + 1 + i]
            ext = g.extent(i)
            if self.reverse(node):
                o = g.stride[i] * (size - 1) + ext - 2 * g.pad[i]
                if o <= 0:
                    bad(node, f"the output {axis_name(i, n)} would be {o}: stride {g.stride[i]} x (input "
                              f"{size} - 1) + kernel extent {ext} - 2 x pad {g.pad[i]}",
                        node.field_span("convolution_param", "pad"), code=codes.BAD_GEOMETRY)
            else:
                o = conv_size(g.padded(i, size), ext, g.stride[i])
                too_small(node, axis_name(i, n), o, _rule(size, _padding(g, i), ext, g.stride[i]),
                          node.inputs[0].name, shape, _kernel_span(node),
                          "the bias multiplier (BaseConvolutionLayer::Reshape)" if cp.bias_term else None)
            out.append(o)
        return [tuple(out)] * len(node.outputs)

    def lint(self, node, in_shapes, out_shapes, diags):
        if self.reverse(node):
            return
        shape = in_shapes[0]
        g = geometry(node, shape)
        n = len(g.kernel)
        sizes = shape[g.axis + 1:]
        small = [(axis_name(i, n), _kernel_text(g.kernel[i], g.extent(i)), sizes[i], _padding(g, i))
                 for i in range(n) if g.extent(i) > g.padded(i, sizes[i])]
        kernel_larger(node, diags, small, out_shapes[0][g.axis + 1:], _kernel_span(node))

    def param_shapes(self, node, in_shapes):
        shape = in_shapes[0]
        g = geometry(node, shape)
        cp = node.param.convolution_param
        channels = shape[g.axis]
        # Deconvolution keeps Caffe's reversed roles: its weight is (C_in, num_output/group, k...).
        if self.reverse(node):
            w = (channels, cp.num_output // cp.group, *g.kernel)
        else:
            w = (cp.num_output, channels // cp.group, *g.kernel)
        return [w, (cp.num_output,)] if cp.bias_term else [w]

    def filler_params(self, node):
        return weight_bias_fillers(node.param.convolution_param)

    def receptive_field(self, node, in_rfs):
        rf = in_rfs[0]
        if rf is None or rf.whole:
            return [rf] * len(node.outputs)
        shape = node.inputs[0].meta["shape"]
        g = geometry(node, shape)
        if self.reverse(node):
            return [deconv_rf(rf, g)] * len(node.outputs)
        return [window_rf(rf, g.kernel, g.stride, g.pad, g.dilation)] * len(node.outputs)

    def cost(self, node, in_shapes, out_shapes):
        cp = node.param.convolution_param
        shape = in_shapes[0]
        g = geometry(node, shape)
        k = prod(g.kernel)
        macs = 0
        for s_in, s_out in zip(in_shapes, out_shapes):
            if self.reverse(node):
                # Every input element is scattered through a (num_output/group x k) kernel slice.
                macs += prod(s_in) * (cp.num_output // cp.group) * k
            else:
                macs += prod(s_out) * (s_in[g.axis] // cp.group) * k
        bias = sum(prod(s) for s in out_shapes) if cp.bias_term else 0
        return {"macs": macs, "flops": 2 * macs + bias}

    def to_onnx(self, node, g):
        """ONNX Conv / ConvTranspose (groups, dilation, per-axis pads; Slice for an empty Conv top)."""
        shape = g.in_shape(0)
        geo = geometry(node, shape)
        cp = node.param.convolution_param
        if geo.axis != 1:
            g.fail(f"convolution over axis {geo.axis}: ONNX convolves from axis 1 only")
        w = g.param(0, "weight")
        b = g.param(1, "bias") if g.n_blobs > 1 else None
        op = "ConvTranspose" if node.type == "Deconvolution" else "Conv"
        # Deconvolution's weight is (C_in, C_out / group, k...), which is ConvTranspose's layout too.
        for i in range(g.n_in):
            ins = [g.x(i), w] + ([b] if b else [])
            if op == "ConvTranspose":
                g.op(op, ins, g.y(i), kernel_shape=list(geo.kernel), strides=list(geo.stride),
                     pads=list(geo.pad) + list(geo.pad_end), dilations=list(geo.dilation), group=cp.group)
                continue
            exts = [geo.extent(j) for j in range(len(geo.kernel))]
            onnx_conv(g, ins, g.y(i), geo.kernel, geo.stride, geo.pad, geo.pad_end, exts, shape[geo.axis + 1:],
                      g.out_shape(i)[geo.axis + 1:], dilations=list(geo.dilation), group=cp.group)


def _padding(g: Geometry, i: int) -> str:
    return f"2 x {g.pad[i]}" if g.pad[i] == g.pad_end[i] else f"{g.pad[i]} + {g.pad_end[i]}"


def deconv_rf(rf: RF, g: Geometry) -> RF:
    """Deconvolution runs a convolution backwards: output o takes input i where
    o = i*stride - pad + j*dilation, so the jump shrinks by the stride and each output sees
    ceil(extent/stride) neighbouring inputs."""
    size, jump, center = [], [], []
    for i in range(len(rf.size)):
        if i >= len(g.kernel):
            size.append(rf.size[i]); jump.append(rf.stride[i]); center.append(rf.center[i])  # noqa: E702
            continue
        ext, s = g.extent(i), g.stride[i]
        n_in = -(-ext // s)
        size.append(rf.size[i] + (n_in - 1) * rf.stride[i])
        j = Fraction(rf.stride[i]) / s
        jump.append(int(j) if j.denominator == 1 else j)
        c = rf.center[i] + (g.pad[i] - Fraction(ext - 1, 2)) / s * rf.stride[i]
        center.append(int(c) if isinstance(c, Fraction) and c.denominator == 1 else c)
    return RF(tuple(size), tuple(jump), tuple(center))


def _divisors(n: int) -> str:
    # Up to sqrt(n) only: num_output can be 2^32 - 1, and a loop to n took minutes.
    small, large = [], []
    d = 1
    while d * d <= n:
        if n % d == 0:
            small.append(d)
            if d != n // d:
                large.append(n // d)
        d += 1
    ds = small + large[::-1]
    if len(ds) > 8:
        ds = ds[:4] + ["..."] + ds[-2:]
    return ", ".join(str(d) for d in ds)


@register("Im2col")
class Im2col(Layer):
    family = "convolution"
    param = "convolution_param"

    def infer_shapes(self, node, in_shapes):
        shape = in_shapes[0]
        g = geometry(node, shape)
        out = list(shape[:g.axis]) + [shape[g.axis] * prod(g.kernel)]
        n = len(g.kernel)
        for i in range(n):
            # BVLC src/caffe/layers/im2col_layer.cpp Reshape: Caffe's conv size (conv_size); its
            # Reshape touches no buffer, so 0 loads (a warning) and only a negative size fails.
            size = shape[g.axis + 1 + i]
            o = conv_size(size + 2 * g.pad[i], g.extent(i), g.stride[i])
            too_small(node, axis_name(i, n), o, _rule(size, f"2 x {g.pad[i]}", g.extent(i), g.stride[i]),
                      node.inputs[0].name, shape, _kernel_span(node), None)
            out.append(o)
        return [tuple(out)]

    def lint(self, node, in_shapes, out_shapes, diags):
        Convolution.lint(self, node, in_shapes, out_shapes, diags)

    def reverse(self, node) -> bool:
        return False

    def receptive_field(self, node, in_rfs):
        rf = in_rfs[0]
        if rf is None or rf.whole:
            return [rf]
        g = geometry(node, node.inputs[0].meta["shape"])
        return [window_rf(rf, g.kernel, g.stride, g.pad, g.dilation)]


# --- depthwise convolutions of Caffe forks ----------------------------------------------------

MOBILE = "the MobileNet/ShuffleNet Caffe forks"


@register("DepthwiseConvolution")
class DepthwiseConvolution(Convolution):
    """yonghenglh6/DepthwiseConvolution: "replacing the type of mobile convolution layer with
    DepthwiseConvolution is all" (its README). The layer (caffe/src/caffe/layers/
    depthwise_conv_layer.cpp) is a ConvolutionLayer subclass: Caffe's parameters, blobs and
    output size; its forward takes channel c's kernel for output c, so it computes a grouped
    convolution only when group = channels = num_output, which netdef requires."""

    origin = MOBILE + " (yonghenglh6/DepthwiseConvolution)"
    checked_against = "yonghenglh6/DepthwiseConvolution README.md and caffe/src/caffe/layers/depthwise_conv_layer.cpp"

    def infer_shapes(self, node, in_shapes):
        out = super().infer_shapes(node, in_shapes)
        g = geometry(node, in_shapes[0])
        cp = node.param.convolution_param
        c = in_shapes[0][g.axis]
        if g.axis != 1 or len(g.kernel) != 2:
            bad(node, "DepthwiseConvolution convolves (N, C, H, W) blobs only", node.span)
        if not (cp.group == c == cp.num_output):
            bad(node, f"DepthwiseConvolution computes one output per input channel: group ({cp.group}) and "
                      f"num_output ({cp.num_output}) must both equal the {c} input channels",
                node.field_span("convolution_param", "group"), code=codes.BAD_GROUP,
                notes=[f"set num_output: {c} and group: {c}, or use type \"Convolution\""])
        return out


def _dw_pair(cp, rep, h, w, default):
    """ConvolutionDepthwiseLayer::LayerSetUp: *_h and *_w when both are given, else the repeated
    field's one value for both axes, or its first two values."""
    if cp.HasField(h) and cp.HasField(w):
        return [getattr(cp, h), getattr(cp, w)]
    vals = list(getattr(cp, rep))
    if not vals:
        return [default, default] if default is not None else None
    return [vals[0], vals[0]] if len(vals) == 1 else [vals[0], vals[1]]


@register("ConvolutionDepthwise")
class ConvolutionDepthwise(Layer):
    """The ConvolutionDepthwise layer of the MobileNet forks (conv_dw_layer.cpp, as in
    farmingyard/caffe-mobilenet): its own LayerSetUp, not BaseConvolutionLayer's. The top has
    the bottom's channels whatever num_output and group say; weight (C, 1, kh, kw), bias (C)
    when bias_term; out = (H + 2 pad - (dilation (k - 1) + 1)) / stride + 1 per axis; 2-D only."""

    family = "convolution"
    param = "convolution_param"
    origin = MOBILE + " (farmingyard/caffe-mobilenet)"
    checked_against = ("farmingyard/caffe-mobilenet conv_dw_layer.cpp (ConvolutionDepthwiseLayer; "
                       "read from a stored copy of the layer)")

    def geometry(self, node):
        cp = node.param.convolution_param
        kernel = _dw_pair(cp, "kernel_size", "kernel_h", "kernel_w", None)
        if kernel is None:
            bad(node, "kernel_size is not set", node.field_span("convolution_param"),
                notes=["give kernel_size, or kernel_h and kernel_w"])
        stride = _dw_pair(cp, "stride", "stride_h", "stride_w", DEFAULT_STRIDE)
        pad = _dw_pair(cp, "pad", "pad_h", "pad_w", DEFAULT_PAD)
        dil = list(cp.dilation)
        dilation = [1, 1] if not dil else ([dil[0]] * 2 if len(dil) == 1 else dil[:2])
        if min(kernel) <= 0 or min(stride) <= 0 or min(dilation) <= 0:
            bad(node, "kernel size, stride and dilation must be positive", node.field_span("convolution_param"))
        return Geometry(1, kernel, stride, pad, dilation)

    def infer_shapes(self, node, in_shapes):
        shape = in_shapes[0]
        need_rank(node, shape, 4)
        g = self.geometry(node)
        out = [shape[0], shape[1]]
        for i in range(2):
            # conv_dw_layer.cpp Reshape: the same int division as Caffe's (conv_size); Reshape
            # then fills weight_multiplier_ (N x out_h x out_w), so 0 aborts whatever bias_term says.
            o = conv_size(shape[2 + i] + 2 * g.pad[i], g.extent(i), g.stride[i])
            too_small(node, axis_name(i, 2), o, _rule(shape[2 + i], f"2 x {g.pad[i]}", g.extent(i), g.stride[i]),
                      node.inputs[0].name, shape, _kernel_span(node),
                      "the weight multiplier (ConvolutionDepthwiseLayer::Reshape)")
            out.append(o)
        return [tuple(out)]

    def lint(self, node, in_shapes, out_shapes, diags):
        g = self.geometry(node)
        hw = in_shapes[0][2:]
        small = [(axis_name(i, 2), _kernel_text(g.kernel[i], g.extent(i)), hw[i], f"2 x {g.pad[i]}")
                 for i in range(2) if g.extent(i) > hw[i] + 2 * g.pad[i]]
        kernel_larger(node, diags, small, out_shapes[0][2:], _kernel_span(node))

    def param_shapes(self, node, in_shapes):
        c = in_shapes[0][1]
        g = self.geometry(node)
        w = (c, 1, *g.kernel)
        return [w, (c,)] if node.param.convolution_param.bias_term else [w]

    def filler_params(self, node):
        return weight_bias_fillers(node.param.convolution_param)

    def receptive_field(self, node, in_rfs):
        rf = in_rfs[0]
        if rf is None or rf.whole:
            return [rf]
        g = self.geometry(node)
        return [window_rf(rf, g.kernel, g.stride, g.pad, g.dilation)]

    def cost(self, node, in_shapes, out_shapes):
        g = self.geometry(node)
        macs = prod(out_shapes[0]) * prod(g.kernel)
        bias = prod(out_shapes[0]) if node.param.convolution_param.bias_term else 0
        return {"macs": macs, "flops": 2 * macs + bias}

    def to_onnx(self, node, g):
        """ONNX Conv with group = channels."""
        geo = self.geometry(node)
        c = g.in_shape(0)[1]
        ins = [g.x(0), g.param(0, "weight")] + ([g.param(1, "bias")] if g.n_blobs > 1 else [])
        onnx_conv(g, ins, g.y(0), geo.kernel, geo.stride, geo.pad, geo.pad, [geo.extent(i) for i in range(2)],
                  g.in_shape(0)[2:], g.out_shape(0)[2:], dilations=list(geo.dilation), group=c)


# --- C3D's 3-D convolution -------------------------------------------------------------------

C3D_ORIGIN = "the C3D fork of Caffe (facebook/C3D)"


# C3D's caffe.proto was not in the stored sources: the defaults of its fields (kernel_depth 1,
# temporal_stride 1, temporal_pad 0, filter_group 1) are the values that leave the temporal axis
# as a plain 2-D layer would, as C3D's own nets assume. Convolution3D and Pooling3D declare them.
C3D_DEFAULTS = {"kernel_depth": 1, "temporal_stride": 1, "temporal_pad": 0, "filter_group": 1}


def c3d_field(node, message: str, name: str) -> int:
    """A C3D field inside convolution_param / pooling_param (a fork field of a BVLC message,
    kept in that block's extra), else the default the layer class declares."""
    sub = node.loc.msg(message) if node.loc is not None else None
    vals = sub.extra.get(name) if sub is not None else None
    if not vals:
        return get(node.type).fork_defaults[name]
    v = vals[-1]
    if not isinstance(v, int) or isinstance(v, bool) or v < 0:
        bad(node, f"{message}.{name} must be a non-negative integer, got {v!r}", node.field_span(message))
    return v


def c3d_geometry(node, message: str, pad_ok=True):
    """(kernel, stride, pad) as (length, height, width), C3D style: kernel_size/stride/pad are one
    value for height and width; kernel_depth/temporal_stride/temporal_pad for the length."""
    p = getattr(node.param, message)
    if message == "convolution_param":
        k = p.kernel_size[0] if len(p.kernel_size) else None
        s = p.stride[0] if len(p.stride) else 1
        pd = p.pad[0] if len(p.pad) else 0
    else:
        k = p.kernel_size if p.HasField("kernel_size") else None
        s, pd = p.stride, p.pad
    if k is None or k <= 0:
        bad(node, "kernel_size must be given and positive", node.field_span(message))
    kd = c3d_field(node, message, "kernel_depth")
    ts = c3d_field(node, message, "temporal_stride")
    tp = c3d_field(node, message, "temporal_pad") if message == "convolution_param" else 0
    if kd <= 0 or ts <= 0 or s <= 0:
        bad(node, "kernel_depth, temporal_stride and stride must be positive", node.field_span(message))
    return (kd, k, k), (ts, s, s), (tp, pd, pd)


@register("Convolution3D")
class Convolution3D(Layer):
    """C3D's 3-D convolution on (N, C, L, H, W). facebook/C3D C3D-v1.0/src/caffe/layers/
    convolution3d_layer.cpp: out = (size + 2 pad - kernel) / stride + 1 on each axis (the
    length with kernel_depth, temporal_pad, temporal_stride); weight (num_output, C,
    kernel_depth, k, k), bias (1, 1, 1, 1, num_output). Its filter_group splits the output
    filters only (each group still reads all C channels), so the result is one plain 3-D
    convolution whatever filter_group says."""

    family = "convolution"
    param = "convolution_param"
    fork_defaults = C3D_DEFAULTS
    origin = C3D_ORIGIN
    checked_against = "facebook/C3D C3D-v1.0/src/caffe/layers/convolution3d_layer.cpp (read from a stored copy)"

    def infer_shapes(self, node, in_shapes):
        shape = in_shapes[0]
        need_rank(node, shape, 5)
        kernel, stride, pad = c3d_geometry(node, "convolution_param")
        cp = node.param.convolution_param
        if not cp.num_output:
            bad(node, "num_output must be positive", node.field_span("convolution_param"))
        groups = c3d_field(node, "convolution_param", "filter_group")
        if groups <= 0 or cp.num_output % groups:
            bad(node, f"filter_group {groups} does not divide num_output {cp.num_output}",
                node.field_span("convolution_param"), code=codes.BAD_GROUP)
        out = [shape[0], cp.num_output]
        for i, name in enumerate(("length", "height", "width")):
            # Convolution3DLayer::SetUp: the same int division (conv_size). Its bias multiplier is
            # a SyncedMemory, not a Blob, so an empty top is left to the forward, as Pooling's.
            o = conv_size(shape[2 + i] + 2 * pad[i], kernel[i], stride[i])
            too_small(node, name, o, _rule(shape[2 + i], f"2 x {pad[i]}", kernel[i], stride[i]), node.inputs[0].name,
                      shape, node.field_span("convolution_param"), None)
            out.append(o)
        return [tuple(out)]

    def lint(self, node, in_shapes, out_shapes, diags):
        kernel, _, pad = c3d_geometry(node, "convolution_param")
        sizes = in_shapes[0][2:]
        small = [(name, f"kernel {kernel[i]}", sizes[i], f"2 x {pad[i]}")
                 for i, name in enumerate(("length", "height", "width")) if kernel[i] > sizes[i] + 2 * pad[i]]
        kernel_larger(node, diags, small, out_shapes[0][2:], node.field_span("convolution_param"))

    def param_shapes(self, node, in_shapes):
        kernel, _, _ = c3d_geometry(node, "convolution_param")
        cp = node.param.convolution_param
        w = (cp.num_output, in_shapes[0][1], *kernel)
        return [w, (1, 1, 1, 1, cp.num_output)] if cp.bias_term else [w]

    def filler_params(self, node):
        return weight_bias_fillers(node.param.convolution_param)

    def receptive_field(self, node, in_rfs):
        rf = in_rfs[0]
        if rf is None or rf.whole:
            return [rf]
        kernel, stride, pad = c3d_geometry(node, "convolution_param")
        n = len(rf.size)
        return [window_rf(rf, kernel[-n:], stride[-n:], pad[-n:])]

    def cost(self, node, in_shapes, out_shapes):
        kernel, _, _ = c3d_geometry(node, "convolution_param")
        macs = prod(out_shapes[0]) * in_shapes[0][1] * prod(kernel)
        bias = prod(out_shapes[0]) if node.param.convolution_param.bias_term else 0
        return {"macs": macs, "flops": 2 * macs + bias}

    def to_onnx(self, node, g):
        """ONNX Conv with a 3-D kernel (Slice for an empty top); the (1, 1, 1, 1, num_output) bias as a vector."""
        kernel, stride, pad = c3d_geometry(node, "convolution_param")
        cp = node.param.convolution_param
        ins = [g.x(0), g.param(0, "weight")]
        if cp.bias_term:
            ins.append(g.param(1, "bias", (cp.num_output,)))
        onnx_conv(g, ins, g.y(0), kernel, stride, pad, pad, kernel, g.in_shape(0)[2:], g.out_shape(0)[2:])
