"""RNN and LSTM: Caffe's RecurrentLayer, which unrolls an inner net over T timesteps.

Bottoms: x (T, N, ...), cont (T, N), then an optional static input (N, ...), then with
expose_hidden the initial states (h_0, and c_0 for LSTM, each (1, N, num_output)). The top is
(T, N, num_output), followed by the final states with expose_hidden.

Parameter blobs are the unrolled net's learnable parameters in order of first use:
  LSTM: W_xc (4H, D), b_c (4H), [W_xc_static (4H, D_static)], W_hc (4H, H)
  RNN:  W_xh (H, D), b_h (H), [W_xh_static (H, D_static)], W_hh (H, H), W_ho (H, H), b_o (H)
with D = x.count(2) (the inner InnerProduct uses axis 2) and D_static = x_static.count(1).
"""
from __future__ import annotations

from .. import codes
from .base import Layer, bad, count, fmt_shape, register


class Recurrent(Layer):
    param = "recurrent_param"
    states = 1        # recurrent state blobs (h; LSTM adds c)
    gates = 1         # rows of W_x* per output unit (LSTM: 4 gates)

    def count_limits(self, node):
        hidden = self.states if node.param.recurrent_param.expose_hidden else 0
        return (2 + hidden, 3 + hidden), (1 + hidden, 1 + hidden)

    def check(self, node, diags):
        if node.param.recurrent_param.num_output == 0:
            diags.add(codes.MISSING_PARAM.at(node.field_span("recurrent_param"), what="num_output",
                                             layer=node.name, type=node.type,
                                             notes=["num_output is the hidden state size"]))

    def has_static(self, node, n_bottoms) -> bool:
        hidden = self.states if node.param.recurrent_param.expose_hidden else 0
        return n_bottoms > 2 + hidden

    def infer_shapes(self, node, in_shapes):
        x, cont = in_shapes[0], in_shapes[1]
        h = node.param.recurrent_param.num_output
        if len(x) < 2:
            bad(node, f"x must have at least 2 axes (timesteps, streams, ...), got {fmt_shape(x)}",
                node.bottom_span(0), code=codes.SHAPE_MISMATCH)
        t, n = x[0], x[1]
        if len(cont) != 2 or cont != (t, n):
            bad(node, f"the continuation indicators '{node.inputs[1].label}' must be (T, N) = ({t}, {n}), "
                      f"got {fmt_shape(cont)}", node.bottom_span(1), code=codes.SHAPE_MISMATCH)
        i = 2
        if self.has_static(node, len(in_shapes)):
            s = in_shapes[2]
            if len(s) < 1 or s[0] != n:
                bad(node, f"the static input '{node.inputs[2].label}' must start with N = {n}, got {fmt_shape(s)}",
                    node.bottom_span(2), code=codes.SHAPE_MISMATCH)
            i = 3
        state = (1, n, h)
        for j in range(i, len(in_shapes)):
            if in_shapes[j] != state:
                bad(node, f"initial state '{node.inputs[j].label}' must be {fmt_shape(state)}, "
                          f"got {fmt_shape(in_shapes[j])}", node.bottom_span(j), code=codes.SHAPE_MISMATCH)
        hidden = self.states if node.param.recurrent_param.expose_hidden else 0
        return [(t, n, h)] + [state] * hidden

    def param_shapes(self, node, in_shapes):
        h = node.param.recurrent_param.num_output
        g = self.gates * h
        d = count(in_shapes[0], 2)
        shapes = [(g, d), (g,)]
        if self.has_static(node, len(in_shapes)):
            shapes.append((g, count(in_shapes[2], 1)))
        shapes.append((g, h))
        return shapes + self.output_params(h)

    def output_params(self, h):
        return []

    def filler_params(self, node):
        rp = node.param.recurrent_param
        kinds = ["w", "b"] + (["w"] if self.has_static(node, len(node.inputs)) else []) + ["w"]
        kinds += ["w", "b"] * (len(self.output_params(1)) // 2)
        return [rp.weight_filler if k == "w" else rp.bias_filler for k in kinds]

    def receptive_field(self, node, in_rfs):
        return [None] * len(node.outputs)

    def cost(self, node, in_shapes, out_shapes):
        x = in_shapes[0]
        t, n = x[0], x[1]
        h = node.param.recurrent_param.num_output
        g = self.gates * h
        macs = t * n * g * (count(x, 2) + h)
        if self.has_static(node, len(in_shapes)):
            macs += n * g * count(in_shapes[2], 1)
        macs += t * n * sum(a * b for a, b in self.output_params(h)[::2])
        return {"macs": macs, "flops": 2 * macs + t * n * g * 4}


@register("LSTM")
class LSTM(Recurrent):
    states = 2
    gates = 4


@register("RNN")
class RNN(Recurrent):
    def output_params(self, h):
        # o_t = tanh(W_ho h_t + b_o): the output has num_output units too.
        return [(h, h), (h,)]


@register("LSTMUnit")
class LSTMUnit(Layer):
    """One LSTM timestep, as the unrolled LSTM uses it. Bottoms: c_prev (1, N, D), the gate
    inputs (1, N, 4D), cont (1, N); tops: c and h, both (1, N, D)."""

    bottoms = (3, 3)
    tops = (2, 2)

    def infer_shapes(self, node, in_shapes):
        c, x, cont = in_shapes
        for i, (s, rank) in enumerate(((c, 3), (x, 3), (cont, 2))):
            if len(s) != rank or s[0] != 1 or (len(c) > 1 and s[1] != c[1]):
                bad(node, f"bottom '{node.inputs[i].label}' {fmt_shape(s)} must be {rank}-D with shape (1, N, ...) "
                          f"and the N of '{node.inputs[0].label}' {fmt_shape(c)}", node.bottom_span(i),
                    code=codes.SHAPE_MISMATCH)
        if x[2] != 4 * c[2]:
            bad(node, f"the gate inputs '{node.inputs[1].label}' {fmt_shape(x)} must have 4 x {c[2]} = {4 * c[2]} "
                      f"values per item", node.bottom_span(1), code=codes.SHAPE_MISMATCH)
        return [c, c]

    def receptive_field(self, node, in_rfs):
        return [None, None]

    def cost(self, node, in_shapes, out_shapes):
        return {"macs": 0, "flops": 10 * in_shapes[0][1] * in_shapes[0][2]}
