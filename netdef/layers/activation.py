"""Neuron layers (one output element per input element), PReLU, Dropout and Softmax."""
from __future__ import annotations

from .. import codes
from ..proto import pb
from .base import Layer, canonical_axis, need_rank, prod, register


class Neuron(Layer):
    """Caffe's NeuronLayer: one bottom, one top of the same shape (in-place allowed)."""

    elementwise = True
    per_element = 1  # rough FLOPs per element, for the cost table

    def cost(self, node, in_shapes, out_shapes):
        return {"macs": 0, "flops": prod(out_shapes[0]) * self.per_element}


@register("ReLU")
class ReLU(Neuron):
    param = "relu_param"


@register("Sigmoid")
class Sigmoid(Neuron):
    param = "sigmoid_param"
    per_element = 4


@register("TanH")
class TanH(Neuron):
    param = "tanh_param"
    per_element = 6


@register("AbsVal")
class AbsVal(Neuron):
    pass


@register("BNLL")
class BNLL(Neuron):
    per_element = 4


@register("Power")
class Power(Neuron):
    param = "power_param"
    per_element = 3


@register("Exp")
class Exp(Neuron):
    param = "exp_param"
    per_element = 3


@register("Log")
class Log(Neuron):
    param = "log_param"
    per_element = 3


@register("ELU")
class ELU(Neuron):
    param = "elu_param"
    per_element = 4


@register("Threshold")
class Threshold(Neuron):
    param = "threshold_param"


@register("Swish")
class Swish(Neuron):
    param = "swish_param"
    per_element = 5


@register("Clip")
class Clip(Neuron):
    param = "clip_param"
    per_element = 2

    def check(self, node, diags):
        cp = node.param.clip_param
        for f in ("min", "max"):
            if not cp.HasField(f):
                diags.add(codes.MISSING_PARAM.at(node.field_span("clip_param"), what=f"clip_param.{f}",
                                                 layer=node.name, type=node.type,
                                                 notes=["Caffe declares both bounds required"]))


@register("Dropout")
class Dropout(Neuron):
    param = "dropout_param"
    per_element = 0  # the identity at test time; TRAIN multiplies by a mask

    def check(self, node, diags):
        r = node.param.dropout_param.dropout_ratio
        if not 0 <= r < 1:
            diags.add(codes.BAD_PARAM.at(node.field_span("dropout_param", "dropout_ratio"),
                                         notes=["dropout_ratio must be in [0, 1)"],
                                         message=f"layer '{node.name}': dropout_ratio {r:g} is out of range"))


@register("PReLU")
class PReLU(Neuron):
    param = "prelu_param"

    def infer_shapes(self, node, in_shapes):
        need_rank(node, in_shapes[0], 2, exact=False)
        return [in_shapes[0]]

    def param_shapes(self, node, in_shapes):
        # One slope per channel (axis 1), or a single shared one: PReLULayer makes that a
        # 0-axis (scalar) blob, not (1,).
        return [()] if node.param.prelu_param.channel_shared else [(in_shapes[0][1],)]

    def filler_params(self, node):
        pp = node.param.prelu_param
        if pp.HasField("filler"):
            return [pp.filler]
        f = pb.FillerParameter()  # PReLULayer's default: constant 0.25
        f.type = "constant"
        f.value = 0.25
        return [f]


@register("Softmax")
class Softmax(Neuron):
    param = "softmax_param"
    per_element = 3

    def infer_shapes(self, node, in_shapes):
        canonical_axis(node, node.param.softmax_param.axis, in_shapes[0],
                       ("softmax_param", "axis"))
        return [in_shapes[0]]
