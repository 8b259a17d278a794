"""Neuron layers (one output element per input element), PReLU, Dropout and Softmax."""
from __future__ import annotations

from .. import codes
from ..proto import pb
from .base import Layer, canonical_axis, need_rank, prod, register


class Neuron(Layer):
    """Caffe's NeuronLayer: one bottom, one top of the same shape (in-place allowed)."""

    family = "activation"
    elementwise = True
    per_element = 1  # rough FLOPs per element, for the cost table

    def cost(self, node, in_shapes, out_shapes):
        return {"macs": 0, "flops": prod(out_shapes[0]) * self.per_element}


@register("ReLU")
class ReLU(Neuron):
    param = "relu_param"
    fork_defaults = {"relu6": False}  # Synopsys' ReLUParameter relu6 = 3 [default false]
    checked_against = ("BVLC/caffe src/caffe/layers/relu_layer.cpp; relu6: foss-for-synopsys-dwc-arc-processors/"
                       "synopsys-caffe src/caffe/layers/relu_layer.cpp")

    def to_onnx(self, node, g):
        """ONNX Relu, or LeakyRelu with negative_slope; Synopsys' relu6: then at most 6."""
        a = node.param.relu_param.negative_slope
        six = relu6(node)
        if a == 0:
            if six:
                g.op("Clip", [g.x(0), g.const(0.0, "min"), g.const(6.0, "max")], g.y(0))
            else:
                g.op("Relu", [g.x(0)], g.y(0))
        elif six:
            g.op("Min", [g.op("LeakyRelu", [g.x(0)], g.tmp("leaky"), alpha=a), g.const(6.0, "max")], g.y(0))
        else:
            g.op("LeakyRelu", [g.x(0)], g.y(0), alpha=a)


def relu6(node) -> bool:
    """Synopsys' fork (foss-for-synopsys-dwc-arc-processors/synopsys-caffe src/caffe/layers/
    relu_layer.cpp Forward_cpu; caffe.proto ReLUParameter relu6 = 3 [default false]): with relu6
    true the ReLU's output, max(x, 0) + negative_slope * min(x, 0), is then limited to 6."""
    sub = node.loc.msg("relu_param") if node.loc is not None else None
    vals = sub.extra.get("relu6") if sub is not None else None
    return bool(vals[-1]) if vals else ReLU.fork_defaults["relu6"]


@register("Sigmoid")
class Sigmoid(Neuron):
    param = "sigmoid_param"
    per_element = 4

    def to_onnx(self, node, g):
        """ONNX Sigmoid."""
        g.op("Sigmoid", [g.x(0)], g.y(0))


@register("TanH")
class TanH(Neuron):
    param = "tanh_param"
    per_element = 6

    def to_onnx(self, node, g):
        """ONNX Tanh."""
        g.op("Tanh", [g.x(0)], g.y(0))


@register("AbsVal")
class AbsVal(Neuron):
    pass

    def to_onnx(self, node, g):
        """ONNX Abs."""
        g.op("Abs", [g.x(0)], g.y(0))


@register("BNLL")
class BNLL(Neuron):
    per_element = 4

    def to_onnx(self, node, g):
        """ONNX Softplus: log(1 + exp(x))."""
        g.op("Softplus", [g.x(0)], g.y(0))


@register("Power")
class Power(Neuron):
    param = "power_param"
    per_element = 3

    def to_onnx(self, node, g):
        """(shift + scale * x) ^ power, skipping the identity steps."""
        p = node.param.power_param
        t = g.affine(g.x(0), p.scale, p.shift, "in")
        if p.power != 1:
            t = g.op("Pow", [t, g.const(p.power, "power")], g.tmp("pow"))
        g.finish(t)


@register("Exp")
class Exp(Neuron):
    param = "exp_param"
    per_element = 3

    def to_onnx(self, node, g):
        """base ^ (shift + scale * x) as exp(ln(base) * (shift + scale * x))."""
        import math
        p = node.param.exp_param
        if p.base != -1 and p.base <= 0:
            g.fail(f"base {p.base:g}: Caffe needs -1 (e) or a positive base")
        ln = 1.0 if p.base == -1 else math.log(p.base)
        t = g.affine(g.x(0), ln * p.scale, ln * p.shift, "in")
        g.op("Exp", [t], g.y(0))


@register("Log")
class Log(Neuron):
    param = "log_param"
    per_element = 3

    def to_onnx(self, node, g):
        """log_base(shift + scale * x) as ln(...) / ln(base)."""
        import math
        p = node.param.log_param
        if p.base != -1 and p.base <= 0:
            g.fail(f"base {p.base:g}: Caffe needs -1 (e) or a positive base")
        t = g.affine(g.x(0), p.scale, p.shift, "in")
        if p.base == -1:
            g.op("Log", [t], g.y(0))
        else:
            ln = g.op("Log", [t], g.tmp("ln"))
            g.op("Mul", [ln, g.const(1.0 / math.log(p.base), "inv_ln_base")], g.y(0))


@register("ELU")
class ELU(Neuron):
    param = "elu_param"
    per_element = 4

    def to_onnx(self, node, g):
        """ONNX Elu."""
        g.op("Elu", [g.x(0)], g.y(0), alpha=node.param.elu_param.alpha)


@register("Threshold")
class Threshold(Neuron):
    param = "threshold_param"

    def to_onnx(self, node, g):
        """1 where x > threshold, else 0 (Greater, cast to float)."""
        gt = g.op("Greater", [g.x(0), g.const(node.param.threshold_param.threshold, "threshold")], g.tmp("greater"))
        g.cast_float(gt, g.y(0))


@register("Swish")
class Swish(Neuron):
    param = "swish_param"
    per_element = 5

    def to_onnx(self, node, g):
        """x * sigmoid(beta * x)."""
        beta = node.param.swish_param.beta
        t = g.x(0) if beta == 1 else g.op("Mul", [g.x(0), g.const(beta, "beta")], g.tmp("beta_x"))
        s = g.op("Sigmoid", [t], g.tmp("sigmoid"))
        g.op("Mul", [g.x(0), s], g.y(0))


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

    def to_onnx(self, node, g):
        """ONNX Clip."""
        p = node.param.clip_param
        g.op("Clip", [g.x(0), g.const(p.min, "min"), g.const(p.max, "max")], g.y(0))


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

    def to_onnx(self, node, g):
        """Nothing: the output is the input."""
        if g.phase == "TRAIN":
            g.fail("dropout is random in the TRAIN phase; export the TEST phase (the default)")
        # Caffe scales at training time, so inference is the identity: the layer vanishes.
        for i in range(g.n_out):
            g.alias(i, g.x(i))


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

    def to_onnx(self, node, g):
        """ONNX PRelu with the slope broadcast over the channel axis (or shared)."""
        shape = g.in_shape(0)
        if node.param.prelu_param.channel_shared:
            slope = g.param(0, "slope", (1,))
        else:
            slope = g.param(0, "slope", (shape[1],) + (1,) * (len(shape) - 2))
        g.op("PRelu", [g.x(0), slope], g.y(0))


@register("Softmax")
class Softmax(Neuron):
    param = "softmax_param"
    per_element = 3

    def infer_shapes(self, node, in_shapes):
        canonical_axis(node, node.param.softmax_param.axis, in_shapes[0],
                       ("softmax_param", "axis"))
        return [in_shapes[0]]

    def to_onnx(self, node, g):
        """ONNX Softmax over `axis` (opset 13 semantics: one axis)."""
        axis = canonical_axis(node, node.param.softmax_param.axis, g.in_shape(0))
        g.op("Softmax", [g.x(0)], g.y(0), axis=axis)


# --- activations of Caffe forks -------------------------------------------------------------

@register("ReLU6")
class ReLU6(Layer):
    family = "activation"
    elementwise = True
    origin = "the MobileNet/ShuffleNet Caffe forks"
    # eric612/MobileNet-YOLO include/caffe/layers/relu6_layer.hpp: a NeuronLayer, y = min(max(0, x), 6).
    # (NVIDIA's Caffe adds relu_param.negative_slope * min(x, 0); netdef follows the MobileNet forks.)
    checked_against = ("eric612/MobileNet-YOLO include/caffe/layers/relu6_layer.hpp; relu6_param: "
                       "brocolli-caffe 9.0.2 src/caffe/layers/relu6_layer.cpp")
    # brocolli-caffe (an SSD-derived fork) adds relu6_param { negative_slope = 1 [default 0];
    # threshold = 2 [default 6] } (field 503) and computes min(max(x, 0) + negative_slope *
    # min(x, 0), threshold): the defaults give the MobileNet forks' function.
    fork_defaults = {"negative_slope": 0.0, "threshold": 6.0}

    def to_onnx(self, node, g):
        """ONNX Clip to [0, threshold]; LeakyRelu then Min where negative_slope is not 0."""
        from .fork import ForkParams
        p = ForkParams(node, "relu6_param")
        slope, top = float(p.get("negative_slope")), float(p.get("threshold"))
        if slope == 0.0:
            g.op("Clip", [g.x(0), g.const(0.0, "min"), g.const(top, "max")], g.y(0))
        else:
            leaky = g.op("LeakyRelu", [g.x(0)], g.tmp("leaky"), alpha=slope)
            g.op("Min", [leaky, g.const(top, "threshold")], g.y(0))


@register("Mish")
class Mish(Layer):
    """x * tanh(softplus(x)). The Caffe MishLayer forks (mish_layer.cpp, a NeuronLayer) and
    Tencent/ncnn src/layer/mish.cpp compute softplus as x above 20 and exp(x) below -20, which
    in float equals log(1 + exp(x)) there; no parameters."""

    family = "activation"
    elementwise = True
    origin = "Caffe forks with a MishLayer (YOLOv4 ports)"
    checked_against = "Tencent/ncnn src/layer/mish.cpp; the Caffe forks' src/caffe/layers/mish_layer.cpp"

    def cost(self, node, in_shapes, out_shapes):
        return {"macs": 0, "flops": 5 * prod(out_shapes[0])}

    def to_onnx(self, node, g):
        """x * tanh(softplus(x)) (Softplus, Tanh, Mul: every opset netdef writes has them)."""
        sp = g.op("Softplus", [g.x(0)], g.tmp("softplus"))
        g.op("Mul", [g.x(0), g.op("Tanh", [sp], g.tmp("tanh"))], g.y(0))


@register("HardSwish")
class HardSwish(Layer):
    """x * min(max(x + 3, 0), 6) / 6 elementwise; no parameters."""

    family = "activation"
    elementwise = True
    origin = "Synopsys' Caffe fork (foss-for-synopsys-dwc-arc-processors/synopsys-caffe)"
    # foss-for-synopsys-dwc-arc-processors/synopsys-caffe src/caffe/layers/hard_swish_layer.cpp:
    # hard_swish(x) = x * min(max(x + 3, 0), 6) / 6, a NeuronLayer (top shaped like the bottom).
    checked_against = "foss-for-synopsys-dwc-arc-processors/synopsys-caffe src/caffe/layers/hard_swish_layer.cpp"

    def cost(self, node, in_shapes, out_shapes):
        return {"macs": 0, "flops": 5 * prod(out_shapes[0])}

    def to_onnx(self, node, g):
        """ONNX HardSwish (x * max(0, min(1, x / 6 + 1 / 2)), the same function)."""
        g.op("HardSwish", [g.x(0)], g.y(0))
