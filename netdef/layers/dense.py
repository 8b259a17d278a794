"""InnerProduct and Embed: dense layers over the axes from `axis` on."""
from __future__ import annotations

from .. import codes
from .base import Layer, canonical_axis, count, prod, register, whole_rf


@register("InnerProduct")
class InnerProduct(Layer):
    param = "inner_product_param"

    def check(self, node, diags):
        ip = node.param.inner_product_param
        if not ip.HasField("num_output"):
            diags.add(codes.MISSING_PARAM.at(node.field_span("inner_product_param"), what="num_output",
                                             layer=node.name, type=node.type,
                                             notes=["num_output is the number of outputs"]))

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
        ip = node.param.inner_product_param
        return [ip.weight_filler, ip.bias_filler] if ip.bias_term else [ip.weight_filler]

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


@register("Embed")
class Embed(Layer):
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
        ep = node.param.embed_param
        return [ep.weight_filler, ep.bias_filler] if ep.bias_term else [ep.weight_filler]

    def receptive_field(self, node, in_rfs):
        return [None]

    def cost(self, node, in_shapes, out_shapes):
        # A table lookup: no multiply-accumulates; the bias is one add per output element.
        return {"macs": 0, "flops": prod(out_shapes[0]) if node.param.embed_param.bias_term else 0}

