"""Resizing layers of Caffe forks: SegNet's Upsample (max-unpooling with the pooling mask, or a
nearest-neighbour copy in the one-bottom darknet ports) and PSPNet/DeepLab's Interp (bilinear,
corners to corners). Their parameters are fork fields, read from node.extra (fork.ForkParams).
"""
from __future__ import annotations

import math
from fractions import Fraction

from .. import codes
from ..forks import PSPNET, SEGNET, SYNOPSYS
from ..ir import RF
from .base import Layer, bad, fmt_shape, need_rank, prod, register
from .fork import ForkParams, _int

# SegNet's caffe.proto (alexgkendall/caffe-segnet src/caffe/proto/caffe.proto, UpsampleParameter):
# scale = 1 [default 2], scale_h = 2, scale_w = 3, pad_out_h = 4 [false], pad_out_w = 5 [false],
# upsample_h = 6, upsample_w = 7.
_UPSAMPLE = {"scale": 2, "pad_out_h": False, "pad_out_w": False}


def _frac(x):
    return int(x) if isinstance(x, Fraction) and x.denominator == 1 else x


def nc_then(g, x: str, n_c, tail, dynamic: bool, name: str = "sizes", tail_name: str = "hw") -> str:
    """A shape input (Resize's sizes, ConstantOfShape's shape): x's batch and channels `n_c`
    followed by the fixed dims `tail`; with a dynamic batch, read from Shape(x) at run time."""
    if not dynamic:
        return g.ints([*n_c, *tail], name)
    nc = g.op("Slice", [g.op("Shape", [x], g.tmp("shape")), g.ints([0], "s0"), g.ints([2], "s2")], g.tmp("nc"))
    return g.op("Concat", [nc, g.ints(list(tail), tail_name)], g.tmp(name), axis=0)


@register("Upsample")
class Upsample(Layer):
    """SegNet's max-unpooling (bottoms: data, pooling mask); one-bottom ports scale by nearest
    neighbour. Output: upsample_h/w if given, else H*scale_h - pad_out_h (SegNet)."""

    family = "resize"
    bottoms = (1, 2)
    fork_defaults = _UPSAMPLE
    origin = SEGNET + "; one-bottom nearest-neighbour form: darknet2caffe ports (YOLOv3)"
    checked_against = ("alexgkendall/caffe-segnet src/caffe/layers/upsample_layer.cpp; "
                       "one bottom: davidwjx/netboom FW/nu4100/app/target/ev72/graphs/common/custom_layers/yolo_v3/"
                       "Upsample2Layer_pixel.h (a YOLOv3 Caffe upsample: output (h, w) reads input (h / scale, "
                       "w / scale))")

    def sizes(self, node, shape):
        p = ForkParams(node, "upsample_param")
        # UpsampleLayer::LayerSetUp: upsample_h/w when both are given, else scale (or scale_h
        # and scale_w), which must be > 1; Reshape: H * scale_h - pad_out_h.
        if p.has("upsample_h") and p.has("upsample_w"):
            return _int(node, p, "upsample_h"), _int(node, p, "upsample_w"), None
        sh = _int(node, p, "scale_h") if p.has("scale_h") else _int(node, p, "scale")
        sw = _int(node, p, "scale_w") if p.has("scale_w") else _int(node, p, "scale")
        if sh < 1 or sw < 1:
            bad(node, f"upsample scale must be positive, got {sh} x {sw}", p.span("scale"))
        h = shape[2] * sh - int(bool(p.get("pad_out_h")))
        w = shape[3] * sw - int(bool(p.get("pad_out_w")))
        return h, w, (sh, sw)

    def infer_shapes(self, node, in_shapes):
        shape = in_shapes[0]
        need_rank(node, shape, 4)
        if len(in_shapes) > 1:
            mask = in_shapes[1]
            if mask != shape:
                bad(node, f"the pooling mask '{node.inputs[1].label}' {fmt_shape(mask)} must have the shape of "
                          f"the data '{node.inputs[0].label}' {fmt_shape(shape)}", node.bottom_span(1),
                    code=codes.SHAPE_MISMATCH)
        h, w, _ = self.sizes(node, shape)
        if h <= 0 or w <= 0:
            bad(node, f"the output size would be {h} x {w}", node.span, code=codes.BAD_GEOMETRY)
        return [(shape[0], shape[1], h, w)]

    def receptive_field(self, node, in_rfs):
        rf = in_rfs[0]
        if rf is None or rf.whole:
            return [rf]
        shape = node.inputs[0].meta["shape"]
        h, w, _ = self.sizes(node, shape)
        scale = (Fraction(h, shape[2]), Fraction(w, shape[3]))
        jump = tuple(_frac(rf.stride[i] / scale[i]) for i in range(min(2, len(rf.size))))
        return [RF(rf.size, jump + tuple(rf.stride[2:]), rf.center)]

    def cost(self, node, in_shapes, out_shapes):
        return {"macs": 0, "flops": 0}

    def to_onnx(self, node, g):
        """Two bottoms: ScatterElements of each plane's values to their mask indices in a zero
        plane (Caffe's loop, later writes win). One bottom: Resize, nearest, asymmetric, floor
        (output o copies input floor(o / scale))."""
        n, c, h, w = g.in_shape(0)
        oh, ow = g.out_shape(0)[2:]
        dynamic = any(g.in_dyn(0))
        if g.n_in == 1:
            sizes = nc_then(g, g.x(0), (n, c), (oh, ow), dynamic)
            g.op("Resize", [g.x(0), "", "", sizes], g.y(0), mode="nearest",
                 coordinate_transformation_mode="asymmetric", nearest_mode="floor")
            return
        flat = g.op("Reshape", [g.x(0), g.ints([0, 0, -1], "flat")], g.tmp("values"))
        idx = g.op("Cast", [g.op("Reshape", [g.x(1), g.ints([0, 0, -1], "flat_mask")], g.tmp("mask"))],
                   g.tmp("index"), to=g.INT64)
        zshape = nc_then(g, flat, (n, c), (oh * ow,), dynamic, "zeros_shape", "plane")
        zeros = g.op("ConstantOfShape", [zshape], g.tmp("zeros"))
        if g.fp16:
            zeros = g.op("Cast", [zeros], g.tmp("zeros16"), to=g.FLOAT16)
        out = g.op("ScatterElements", [zeros, idx, flat], g.tmp("scatter"), axis=2)
        g.op("Reshape", [out, g.ints([0, 0, oh, ow], "out_shape")], g.y(0))


@register("UpsampleDarknet")
class UpsampleDarknet(Upsample):
    """Synopsys' darknet upsampling: the last two axes times upsample_darknet_param.stride
    (default 1); top (h, w) copies bottom (h / stride, w / stride), nearest neighbour."""

    bottoms = (1, 1)
    fork_defaults = {"stride": 1}
    origin = SYNOPSYS
    checked_against = ("foss-for-synopsys-dwc-arc-processors/synopsys-caffe src/caffe/layers/"
                       "upsample_darknet_layer.cpp (Reshape, Forward_cpu) and caffe.proto "
                       "(UpsampleDarknetParameter stride = 1 [default 1])")

    def sizes(self, node, shape):
        # UpsampleDarknetLayer::Reshape: H * stride, W * stride; Forward_cpu reads h / stride.
        p = ForkParams(node, "upsample_darknet_param")
        s = _int(node, p, "stride")
        if s < 1:
            bad(node, f"upsample_darknet_param.stride must be positive, got {s}", p.span("stride"))
        return shape[2] * s, shape[3] * s, (s, s)

    def to_onnx(self, node, g):
        """Resize, nearest, asymmetric, floor (output o copies input floor(o / stride))."""
        super().to_onnx(node, g)


# foss-for-synopsys-dwc-arc-processors/synopsys-caffe caffe.proto ResizeBilinearParameter:
# align_corners = 1 [false], output_height = 2, output_width = 3, data_format = 4 ["NHWC"],
# scale_height = 5 [1], scale_width = 6 [1], half_pixel_centers = 7 [false],
# pytorch_half_pixel = 8 [false].
_RESIZE_BILINEAR = {"align_corners": False, "data_format": "NHWC", "scale_height": 1.0, "scale_width": 1.0,
                    "half_pixel_centers": False, "pytorch_half_pixel": False}


def resize_bilinear_mode(node) -> str:
    """The ONNX coordinate_transformation_mode equal to the fork's source coordinate
    (resize_bilinear_layer.cpp compute_interpolation_weights)."""
    p = ForkParams(node, "resize_bilinear_param")
    flags = [f for f in ("align_corners", "half_pixel_centers", "pytorch_half_pixel") if p.get(f)]
    if len(flags) > 1:
        bad(node, f"resize_bilinear_param sets both {flags[0]} and {flags[1]}", p.span(),
            notes=["ResizeBilinearLayer::LayerSetUp allows at most one of align_corners, half_pixel_centers, "
                   "pytorch_half_pixel"])
    return {"align_corners": "align_corners", "half_pixel_centers": "half_pixel",
            "pytorch_half_pixel": "pytorch_half_pixel"}.get(flags[0] if flags else "", "asymmetric")


def synopsys_resize_shape(node, shape, field: str, check_mode) -> list[tuple]:
    """The output shape of Synopsys' ResizeBilinear and ResizeNearestNeighbor, whose Reshape is
    the same (resize_bilinear_layer.cpp, resize_nearest_neighbor_layer.cpp, NCHW branch; the
    NHWC default is not implemented here): output_height/width when given, else
    floor(input size x scale_height/width)."""
    p = ForkParams(node, field)
    if str(p.get("data_format")) != "NCHW":
        bad(node, f"{field}.data_format {p.get('data_format')!r}: netdef implements \"NCHW\" only", p.span(),
            notes=["the fork's default is \"NHWC\"; give data_format: \"NCHW\" for (N, C, H, W) blobs"])
    need_rank(node, shape, 4)
    check_mode(node)
    if node.param.top and node.param.bottom and node.param.top[0] == node.param.bottom[0]:
        bad(node, f"{node.type} does not allow in-place computation", node.span)
    out = []
    for i, (size_f, scale_f) in enumerate((("output_height", "scale_height"), ("output_width", "scale_width"))):
        if p.has(size_f):
            out.append(_int(node, p, size_f))
        else:
            try:
                out.append(int(math.floor(shape[2 + i] * float(p.get(scale_f)))))
            except (TypeError, ValueError, OverflowError):
                bad(node, f"{field}.{scale_f} must be a number, got {p.get(scale_f)!r}", p.span())
    if min(out) <= 0:
        bad(node, f"the output size would be {out[0]} x {out[1]}", p.span(), code=codes.BAD_GEOMETRY)
    return [(shape[0], shape[1], out[0], out[1])]


@register("ResizeBilinear")
class ResizeBilinear(Layer):
    """Synopsys' (TensorFlow-style) bilinear resize of an NCHW blob to output_height x
    output_width (else floor(H * scale_height) x floor(W * scale_width)). Source coordinate of
    output i: i * s with align_corners (s = (in - 1) / (out - 1) when out > 1), (i + 0.5) * s - 0.5
    with half_pixel_centers or pytorch_half_pixel (s = in / out), else i * in / out; the two
    neighbours floor and ceil, clamped to the input."""

    family = "resize"
    bottoms = (1, 1)
    fork_defaults = _RESIZE_BILINEAR
    origin = SYNOPSYS
    checked_against = ("foss-for-synopsys-dwc-arc-processors/synopsys-caffe src/caffe/layers/resize_bilinear_layer.cpp "
                       "(Reshape, compute_interpolation_weights, Forward_cpu) and caffe.proto")

    def infer_shapes(self, node, in_shapes):
        # ResizeBilinearLayer::Reshape (NCHW branch); the NHWC default is not implemented here.
        return synopsys_resize_shape(node, in_shapes[0], "resize_bilinear_param", resize_bilinear_mode)

    def receptive_field(self, node, in_rfs):
        rf = in_rfs[0]
        if rf is None or rf.whole:
            return [rf]
        shape = node.inputs[0].meta["shape"]
        out = node.outputs[0].meta["shape"]
        align = resize_bilinear_mode(node) == "align_corners"
        jump = []
        for i in range(min(2, len(rf.size))):
            hi, ho = shape[2 + i], out[2 + i]
            ratio = Fraction(hi - 1, ho - 1) if align and ho > 1 else Fraction(hi, ho)
            jump.append(_frac(rf.stride[i] * ratio))
        return [RF(tuple(rf.size[i] + rf.stride[i] for i in range(len(rf.size))), tuple(jump), rf.center)]

    def cost(self, node, in_shapes, out_shapes):
        return {"macs": 0, "flops": 8 * prod(out_shapes[0])}

    def to_onnx(self, node, g):
        """ONNX Resize, linear, with the coordinate_transformation_mode of the fork's rule
        (align_corners, half_pixel, pytorch_half_pixel or asymmetric)."""
        out = g.out_shape(0)
        sizes = nc_then(g, g.x(0), out[:2], out[2:], any(g.out_dyn(0)))
        g.op("Resize", [g.x(0), "", "", sizes], g.y(0), mode="linear",
             coordinate_transformation_mode=resize_bilinear_mode(node))


def max_pool_mask(g, node, kernel, stride, pad, in_hw, out_hw):
    """A MAX pooling layer's second top, Caffe's mask: the index h * W + w (within its plane)
    of each window's first maximum. ONNX MaxPool's Indices count over the whole tensor in the
    same row-major order and also keep the first maximum (strict comparison, as Caffe's
    `bottom > top`), so the plane index is Indices mod H*W."""
    ends = []
    for i in range(2):
        e, crop = g.fit_end(in_hw[i], pad[i], out_hw[i], kernel[i], stride[i])
        if crop is not None or e >= kernel[i]:
            g.fail("the pooling mask of a layer whose windows lie past its input has no ONNX equivalent")
        ends.append(e)
    y, ind = g.op("MaxPool", [g.x(0)], [g.y(0), g.tmp("indices")], kernel_shape=list(kernel),
                  strides=list(stride), pads=[pad[0], pad[1], ends[0], ends[1]])
    plane = g.op("Mod", [ind, g.ints(in_hw[0] * in_hw[1], "plane")], g.tmp("plane_index"))
    g.cast_float(plane, g.y(1))


# PSPNet's caffe.proto (hszhao/PSPNet src/caffe/proto/caffe.proto, InterpParameter): height = 1,
# width = 2, zoom_factor = 3 [default 1], shrink_factor = 4 [default 1], pad_beg = 5 [0],
# pad_end = 6 [0]. "Given" below means written in the file, as InterpLayer tests has_*().
_INTERP = {"pad_beg": 0, "pad_end": 0, "zoom_factor": 1, "shrink_factor": 1}


@register("Interp")
class Interp(Layer):
    """DeepLab/PSPNet bilinear resize (align-corners). zoom: (H-1)*zoom + 1; shrink:
    (H-1)/shrink + 1; both: shrink then zoom; or an explicit height/width; pad_beg/pad_end
    (<= 0) crop the input first."""

    family = "resize"
    bottoms = (1, 2)
    fork_defaults = _INTERP
    origin = PSPNET
    checked_against = "hszhao/PSPNet src/caffe/layers/interp_layer.cpp and src/caffe/util/interp.cpp"

    def sizes(self, node, in_shapes):
        p = ForkParams(node, "interp_param")
        shape = in_shapes[0]
        need_rank(node, shape, 4)
        beg, end = int(p.get("pad_beg")), int(p.get("pad_end"))
        if beg > 0 or end > 0:
            bad(node, "Interp supports only pad_beg/pad_end <= 0 (cropping)", p.span("pad_beg"))
        eff = [shape[2] + beg + end, shape[3] + beg + end]
        zoom, shrink = p.has("zoom_factor"), p.has("shrink_factor")
        # InterpLayer::LayerSetUp, in its order of precedence.
        if shrink and not zoom:
            s = _int(node, p, "shrink_factor")
            if s < 1:
                bad(node, f"shrink_factor must be at least 1, got {s}", p.span("shrink_factor"))
            out = [(e - 1) // s + 1 for e in eff]
        elif zoom and not shrink:
            z = _int(node, p, "zoom_factor")
            if z < 1:
                bad(node, f"zoom_factor must be at least 1, got {z}", p.span("zoom_factor"))
            out = [e + (e - 1) * (z - 1) for e in eff]
        elif p.has("height") and p.has("width"):
            out = [_int(node, p, "height"), _int(node, p, "width")]
        elif zoom and shrink:
            s, z = _int(node, p, "shrink_factor"), _int(node, p, "zoom_factor")
            if s < 1 or z < 1:
                bad(node, f"shrink_factor and zoom_factor must be at least 1, got {s} and {z}", p.span())
            out = [(e - 1) // s + 1 for e in eff]
            out = [o + (o - 1) * (z - 1) for o in out]
        elif len(in_shapes) > 1:
            out = list(in_shapes[1][2:4])
        else:
            bad(node, "interp_param gives no output size", p.span(),
                notes=["give zoom_factor, shrink_factor, or height and width"])
        if min(eff) <= 0 or min(out) <= 0:
            bad(node, f"the output size would be {out[0]} x {out[1]} from an input of {fmt_shape(shape)}",
                p.span(), code=codes.BAD_GEOMETRY)
        return out

    def infer_shapes(self, node, in_shapes):
        shape = in_shapes[0]
        h, w = self.sizes(node, in_shapes)
        return [(shape[0], shape[1], h, w)]

    def receptive_field(self, node, in_rfs):
        rf = in_rfs[0]
        if rf is None or rf.whole:
            return [rf]
        shape = node.inputs[0].meta["shape"]
        out = node.outputs[0].meta["shape"]
        # Align-corners: output o samples input o * (H_in - 1) / (H_out - 1).
        jump = []
        for i in range(min(2, len(rf.size))):
            hi, ho = shape[2 + i], out[2 + i]
            ratio = Fraction(hi - 1, ho - 1) if ho > 1 else Fraction(1)
            jump.append(_frac(rf.stride[i] * ratio))
        return [RF(tuple(rf.size[i] + rf.stride[i] for i in range(len(rf.size))), tuple(jump), rf.center)]

    def cost(self, node, in_shapes, out_shapes):
        return {"macs": 0, "flops": 8 * prod(out_shapes[0])}

    def to_onnx(self, node, g):
        """ONNX Resize, linear, align_corners (caffe_cpu_interp2 maps corner to corner)."""
        out = g.out_shape(0)
        p = ForkParams(node, "interp_param")
        beg, end = int(p.get("pad_beg")), int(p.get("pad_end"))
        x = g.x(0)
        if beg or end:
            # pad_beg/pad_end <= 0 crop the input before resizing.
            h, w = g.in_shape(0)[2:]
            x = g.op("Slice", [x, g.ints([-beg, -beg], "crop_starts"), g.ints([h + end, w + end], "crop_ends"),
                               g.ints([2, 3], "crop_axes")], g.tmp("cropped"))
        # PSPNet's caffe_cpu_interp2 maps corners to corners: (in - 1) / (out - 1).
        sizes = nc_then(g, g.x(0), out[:2], out[2:], any(g.out_dyn(0)))
        g.op("Resize", [x, "", "", sizes], g.y(0), mode="linear", coordinate_transformation_mode="align_corners")


# foss-for-synopsys-dwc-arc-processors/synopsys-caffe caffe.proto ResizeNearestNeighborParameter:
# align_corners = 1 [false], output_height = 2, output_width = 3, data_format = 4 ["NHWC"],
# scale_height = 5 [1], scale_width = 6 [1], half_pixel_centers = 7 [false], half_pixel_onnx = 8
# [false]; LayerParameter resize_nearest_neighbor_param = 210.
_RESIZE_NEAREST = {"align_corners": False, "data_format": "NHWC", "scale_height": 1.0, "scale_width": 1.0,
                   "half_pixel_centers": False, "half_pixel_onnx": False}
# resize_nearest_neighbor_layer.cpp Forward_cpu, the source index of output o (s as
# CalculateResizeScale: (in - 1) / (out - 1) with align_corners and out > 1, else in / out):
#   half_pixel_onnx     clamp(floor((o + 0.5) s - 0.5), 0, in - 1)
#   half_pixel_centers  clamp(floor((o + 0.5) s), 0, in - 1)
#   align_corners       min(round(o s), in - 1)   (roundf: halves away from zero)
#   otherwise           min(floor(o s), in - 1)
# ONNX Resize computes the same index with these (coordinate_transformation_mode, nearest_mode).
_NEAREST_ONNX = {"half_pixel_onnx": ("half_pixel", "floor"), "half_pixel_centers": ("half_pixel", "round_prefer_ceil"),
                 "align_corners": ("align_corners", "round_prefer_ceil"), "": ("asymmetric", "floor")}


def resize_nearest_mode(node) -> str:
    """Which of the fork's index rules applies ("" for the plain one)."""
    p = ForkParams(node, "resize_nearest_neighbor_param", _RESIZE_NEAREST)
    flags = [f for f in ("align_corners", "half_pixel_centers", "half_pixel_onnx") if p.get(f)]
    if len(flags) > 1:
        bad(node, f"resize_nearest_neighbor_param sets both {flags[0]} and {flags[1]}", p.span(),
            notes=["ResizeNearestNeighborLayer::LayerSetUp allows at most one of align_corners, half_pixel_centers, "
                   "half_pixel_onnx"])
    return flags[0] if flags else ""


def nearest_source(mode: str, o: int, n_in: int, n_out: int) -> int:
    """The fork's source index of output o (exact arithmetic; the fork's is float32)."""
    s = Fraction(n_in - 1, n_out - 1) if mode == "align_corners" and n_out > 1 else Fraction(n_in, n_out)
    if mode == "half_pixel_onnx":
        return max(min(math.floor((o + Fraction(1, 2)) * s - Fraction(1, 2)), n_in - 1), 0)
    if mode == "half_pixel_centers":
        return max(min(math.floor((o + Fraction(1, 2)) * s), n_in - 1), 0)
    if mode == "align_corners":
        return min(math.floor(o * s + Fraction(1, 2)), n_in - 1)
    return min(math.floor(o * s), n_in - 1)


@register("ResizeNearestNeighbor")
class ResizeNearestNeighbor(Layer):
    """Synopsys' (TensorFlow-style) nearest-neighbour resize of an NCHW blob to output_height x
    output_width (else floor(H * scale_height) x floor(W * scale_width)); each output copies the
    input at the source index of the fork's rule (align_corners, half_pixel_centers,
    half_pixel_onnx or plain)."""

    family = "resize"
    bottoms = (1, 1)
    fork_defaults = _RESIZE_NEAREST
    origin = SYNOPSYS
    checked_against = ("foss-for-synopsys-dwc-arc-processors/synopsys-caffe src/caffe/layers/"
                       "resize_nearest_neighbor_layer.cpp (LayerSetUp, Reshape, Forward_cpu) and caffe.proto")

    def infer_shapes(self, node, in_shapes):
        # ResizeNearestNeighborLayer::Reshape (NCHW branch); the NHWC default is not implemented here.
        return synopsys_resize_shape(node, in_shapes[0], "resize_nearest_neighbor_param", resize_nearest_mode)

    def receptive_field(self, node, in_rfs):
        rf = in_rfs[0]
        if rf is None or rf.whole:
            return [rf]
        shape, out = node.inputs[0].meta["shape"], node.outputs[0].meta["shape"]
        mode = resize_nearest_mode(node)
        jump, center = [], []
        for i in range(min(2, len(rf.size))):
            hi, ho = shape[2 + i], out[2 + i]
            ratio = Fraction(hi - 1, ho - 1) if mode == "align_corners" and ho > 1 else Fraction(hi, ho)
            jump.append(_frac(rf.stride[i] * ratio))
            center.append(_frac(rf.center[i] + nearest_source(mode, 0, hi, ho) * rf.stride[i]))
        return [RF(rf.size, tuple(jump) + tuple(rf.stride[2:]), tuple(center) + tuple(rf.center[2:]))]

    def cost(self, node, in_shapes, out_shapes):
        return {"macs": 0, "flops": 0}

    def to_onnx(self, node, g):
        """ONNX Resize, nearest, with the (coordinate_transformation_mode, nearest_mode) pair that
        gives the fork's source index."""
        out = g.out_shape(0)
        sizes = nc_then(g, g.x(0), out[:2], out[2:], any(g.out_dyn(0)))
        transform, rounding = _NEAREST_ONNX[resize_nearest_mode(node)]
        g.op("Resize", [g.x(0), "", "", sizes], g.y(0), mode="nearest", coordinate_transformation_mode=transform,
             nearest_mode=rounding)
