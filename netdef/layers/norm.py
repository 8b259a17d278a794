"""Normalisation and per-channel affine layers: LRN, BatchNorm, Scale, Bias, MVN."""
from __future__ import annotations

from .. import codes
from ..proto import pb
from .base import Layer, bad, canonical_axis, fmt_shape, need_rank, prod, register


def _constant(value: float):
    f = pb.FillerParameter()
    f.type = "constant"
    f.value = value
    return f


@register("LRN")
class LRN(Layer):
    param = "lrn_param"
    elementwise = True

    def check(self, node, diags):
        lp = node.param.lrn_param
        if lp.local_size % 2 == 0:
            diags.add(codes.BAD_PARAM.at(node.field_span("lrn_param", "local_size"),
                                         notes=["Caffe's LRN supports odd local_size only (1, 3, 5, ...)"],
                                         message=f"layer '{node.name}': local_size {lp.local_size} is even"))

    def infer_shapes(self, node, in_shapes):
        need_rank(node, in_shapes[0], 4)
        return [in_shapes[0]]

    def cost(self, node, in_shapes, out_shapes):
        lp = node.param.lrn_param
        window = lp.local_size if lp.norm_region == pb.LRNParameter.ACROSS_CHANNELS else lp.local_size ** 2
        # Per element: square and sum the window, then scale, power and divide.
        return {"macs": 0, "flops": prod(out_shapes[0]) * (2 * window + 3)}


@register("BatchNorm")
class BatchNorm(Layer):
    param = "batch_norm_param"
    elementwise = True

    def param_shapes(self, node, in_shapes):
        shape = in_shapes[0]
        c = shape[1] if len(shape) > 1 else 1
        # mean, variance, and the moving-average scale factor that both are divided by.
        return [(c,), (c,), (1,)]

    def stat_blobs(self, node):
        return {0, 1, 2}

    def filler_params(self, node):
        # BatchNormLayer::LayerSetUp zero-fills all three blobs.
        return [_constant(0), _constant(0), _constant(0)]

    def cost(self, node, in_shapes, out_shapes):
        return {"macs": 0, "flops": 2 * prod(out_shapes[0])}


def affine_shape(node, field: str, in_shapes) -> tuple:
    """The parameter shape of a one-bottom Scale/Bias: bottom axes [axis, axis + num_axes)."""
    msg = getattr(node.param, field)
    shape = in_shapes[0]
    axis = canonical_axis(node, msg.axis, shape, (field, "axis"))
    if msg.num_axes < -1:
        bad(node, f"num_axes must be -1 (all remaining axes) or at least 0, got {msg.num_axes}",
            node.field_span(field, "num_axes"), code=codes.BAD_AXIS)
    if msg.num_axes == -1:
        return tuple(shape[axis:])
    if axis + msg.num_axes > len(shape):
        bad(node, f"axis {axis} + num_axes {msg.num_axes} runs past the {len(shape)}-D bottom {fmt_shape(shape)}",
            node.field_span(field, "num_axes"), code=codes.BAD_AXIS)
    return tuple(shape[axis:axis + msg.num_axes])


def check_broadcast(node, field: str, shape, other) -> None:
    """Scale/BiasLayer::Reshape with a second bottom: it must match bottom 0 from `axis` on."""
    msg = getattr(node.param, field)
    axis = 0 if len(other) == 0 else canonical_axis(node, msg.axis, shape, (field, "axis"))
    if axis + len(other) > len(shape):
        bad(node, f"'{node.inputs[1].name}' {fmt_shape(other)} extends past '{node.inputs[0].name}' "
                  f"{fmt_shape(shape)} when applied from axis {axis}", node.bottom_span(1), code=codes.SHAPE_MISMATCH)
    for i, d in enumerate(other):
        if shape[axis + i] != d:
            bad(node, f"'{node.inputs[1].name}' {fmt_shape(other)} does not match '{node.inputs[0].name}' "
                      f"{fmt_shape(shape)} from axis {axis}: dimension {i} is {d}, not {shape[axis + i]}",
                node.bottom_span(1), code=codes.SHAPE_MISMATCH,
                notes=[f"the second bottom must equal bottom 0's shape[{axis}:{axis + len(other)}] = "
                       f"{fmt_shape(shape[axis:axis + len(other)])}"])


@register("Scale")
class Scale(Layer):
    param = "scale_param"
    bottoms = (1, 2)
    elementwise = True

    def infer_shapes(self, node, in_shapes):
        if len(in_shapes) > 1:
            check_broadcast(node, "scale_param", in_shapes[0], in_shapes[1])
        else:
            affine_shape(node, "scale_param", in_shapes)
        return [in_shapes[0]]

    def param_shapes(self, node, in_shapes):
        sp = node.param.scale_param
        if len(in_shapes) > 1:
            # The scale comes from bottom 1; only the optional bias is a parameter.
            return [tuple(in_shapes[1])] if sp.bias_term else []
        s = affine_shape(node, "scale_param", in_shapes)
        return [s, s] if sp.bias_term else [s]

    def filler_params(self, node):
        sp = node.param.scale_param
        # ScaleLayer fills with constant 1 unless a filler is given; the bias with bias_filler.
        scale = sp.filler if sp.HasField("filler") else _constant(1)
        fillers = [] if len(node.inputs) > 1 else [scale]
        return fillers + ([sp.bias_filler] if sp.bias_term else [])

    def cost(self, node, in_shapes, out_shapes):
        n = prod(out_shapes[0])
        return {"macs": 0, "flops": n * (2 if node.param.scale_param.bias_term else 1)}


@register("Bias")
class Bias(Layer):
    param = "bias_param"
    bottoms = (1, 2)
    elementwise = True

    def infer_shapes(self, node, in_shapes):
        if len(in_shapes) > 1:
            check_broadcast(node, "bias_param", in_shapes[0], in_shapes[1])
        else:
            affine_shape(node, "bias_param", in_shapes)
        return [in_shapes[0]]

    def param_shapes(self, node, in_shapes):
        if len(in_shapes) > 1:
            return []
        return [affine_shape(node, "bias_param", in_shapes)]

    def filler_params(self, node):
        if len(node.inputs) > 1:
            return []
        bp = node.param.bias_param
        return [bp.filler if bp.HasField("filler") else _constant(0)]


@register("MVN")
class MVN(Layer):
    param = "mvn_param"
    elementwise = True

    def cost(self, node, in_shapes, out_shapes):
        per = 4 if node.param.mvn_param.normalize_variance else 2
        return {"macs": 0, "flops": prod(out_shapes[0]) * per}
