"""InnerProduct and Embed: dense layers over the axes from `axis` on."""
from __future__ import annotations

from .. import codes
from .base import Layer, bad, canonical_axis, count, fork_filler, prod, register, weight_bias_fillers, whole_rf


@register("InnerProduct")
class InnerProduct(Layer):
    family = "dense"
    param = "inner_product_param"

    def check(self, node, diags):
        ip = node.param.inner_product_param
        if not ip.HasField("num_output"):
            diags.add(codes.MISSING_PARAM.at(node.field_span("inner_product_param"), what="num_output",
                                             layer=node.name, type=node.type,
                                             notes=["num_output is the number of outputs"]))
        elif ip.num_output == 0:
            # Caffe takes it, then its weight filler CHECK-fails on the empty (0, K) blob.
            diags.add(codes.BAD_PARAM.at(node.field_span("inner_product_param", "num_output"),
                                         message=f"layer '{node.name}': num_output must be positive, got 0"))

    def axis(self, node, shape) -> int:
        ip = node.param.inner_product_param
        return canonical_axis(node, ip.axis, shape, ("inner_product_param", "axis"))

    def infer_shapes(self, node, in_shapes):
        shape = in_shapes[0]
        axis = self.axis(node, shape)
        # Everything from `axis` on is flattened into one vector of K inputs.
        return [tuple(shape[:axis]) + (node.param.inner_product_param.num_output,)]

    def param_shapes(self, node, in_shapes):
        ip = node.param.inner_product_param
        shape = in_shapes[0]
        k = count(shape, self.axis(node, shape))
        # transpose stores the weight as (K, N) instead of Caffe's usual (N, K).
        w = (k, ip.num_output) if ip.transpose else (ip.num_output, k)
        return [w, (ip.num_output,)] if ip.bias_term else [w]

    def filler_params(self, node):
        return weight_bias_fillers(node.param.inner_product_param)

    def receptive_field(self, node, in_rfs):
        rf = in_rfs[0]
        if rf is None or rf.whole:
            return [rf]
        shape = node.inputs[0].meta["shape"]
        axis = self.axis(node, shape)
        if axis >= 2:
            # Only trailing axes are mixed (e.g. axis 2 of N,T,D): spatial layout is kept.
            return [rf]
        return [whole_rf(rf, shape[2:])]

    def cost(self, node, in_shapes, out_shapes):
        ip = node.param.inner_product_param
        shape = in_shapes[0]
        axis = self.axis(node, shape)
        macs = count(shape, 0, axis) * count(shape, axis) * ip.num_output
        return {"macs": macs, "flops": 2 * macs + (prod(out_shapes[0]) if ip.bias_term else 0)}

    def to_onnx(self, node, g):
        """ONNX Gemm over the input flattened at `axis` (transB unless `transpose`)."""
        self.gemm(node, g, g.param(0, "weight"))

    @staticmethod
    def gemm(node, g, w: str) -> None:
        """The inner product of input 0 with the weight tensor `w` (plus the bias blob), as
        Caffe computes it: the input flattened at `axis`, one Gemm, the top's shape restored."""
        shape = g.in_shape(0)
        ip = node.param.inner_product_param
        axis = canonical_axis(node, ip.axis, shape)
        x = g.x(0)
        if len(shape) != 2 or axis != 1:
            x = g.op("Flatten", [x], g.tmp("flatten"), axis=axis)
        ins = [x, w] + ([g.param(1, "bias")] if g.n_blobs > 1 else [])
        out = g.out_shape(0)
        direct = len(out) == 2
        y = g.op("Gemm", ins, g.y(0) if direct else g.tmp("gemm"), transB=0 if ip.transpose else 1)
        if not direct:
            g.reshape(y, out, g.out_dyn(0), g.y(0))


@register("Embed")
class Embed(Layer):
    family = "dense"
    param = "embed_param"

    def check(self, node, diags):
        ep = node.param.embed_param
        for f, why in (("num_output", "the embedding size"), ("input_dim", "the vocabulary size")):
            if not getattr(ep, f):
                diags.add(codes.MISSING_PARAM.at(node.field_span("embed_param"), what=f, layer=node.name,
                                                 type=node.type, notes=[f"{f} is {why}; it must be positive"]))

    def infer_shapes(self, node, in_shapes):
        return [tuple(in_shapes[0]) + (node.param.embed_param.num_output,)]

    def param_shapes(self, node, in_shapes):
        ep = node.param.embed_param
        w = (ep.input_dim, ep.num_output)
        return [w, (ep.num_output,)] if ep.bias_term else [w]

    def filler_params(self, node):
        return weight_bias_fillers(node.param.embed_param)

    def receptive_field(self, node, in_rfs):
        return [None]

    def cost(self, node, in_shapes, out_shapes):
        # A table lookup: no multiply-accumulates; the bias is one add per output element.
        return {"macs": 0, "flops": prod(out_shapes[0]) if node.param.embed_param.bias_term else 0}

    def to_onnx(self, node, g):
        """ONNX Gather of the weight rows (indices truncated to integers) plus the bias."""
        idx = g.op("Cast", [g.x(0)], g.tmp("index"), to=7)  # INT64; Caffe's static_cast<int> truncates too
        w = g.param(0, "weight")
        if g.n_blobs > 1:
            y = g.op("Gather", [w, idx], g.tmp("gather"), axis=0)
            g.op("Add", [y, g.param(1, "bias")], g.y(0))
        else:
            g.op("Gather", [w, idx], g.y(0), axis=0)



@register("MarginInnerProduct")
class MarginInnerProduct(Layer):
    """SphereFace's A-Softmax inner product. wy1iu/sphereface tools/caffe-sphereface/src/caffe/
    layers/margin_inner_product_layer.cpp: bottoms (features, labels), the labels one per row;
    weight (num_output, K) with K = count(axis) of the features; top 0 keeps the axes before
    `axis` and adds num_output, top 1 (when given) is lambda, shape (1,). Its forward reads the
    labels and an iteration counter and renormalises its weight: a training layer, which export
    and verify leave out (the features are the deployed output). margin_inner_product_param
    (the fork's proto): num_output, type (SINGLE/DOUBLE/TRIPLE/QUADRUPLE), weight_filler, base,
    gamma, power, iteration, lambda_min, axis [default 1]."""

    family = "dense"
    bottoms = (2, 2)
    tops = (1, 2)
    compares = True
    training_only = True
    origin = "the SphereFace fork of Caffe (wy1iu/sphereface)"
    fork_defaults = {"axis": 1}
    checked_against = "wy1iu/sphereface tools/caffe-sphereface/src/caffe/layers/margin_inner_product_layer.cpp"

    def _params(self, node):
        from .fork import num_output_and_axis
        return num_output_and_axis(node, "margin_inner_product_param")

    def infer_shapes(self, node, in_shapes):
        feat, label = in_shapes
        n, axis = self._params(node)
        axis = canonical_axis(node, axis, feat)
        if feat[0] != (label[0] if label else 1):
            bad(node, f"{feat[0]} feature rows but {label[0] if label else 1} labels", node.bottom_span(1),
                code=codes.SHAPE_MISMATCH)
        return [tuple(feat[:axis]) + (n,), (1,)][:len(node.outputs)]

    def param_shapes(self, node, in_shapes):
        n, axis = self._params(node)
        axis = canonical_axis(node, axis, in_shapes[0])
        return [(n, count(in_shapes[0], axis))]

    def filler_params(self, node):
        return [fork_filler(node, "margin_inner_product_param", "weight_filler")]

    def receptive_field(self, node, in_rfs):
        return [None] * len(node.outputs)

    def cost(self, node, in_shapes, out_shapes):
        macs = prod(out_shapes[0]) * count(in_shapes[0], len(out_shapes[0]) - 1)
        return {"macs": macs, "flops": 2 * macs}
