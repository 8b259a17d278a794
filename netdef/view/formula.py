"""The rule behind a layer's output size, written out with the layer's own numbers.

    formula(node) -> ["height: (224 + 2×3 − 7) / 2 + 1 = 112 (rounded down)", ...]

The numbers come from the same geometry code the shapes pass uses (netdef.layers.conv and
netdef.layers.pool), and each line ends in the size that pass computed, so the page never
shows a formula that disagrees with the shape beside it (tests/test_view.py checks both).
"""
from __future__ import annotations

from ..ir import fmt_shape
from ..layers.base import LayerError, prod

_AXES = {1: ("length",), 2: ("height", "width"), 3: ("depth", "height", "width")}


def _axis(i: int, n: int) -> str:
    names = _AXES.get(n)
    return names[i] if names else f"axis {i}"


def formula(node) -> list[str]:
    """Lines explaining the output size; [] when the layer has no such rule or no shapes."""
    if not node.inputs or not node.outputs:
        return []
    ins = [v.meta.get("shape") for v in node.inputs]
    outs = [v.meta.get("shape") for v in node.outputs]
    if ins[0] is None or outs[0] is None or node.meta.get("unknown") or node.meta.get("invalid"):
        return []
    try:
        rule = _RULES.get(node.type)
        if rule is not None:
            return rule(node, tuple(ins[0]), tuple(outs[0]), ins)
        if node.meta.get("in_place") and all(node.meta["in_place"]) or \
                (node.impl is not None and node.impl.elementwise and tuple(outs[0]) == tuple(ins[0])):
            return ["output shape = input shape (elementwise)"]
    except (LayerError, ArithmeticError, ValueError, TypeError, IndexError, AttributeError):
        return []
    return []


def _conv(node, shape, out, ins):
    from ..layers.conv import geometry

    g = geometry(node, shape)
    cp = node.param.convolution_param
    n = len(g.kernel)
    lines = [f"channels: num_output = {cp.num_output}"]
    for i in range(n):
        size, k, s, p, d = shape[g.axis + 1 + i], g.kernel[i], g.stride[i], g.pad[i], g.dilation[i]
        o = out[g.axis + 1 + i]
        ext = f"{d}×({k} − 1) + 1" if d != 1 else f"{k}"
        if node.type == "Deconvolution":
            lines.append(f"{_axis(i, n)}: stride×(in − 1) + kernel − 2×pad = "
                         f"{s}×({size} − 1) + {ext} − 2×{p} = {o}")
        else:
            kern = "dilation×(kernel − 1) + 1" if d != 1 else "kernel"
            lines.append(f"{_axis(i, n)}: (in + 2×pad − {kern}) / stride + 1 = "
                         f"({size} + 2×{p} − {ext if d == 1 else '(' + ext + ')'}) / {s} + 1 = {o}"
                         + (" (rounded down)" if (size + 2 * p - (d * (k - 1) + 1)) % s else ""))
    return lines


def _pool(node, shape, out, ins):
    from ..layers.pool import geometry, pooled_sizes

    g = geometry(node, shape)
    if g.global_:
        return [f"global pooling: {shape[2]}×{shape[3]} → 1×1"]
    lines = []
    unclipped = []
    for i in range(2):
        num = shape[2 + i] + 2 * g.pad[i] - g.kernel[i]
        unclipped.append((-(-num // g.stride[i]) if g.ceil else num // g.stride[i]) + 1)
    final = pooled_sizes(shape[2:], g)
    mode = "⌈" if g.ceil else "⌊"
    close = "⌉" if g.ceil else "⌋"
    for i, axis in enumerate(("height", "width")):
        size, k, s, p = shape[2 + i], g.kernel[i], g.stride[i], g.pad[i]
        line = (f"{axis}: {mode}(in + 2×pad − kernel) / stride{close} + 1 = "
                f"{mode}({size} + 2×{p} − {k}) / {s}{close} + 1 = {unclipped[i]}")
        if final[i] != unclipped[i]:
            # PoolingLayer::Reshape drops a last window that would start in the padding.
            line += f"; the last window would start in the padding: {final[i]}"
        lines.append(line)
    lines.append("rounding: " + ("up (Caffe's default)" if g.ceil else "down (round_mode FLOOR)"))
    return lines


def _inner_product(node, shape, out, ins):
    ip = node.param.inner_product_param
    axis = ip.axis if ip.axis >= 0 else ip.axis + len(shape)
    k = prod(shape[axis:])
    head = fmt_shape(shape[:axis], "×") if axis else "1"
    return [f"input flattened from axis {axis}: {fmt_shape(shape[axis:], '×')} = {k} values",
            f"output: {head} × num_output {ip.num_output}"]


def _concat(node, shape, out, ins):
    cp = node.param.concat_param
    axis = cp.concat_dim if cp.HasField("concat_dim") else cp.axis
    axis = axis if axis >= 0 else axis + len(shape)
    parts = [str(s[axis]) for s in ins]
    return [f"axis {axis}: " + " + ".join(parts) + f" = {out[axis]}", "other axes as the inputs"]


_RULES = {"Convolution": _conv, "Deconvolution": _conv, "Pooling": _pool,
          "InnerProduct": _inner_product, "Concat": _concat}
