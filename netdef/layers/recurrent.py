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
    family = "recurrent"
    param = "recurrent_param"
    time_major = True
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

    def to_onnx(self, node, g):
        """The unrolled net, one timestep after another (T is fixed by the shape): ONNX's
        LSTM/RNN cannot reset the state per stream and step as Caffe's `cont` does, and their
        gate order and output transform differ. Per step, on (N, .) matrices:
        h_conted = cont_t * h; gates = W_h h_conted + (W_x x_t + b) [+ W_static x_static];
        LSTM: i, f, o = sigmoid, g = tanh, f *= cont_t, c = f c + i g, h = o tanh(c);
        RNN: h = tanh(gates), o_t = tanh(W_o h + b_o)."""
        import numpy as np
        rp = node.param.recurrent_param
        lstm = self.states == 2
        hd = rp.num_output
        x_shape = g.in_shape(0)
        t_steps, n = x_shape[0], x_shape[1]
        if any(g.in_dyn(0)[:2]):
            g.fail("the time and stream axes must be fixed: the net is unrolled over them")
        static = self.has_static(node, g.n_in)
        first_state = 3 if static else 2
        x = g.op("Flatten", [g.x(0)], g.tmp("x_flat"), axis=2)
        xw = g.op("Gemm", [x, g.param(0, "W_x"), g.param(1, "b_x")], g.tmp("x_transform"), transB=1)
        cont = g.op("Reshape", [g.x(1), g.ints([t_steps * n, 1], "cont_shape")], g.tmp("cont"))
        if t_steps > 1:
            xs = g.op("Split", [xw, g.ints([n] * t_steps, "steps")], [g.tmp(f"x_{t}") for t in range(t_steps)], axis=0)
            conts = g.op("Split", [cont, g.ints([n] * t_steps, "cont_steps")],
                         [g.tmp(f"cont_{t}") for t in range(t_steps)], axis=0)
        else:
            xs, conts = [xw], [cont]
        k = 2
        sw = None
        if static:
            s = g.op("Flatten", [g.x(2)], g.tmp("static_flat"), axis=1)
            sw = g.op("Gemm", [s, g.param(2, "W_static")], g.tmp("static_transform"), transB=1)
            k = 3
        w_h = g.param(k, "W_h")
        if rp.expose_hidden:
            h = g.op("Reshape", [g.x(first_state), g.ints([n, hd], "state_shape")], g.tmp("h_0"))
            c = g.op("Reshape", [g.x(first_state + 1), g.ints([n, hd], "cell_shape")], g.tmp("c_0")) if lstm else None
        else:
            h = g.const(np.zeros((n, hd)), "h_0")
            c = g.const(np.zeros((n, hd)), "c_0") if lstm else None
        if not lstm:
            w_o, b_o = g.param(k + 1, "W_o"), g.param(k + 2, "b_o")
        outs = []
        for t in range(t_steps):
            hc = g.op("Mul", [h, conts[t]], g.tmp(f"h_conted_{t}"))
            gate = g.op("Gemm", [hc, w_h, xs[t]], g.tmp(f"gate_input_{t}"), transB=1)
            if sw is not None:
                gate = g.op("Add", [gate, sw], g.tmp(f"gate_static_{t}"))
            if lstm:
                gi, gf, go, gg = g.op("Split", [gate, g.ints([hd] * 4, "gates")],
                                      [g.tmp(f"{q}_{t}") for q in ("i_in", "f_in", "o_in", "g_in")], axis=1)
                i = g.op("Sigmoid", [gi], g.tmp(f"i_{t}"))
                f = g.op("Mul", [g.op("Sigmoid", [gf], g.tmp(f"f_sig_{t}")), conts[t]], g.tmp(f"f_{t}"))
                o = g.op("Sigmoid", [go], g.tmp(f"o_{t}"))
                gt = g.op("Tanh", [gg], g.tmp(f"g_{t}"))
                c = g.op("Add", [g.op("Mul", [f, c], g.tmp(f"fc_{t}")), g.op("Mul", [i, gt], g.tmp(f"ig_{t}"))],
                         g.tmp(f"c_{t + 1}"))
                h = g.op("Mul", [o, g.op("Tanh", [c], g.tmp(f"tanh_c_{t}"))], g.tmp(f"h_{t + 1}"))
                outs.append(h)
            else:
                h = g.op("Tanh", [gate], g.tmp(f"h_{t + 1}"))
                outs.append(g.op("Tanh", [g.op("Gemm", [h, w_o, b_o], g.tmp(f"w_ho_h_{t + 1}"), transB=1)],
                                 g.tmp(f"o_{t + 1}")))
        seq = g.op("Concat", outs, g.tmp("steps_concat"), axis=0) if len(outs) > 1 else outs[0]
        g.op("Reshape", [seq, g.ints([t_steps, n, hd], "out_shape")], g.y(0))
        if rp.expose_hidden:
            g.op("Reshape", [h, g.ints([1, n, hd], "final_shape")], g.y(1))
            if lstm:
                g.op("Reshape", [c, g.ints([1, n, hd], "final_cell_shape")], g.y(2))


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

    family = "recurrent"
    bottoms = (3, 3)
    tops = (2, 2)
    time_major = True

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
