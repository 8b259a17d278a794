"""Hovers: a layer (type, output shapes, receptive field, parameters, MACs and the formula that
gave its output size, with its own numbers), a field (schema type, default, documentation,
origin) and a blob name (who writes this version, who reads it, its shape)."""
from __future__ import annotations

import re

from lsprotocol import types as t

from ..ir import fmt_num, fmt_shape
from ..layers.base import LayerError, prod
from .diagnostics import lsp_range
from .document import Document, LayerRef
from .schema import field_markdown




def _rf(rf) -> str:
    if rf is None:
        return "-"
    if rf.whole:
        return "whole input"
    size = "x".join(fmt_num(s) for s in rf.size)
    stride = "x".join(fmt_num(s) for s in rf.stride)
    return f"size {size}, stride {stride}"


def _si(n: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.2f}{unit}"
    return f"{n:g}"


# --- output-size formulas -------------------------------------------------------------------

def _axes(n: int) -> list[str]:
    return ["height", "width"] if n == 2 else [f"axis {i}" for i in range(n)]


def _pool_formula(node, shape) -> list[str]:
    # Caffe's PoolingLayer::Reshape (BVLC src/caffe/layers/pooling_layer.cpp): ceil (or, with
    # round_mode FLOOR / a fork's ceil_mode: false, floor) of (H + 2p - k) / s, plus one; with
    # padding, a last window that would start in the padding is dropped. The numbers come from
    # netdef.layers.pool, the rule the shape pass runs.
    from ..layers.pool import geometry, pooled_sizes

    g = geometry(node, shape)
    hw = shape[2:]
    out = pooled_sizes(hw, g)
    if g.global_:
        return [f"global pooling: the kernel is the whole input ({hw[0]}x{hw[1]}), so the output is "
                f"{out[0]}x{out[1]}"]
    rnd = "ceil" if g.ceil else "floor"
    lines = [f"`out = {rnd}((in + 2*pad - kernel) / stride) + 1`"
             + (" (Caffe rounds up: a last, partial window is kept)" if g.ceil else " (rounding down)")]
    if any(g.pad):
        lines.append("then, with padding: `if (out - 1) * stride >= in + pad: out -= 1` (a last window "
                     "may not start in the padding)")
    axes = _axes(2)
    same = hw[0] == hw[1] and g.kernel[0] == g.kernel[1] and g.stride[0] == g.stride[1] and g.pad[0] == g.pad[1]
    for i in ([0] if same else [0, 1]):
        num = hw[i] + 2 * g.pad[i] - g.kernel[i]
        raw = (-(-num // g.stride[i]) if g.ceil else num // g.stride[i]) + 1
        what = "height = width" if same else axes[i]
        line = (f"{what}: {rnd}(({hw[i]} + 2*{g.pad[i]} - {g.kernel[i]}) / {g.stride[i]}) + 1 "
                f"= {rnd}({num}/{g.stride[i]}) + 1 = {raw}")
        if any(g.pad):
            clipped = (raw - 1) * g.stride[i] >= hw[i] + g.pad[i]
            line += (f"; clip: ({raw} - 1) * {g.stride[i]} = {(raw - 1) * g.stride[i]} "
                     f"{'>=' if clipped else '<'} {hw[i]} + {g.pad[i]} = {hw[i] + g.pad[i]}"
                     f" -> {out[i]}")
        lines.append(f"`{line}`")
    return lines


def _conv_formula(node, shape) -> list[str]:
    # Caffe's BaseConvolutionLayer::compute_output_shape (conv_layer.cpp / deconv_layer.cpp),
    # with kernel, stride, pad and dilation as netdef.layers.conv reads them.
    from ..layers.conv import geometry

    g = geometry(node, shape)
    reverse = node.impl.reverse(node)
    n = len(g.kernel)
    lines = ["`out = stride * (in - 1) + dilation * (kernel - 1) + 1 - 2*pad`" if reverse else
             "`out = floor((in + 2*pad - (dilation * (kernel - 1) + 1)) / stride) + 1`"]
    names = _axes(n)
    sizes = [shape[g.axis + 1 + i] for i in range(n)]
    keys = [(sizes[i], g.kernel[i], g.stride[i], g.pad[i], g.dilation[i]) for i in range(n)]
    show = [0] if len(set(keys)) == 1 else list(range(n))
    for i in show:
        size, k, s, p, d = keys[i]
        ext = d * (k - 1) + 1
        what = " = ".join(names) if len(show) == 1 and n > 1 else names[i]
        if reverse:
            o = s * (size - 1) + ext - 2 * p
            line = f"{what}: {s} * ({size} - 1) + {d} * ({k} - 1) + 1 - 2*{p} = {o}"
        else:
            o = (size + 2 * p - ext) // s + 1
            line = f"{what}: floor(({size} + 2*{p} - {ext}) / {s}) + 1 = {o}"
        lines.append(f"`{line}`")
    return lines


def _formula(node) -> list[str]:
    if node.impl is None or not node.inputs:
        return []
    shape = node.inputs[0].meta.get("shape")
    if shape is None:
        return []
    try:
        if node.type == "Pooling" and len(shape) == 4:
            return _pool_formula(node, shape)
        if node.type in ("Convolution", "Deconvolution", "DepthwiseConvolution", "ConvolutionDepthwise") \
                and hasattr(node.impl, "reverse"):
            return _conv_formula(node, shape)
        if node.type == "InnerProduct":
            ip = node.param.inner_product_param
            axis = ip.axis if ip.axis >= 0 else ip.axis + len(shape)
            return [f"`out = (in[:{axis}], num_output) = ({', '.join(map(str, shape[:axis]))}, {ip.num_output})`"
                    f" (axes from {axis} on are flattened: {prod(shape[axis:])} inputs)"]
    except (LayerError, ArithmeticError, ValueError, TypeError, IndexError, KeyError, AttributeError):
        return []
    return []


# --- hovers ---------------------------------------------------------------------------------

def layer_markdown(doc: Document, ref: LayerRef) -> str:
    from ..forks import fork_of_layer_type
    from ..layers import get

    head = f"**{ref.name or '(unnamed layer)'}**: `{ref.type}`"
    impl = get(ref.type)
    if impl is not None:
        head += f" ({type(impl).__module__.rsplit('.', 1)[-1]} family)"
    else:
        fork = fork_of_layer_type(ref.type)
        head += f", from {fork}" if fork else ", a type netdef does not know"
    parts = [head]
    node = ref.node
    if node is None:
        why = "the file has errors that stop the analysis" if doc.graph is None or not doc.graph.nodes else \
            "it is not in the TEST-phase net (its include/exclude rules leave it out)"
        parts.append(f"Not analysed: {why}.")
        return "\n\n".join(parts)
    rows = ["| blob | shape | receptive field |", "|---|---|---|"]
    for v in node.inputs:
        rows.append(f"| in `{v.label}` | {fmt_shape(v.meta.get('shape'), 'x')} | {_rf(v.meta.get('rf'))} |")
    for v in node.outputs:
        rows.append(f"| out `{v.label}` | {fmt_shape(v.meta.get('shape'), 'x')} | {_rf(v.meta.get('rf'))} |")
    parts.append("\n".join(rows))
    stats = []
    params = node.meta.get("params")
    if params is not None:
        n = sum(prod(s) for s in params)
        stats.append(f"parameters: {n:,}" + (f" ({', '.join(fmt_shape(s, 'x') for s in params)})" if params else ""))
    if node.meta.get("stat_params"):
        stats.append(f"statistics: {sum(prod(s) for s in node.meta['stat_params']):,}")
    cost = node.meta.get("cost")
    if cost:
        stats.append(f"MACs: {_si(cost.get('macs', 0))}, FLOPs: {_si(cost.get('flops', 0))} (batch of "
                     f"{node.outputs[0].meta['shape'][0] if node.outputs and node.outputs[0].meta.get('shape') else '?'})")
    if node.meta.get("unknown"):
        stats.append("netdef cannot infer shapes through this layer")
    if stats:
        parts.append("  \n".join(stats))
    formula = _formula(node)
    if formula:
        parts.append("Output size:  \n" + "  \n".join(formula))
    return "\n\n".join(parts)


def blob_markdown(doc: Document, use) -> str:
    producer = doc.producer_of(use) if use.role != "input" else use
    value = doc.value_of(producer) if producer is not None else None
    if value is None:
        value = doc.value_of(use)
    parts = [f"**{use.name}** (blob)"]
    if value is not None:
        parts[0] += f" `{fmt_shape(value.meta.get('shape'), 'x')}`"
        if value.meta.get("rf") is not None:
            parts.append(f"receptive field: {_rf(value.meta['rf'])}")
        if value.version:
            parts.append(f"version {value.version}: rewritten in place")
    if producer is None:
        parts.append("produced by: nothing above this layer")
    elif producer.role == "input":
        parts.append("produced by: the net's `input:`")
    else:
        p = doc.layers[producer.layer]
        line = doc.offset_to_position(p.loc.name_start)[0] + 1
        parts.append(f"produced by: `{p.name}` ({p.type}, line {line})")
    if value is not None:
        readers = [f"`{n.name}`" for n in value.consumers]
        parts.append("read by: " + (", ".join(readers[:20]) + (" ..." if len(readers) > 20 else "")
                                    if readers else "nothing (a net output)"))
    else:
        readers = sorted({doc.layers[u.layer].name for u in doc.blobs if u.role == "bottom" and u.name == use.name})
        parts.append("read by: " + (", ".join(f"`{r}`" for r in readers[:20]) or "nothing"))
    return "\n\n".join(parts)


_WORD = re.compile(r"[A-Za-z_]\w*")
_FIELD_AFTER = re.compile(r"\s*:?\s*[{<]|\s*:")


def _unknown_field(doc: Document, offset: int, chain) -> t.Hover | None:
    """A field the schema lacks (a fork's, or a typo) is not in the Loc tree: find the word."""
    text = doc.text
    start = offset
    while start > 0 and (text[start - 1].isalnum() or text[start - 1] == "_"):
        start -= 1
    m = _WORD.match(text, start)
    if m is None or not chain or not _FIELD_AFTER.match(text, m.end()) or m.end() < offset:
        return None
    desc = chain[-1][2]
    if desc is None:
        return None
    return t.Hover(t.MarkupContent(t.MarkupKind.Markdown, field_markdown(desc, m.group(0))),
                   lsp_range(doc, m.start(), m.end()))


def hover(doc: Document, offset: int) -> t.Hover | None:
    if doc.parsed is None:
        return None
    use = doc.blob_at(offset)
    if use is not None and use.start <= offset <= use.end:
        return t.Hover(t.MarkupContent(t.MarkupKind.Markdown, blob_markdown(doc, use)),
                       lsp_range(doc, use.start, use.end))
    chain, field = doc.locate(offset)
    if field is None:
        return _unknown_field(doc, offset, chain)
    name, entry, desc = field
    if isinstance(entry, tuple):
        start, vstart, vend = entry
        on_name = offset <= start + len(name)
        rng = lsp_range(doc, start, start + len(name)) if on_name else lsp_range(doc, vstart, vend)
        if not on_name and len(chain) == 2 and chain[1][0] in ("layer", "layers") and name in ("name", "type"):
            ref = doc.layer_at(offset)
            if ref is not None:
                return t.Hover(t.MarkupContent(t.MarkupKind.Markdown, layer_markdown(doc, ref)), rng)
        return t.Hover(t.MarkupContent(t.MarkupKind.Markdown, field_markdown(desc, name)), rng)
    rng = lsp_range(doc, entry.name_start, entry.head_end)
    if len(chain) == 1 and name in ("layer", "layers"):
        ref = doc.layer_at(offset)
        if ref is not None:
            return t.Hover(t.MarkupContent(t.MarkupKind.Markdown, layer_markdown(doc, ref)), rng)
    return t.Hover(t.MarkupContent(t.MarkupKind.Markdown, field_markdown(desc, name)), rng)
