"""Drawing a net with graphviz: one box per layer, coloured by family.

    netdef draw net.prototxt -o net.svg [--rankdir LR] [--rf] [--params] [--collapse auto]

What makes the picture readable, compared with Caffe's draw_net.py:
  * An in-place layer (ReLU, BatchNorm, Scale, Dropout ... whose top is its bottom) is a row of
    its producer's box, not a node of its own with a self-named edge: `conv1 + ReLU relu1`.
  * Edges carry the blob as written and its shape; with --rf, its receptive field.
  * Convolution and pooling boxes state their geometry (both dimensions where they differ;
    begin+end pads where a side differs, e.g. Synopsys' pad_t/pad_b: `p1+2×0+1`);
    --params adds the learnable parameter count.
  * Layers netdef cannot analyse (fork types) are dashed grey boxes marked "unknown".
  * SVG nodes carry a tooltip with the layer's whole definition.
  * --collapse groups layers into clusters by name prefix; `auto` finds the blocks that repeat
    (inception modules "inception_3a/...", residual blocks "res2a_branch2a"/"bn2a_..."), nested
    in stages (2a, 2b, 2c inside stage 2), so a thousand-layer net stays navigable.
"""
from __future__ import annotations

import html
import os
import re
from dataclasses import dataclass, field

from google.protobuf import text_format

from .diagnostics import CliError
from .ir import fmt_num, fmt_shape
from .layers.base import total

RENDERED = ("svg", "png", "pdf")
FORMATS = RENDERED + ("dot",)

# --- families and colours ------------------------------------------------------------------

# Each layer class says its family (`family`, in its file in netdef/layers/); draw picks the
# colour. The view's page gets these same colours in its data (view/data.py family_fills).
FILLS: dict[str, str] = {
    "data": "#cfe2f3", "convolution": "#f9cb9c", "dense": "#fce5cd", "recurrent": "#ead1dc",
    "pooling": "#b6d7a8", "resize": "#d0e0e3", "normalisation": "#d9d2e9", "activation": "#fff2cc",
    "merge": "#f4cccc", "shape": "#e8e8e8", "loss": "#ea9999",
}
UNKNOWN_FILL = "#eeeeee"   # a layer netdef cannot analyse
OTHER_FILL = "#ffffff"     # a family without a colour ("other")


def family(node) -> str:
    fam = getattr(node.impl, "family", "other")
    if fam != "other":
        return fam
    # A type netdef does not know (or one its class leaves in "other"): its name may still say.
    if node.type.endswith("Loss"):
        return "loss"
    if node.type.endswith("Data"):
        return "data"
    return "other"


def _fill(fam: str) -> str:
    return FILLS.get(fam, OTHER_FILL)


# --- boxes: a layer and the in-place layers folded into it -----------------------------------


@dataclass
class Box:
    id: str
    head: object                            # ir.Node
    folded: list = field(default_factory=list)

    @property
    def nodes(self):
        return [self.head] + self.folded


def _in_place(node) -> bool:
    return (len(node.inputs) == 1 and len(node.outputs) == 1 and node.inputs[0].name == node.outputs[0].name
            and node.inputs[0].producer is not None)


def fold(graph) -> tuple[list[Box], dict]:
    """Boxes in file order; an in-place layer joins the box of the layer that wrote its input,
    when nothing else reads that input (otherwise the intermediate value deserves its edge)."""
    boxes: list[Box] = []
    box_of: dict[int, Box] = {}
    for node in graph.nodes:
        if _in_place(node):
            v = node.inputs[0]
            src = box_of.get(id(v.producer))
            if src is not None and len(v.consumers) == 1 and src.nodes[-1] is v.producer \
                    and not node.meta.get("unknown"):
                src.folded.append(node)
                box_of[id(node)] = src
                continue
        box = Box(f"n{len(boxes)}", node)
        boxes.append(box)
        box_of[id(node)] = box
    return boxes, box_of


# --- what each box says ------------------------------------------------------------------------


def _dims(vals) -> str:
    vals = list(vals)
    return str(vals[0]) if len(set(vals)) == 1 else "×".join(str(v) for v in vals)


def _pads(g) -> str:
    """`p1` or `p1×2` where each axis is padded alike on both sides; else begin+end per axis
    (Synopsys' pad_t/pad_b, pad_l/pad_r): `p1+2×0+1` is 1 above, 2 below, 0 left, 1 right."""
    if list(g.pad) == list(g.pad_end):
        return f"p{_dims(g.pad)}"
    return "p" + _dims(f"{b}+{e}" if b != e else f"{b}" for b, e in zip(g.pad, g.pad_end))


def _in_shape(node):
    s = node.inputs[0].meta.get("shape") if node.inputs else None
    return tuple(s) if s else None


def geometry_text(node) -> str:
    """Kernel/stride/pad/dilation/group of convolution and pooling layers, as Caffe reads them."""
    from .layers.base import LayerError

    try:
        if node.type in ("Convolution", "Deconvolution", "Im2col"):
            from .layers.conv import geometry
            cp = node.param.convolution_param
            g = geometry(node, _in_shape(node) or (1, 1, 1, 1))
            parts = [f"{cp.num_output}"] if node.type != "Im2col" else []
            parts.append(f"k{_dims(g.kernel)}")
            parts.append(f"s{_dims(g.stride)}")
            if any(g.pad) or any(g.pad_end):
                parts.append(_pads(g))
            if any(d != 1 for d in g.dilation):
                parts.append(f"d{_dims(g.dilation)}")
            if cp.group != 1:
                parts.append(f"g{cp.group}")
            return " ".join(parts)
        if node.type == "Pooling":
            from .layers.pool import geometry
            from .proto import pb
            pp = node.param.pooling_param
            kind = pb.PoolingParameter.PoolMethod.Name(pp.pool)
            if pp.global_pooling:
                return f"{kind} global"
            g = geometry(node, _in_shape(node) or (1, 1, 1, 1))
            parts = [kind, f"k{_dims(g.kernel)}", f"s{_dims(g.stride)}"]
            if any(g.pad) or any(g.pad_end):
                parts.append(_pads(g))
            if not g.ceil:
                parts.append("floor")
            return " ".join(parts)
    except (LayerError, ValueError, IndexError):
        return "invalid geometry"
    return ""


def detail_text(node) -> str:
    p = node.param
    t = node.type
    if t in ("Convolution", "Deconvolution", "Im2col", "Pooling"):
        return geometry_text(node)
    if t == "InnerProduct":
        return f"{p.inner_product_param.num_output}"
    if t == "Embed":
        return f"{p.embed_param.input_dim} → {p.embed_param.num_output}"
    if t in ("LSTM", "RNN"):
        return f"{p.recurrent_param.num_output}"
    if t == "Eltwise":
        from .proto import pb
        op = pb.EltwiseParameter.EltwiseOp.Name(p.eltwise_param.operation)
        coeff = list(p.eltwise_param.coeff)
        return op + (f" ({', '.join(f'{c:g}' for c in coeff)})" if coeff else "")
    if t == "Concat":
        ax = p.concat_param.axis if not p.concat_param.HasField("concat_dim") else p.concat_param.concat_dim
        return f"axis {ax}" if ax != 1 else ""
    if t == "Python":  # described from its parameters; the module is never imported
        pp = p.python_param
        return f"{pp.module}.{pp.layer}" if pp.module or pp.layer else ""
    if t == "Dropout":
        return f"ratio {p.dropout_param.dropout_ratio:g}"
    if t == "LRN":
        return f"size {p.lrn_param.local_size}"
    if t == "Crop":
        return f"axis {p.crop_param.axis}" + (f" offset {_dims(p.crop_param.offset)}" if p.crop_param.offset else "")
    return ""


def params_text(node) -> str:
    """Learnable parameters, and BatchNorm's statistics apart (they are not learned)."""
    n, stats = total(node.meta.get("params")), total(node.meta.get("stat_params"))
    return ", ".join(([f"{n:,} params"] if n else []) + ([f"{stats:,} statistics"] if stats else []))


def rf_text(rf) -> str:
    if rf is None:
        return ""
    if getattr(rf, "whole", False):
        return "RF whole input"
    size = _dims([fmt_num(x) for x in rf.size])
    stride = _dims([fmt_num(x) for x in rf.stride])
    return f"RF {size}, jump {stride}"


def tooltip(nodes) -> str:
    parts = []
    for n in nodes:
        text = text_format.MessageToString(n.param, as_utf8=True).strip()
        if len(text) > 3000:
            text = text[:3000] + "\n..."
        parts.append(text)
    # graphviz reads backslash escapes in tooltips: keep the text literal, lines as \n
    return "\n\n".join(parts).replace("\\", "\\\\").replace("\n", "\\n")


def _esc(s: str) -> str:
    return html.escape(str(s), quote=True)


ERROR_COLOR = "#cc0000"


def box_label(box: Box, params: bool, errors=frozenset()) -> str:
    head = box.head
    unknown = bool(head.meta.get("unknown"))
    fill = UNKNOWN_FILL if unknown else _fill(family(head))
    style = "rounded,dashed" if unknown else "rounded"
    in_error = [n.name for n in box.nodes if n.name in errors]
    rows = []
    typ = f"{head.type} (unknown)" if unknown else head.type
    if in_error:
        typ += " (error)"
    rows.append(f'<TR><TD ALIGN="LEFT"><B>{_esc(head.name)}</B>  <FONT POINT-SIZE="10">{_esc(typ)}</FONT></TD></TR>')
    detail = detail_text(head) if not unknown or head.type == "Python" else ""
    if detail:
        rows.append(f'<TR><TD ALIGN="LEFT"><FONT POINT-SIZE="10">{_esc(detail)}</FONT></TD></TR>')
    if params:
        text = params_text(head)
        if text:
            rows.append(f'<TR><TD ALIGN="LEFT"><FONT POINT-SIZE="10">{text}</FONT></TD></TR>')
    for f in box.folded:
        extra = detail_text(f)
        text = f"+ {f.type}  {f.name}" + (f"  ({extra})" if extra else "")
        if params and params_text(f):
            text += f"  · {params_text(f)}"
        rows.append(f'<TR><TD ALIGN="LEFT" BGCOLOR="{_fill(family(f))}"><FONT POINT-SIZE="10">{_esc(text)}</FONT></TD></TR>')
    border, colour = ("3", ERROR_COLOR) if in_error else ("1", "#555555")
    return (f'<<TABLE STYLE="{style}" BORDER="{border}" CELLBORDER="0" CELLSPACING="0" CELLPADDING="4" '
            f'BGCOLOR="{fill}" COLOR="{colour}">' + "".join(rows) + "</TABLE>>")


# --- clusters ----------------------------------------------------------------------------------

def _prefixes(name: str) -> list[str]:
    """Candidate block names: `inception_3a/1x1` → [inception_3a]; `res2a_branch2a` →
    [res2a, res2a_branch2a]; `inception_resnet_v2_a1_1x1` → [inception_resnet_v2,
    inception_resnet_v2_a1]: the name's prefixes that end in a numbered part."""
    if "/" in name:
        head = name.split("/", 1)[0]
        return [head] if head else []
    parts = re.split(r"([_.\-])", name)
    return ["".join(parts[:i + 1]) for i in range(0, len(parts), 2) if re.search(r"\d", parts[i])]


def stage_of(block: str) -> str:
    """res2a → res2; res3b1 → res3; inception_4c → inception_4; inception_a1 → inception_a;
    conv2_1 → conv2."""
    if re.search(r"\d[A-Za-z]+\d*$", block):
        stage = re.sub(r"[A-Za-z]+\d*$", "", block)
    else:
        stage = re.sub(r"\d+$", "", block)
    return stage.rstrip("_.-/")


def clusters(boxes: list[Box], collapse) -> list[tuple[str, list[tuple[str, list[Box]]]]]:
    """[(stage label, [(block label, boxes)])]; a stage label "" means no enclosing stage.

    A layer's block is the shortest of its name's candidate prefixes that a few layers share
    but not a large part of the net (which would be the net's own name prefix); blocks of one
    or two layers are not worth a frame. Blocks nest in stages when there are several stages."""
    collapse = list(collapse)
    if not collapse:
        return []
    key_of: dict[str, str] = {}
    for b in boxes:
        for pre in collapse:
            if pre != "auto" and b.head.name.startswith(pre):
                key_of[b.id] = pre
                break
    if "auto" in collapse:
        names = [n.name for b in boxes for n in b.nodes]
        counts: dict[str, int] = {}
        for name in names:
            for c in _prefixes(name):
                counts[c] = counts.get(c, 0) + 1
        limit = max(4, len(names) // 4)
        for b in boxes:
            if b.id in key_of:
                continue
            for c in _prefixes(b.head.name):
                if 2 <= counts[c] <= limit:
                    key_of[b.id] = c
                    break
    by_key: dict[str, list[Box]] = {}
    for b in boxes:
        if b.id in key_of:
            by_key.setdefault(key_of[b.id], []).append(b)
    explicit = set(collapse) - {"auto"}
    blocks = [(k, bs) for k, bs in by_key.items()
              if k in explicit or (len(bs) >= 2 and sum(len(b.nodes) for b in bs) >= 3)]
    stages: dict[str, list[tuple[str, list[Box]]]] = {}
    for k, bs in blocks:
        stages.setdefault("" if k in explicit else stage_of(k), []).append((k, bs))
    nested = len([s for s, bl in stages.items() if s and len(bl) >= 2]) >= 2
    out: list[tuple[str, list[tuple[str, list[Box]]]]] = []
    loose: list[tuple[str, list[Box]]] = []
    for stage, bl in stages.items():
        if nested and stage and len(bl) >= 2:
            out.append((stage, bl))
        else:
            loose.extend(bl)
    if loose:
        out.append(("", loose))
    return out


# --- the graphviz graph ------------------------------------------------------------------------


def to_dot(graph, rankdir: str = "TB", shapes: bool = True, rf: bool = False, params: bool = False,
           collapse: list[str] | tuple = (), errors=frozenset()):
    """The net as a graphviz.Digraph; the layers named in `errors` are outlined in red."""
    import graphviz

    boxes, box_of = fold(graph)
    g = graphviz.Digraph(graph.name or "net")
    g.attr(rankdir=rankdir, fontname="Helvetica", nodesep="0.25", ranksep="0.35", tooltip=graph.name or "net")
    g.attr("node", shape="plain", fontname="Helvetica", fontsize="11")
    g.attr("edge", fontname="Helvetica", fontsize="9", color="#555555", arrowsize="0.7")

    def emit(target, b: Box):
        target.node(b.id, label=box_label(b, params, errors), tooltip=tooltip(b.nodes))

    grouped = clusters(boxes, list(collapse))
    in_cluster = set()
    for si, (stage, blocks) in enumerate(grouped):
        def add_blocks(parent, blocks=blocks, si=si):
            for bi, (block, bs) in enumerate(blocks):
                with parent.subgraph(name=f"cluster_{si}_{bi}") as c:
                    c.attr(label=block, style="rounded,filled", fillcolor="#f7f7f7", color="#bbbbbb",
                           fontname="Helvetica", fontsize="11", labeljust="l")
                    for b in bs:
                        emit(c, b)
                        in_cluster.add(b.id)
        if stage:
            with g.subgraph(name=f"cluster_stage_{si}") as s:
                s.attr(label=f"stage {stage}", style="rounded", color="#888888", fontname="Helvetica",
                       fontsize="12", labeljust="l")
                add_blocks(s)
        else:
            add_blocks(g)
    for b in boxes:
        if b.id not in in_cluster:
            emit(g, b)

    def value_label(v) -> str:
        lines = [v.name]
        s = v.meta.get("shape")
        if shapes and s is not None:
            lines.append(fmt_shape(s, "×"))
        if rf and v.meta.get("rf") is not None:
            lines.append(rf_text(v.meta["rf"]))
        return "\n".join(lines)

    # external inputs (legacy `input:` fields) and outputs nobody reads
    for i, v in enumerate(graph.inputs):
        if v.producer is None:
            g.node(f"in{i}", label=value_label(v), shape="ellipse", style="filled", fillcolor=_fill("data"),
                   fontsize="10", tooltip=f"net input {v.name}")
    input_ids = {id(v): f"in{i}" for i, v in enumerate(graph.inputs) if v.producer is None}
    for node in graph.nodes:
        dst = box_of[id(node)]
        seen = set()
        for v in node.inputs:
            if v.producer is None:
                src_id = input_ids.get(id(v))
                if src_id is None:  # a bottom nobody produced: draw it so the gap shows
                    src_id = f"missing_{v.name}"
                    g.node(src_id, label=f"{v.name}\n(not produced)", shape="ellipse", style="dashed",
                           color="#b22222", fontcolor="#b22222", fontsize="10")
            else:
                src = box_of[id(v.producer)]
                if src is dst:
                    continue
                src_id = src.id
            if (src_id, id(v)) in seen:
                continue
            seen.add((src_id, id(v)))
            g.edge(src_id, dst.id, label=value_label(v))
    for i, v in enumerate(graph.outputs):
        if v.producer is None:
            continue
        oid = f"out{i}"
        g.node(oid, label=value_label(v), shape="ellipse", fontsize="10", color="#888888", tooltip=f"net output {v.name}")
        g.edge(box_of[id(v.producer)].id, oid)
    return g


# --- rendering and the command ---------------------------------------------------------------


def render(source: str, fmt: str, engine: str = "dot", neato_no_op: int | None = None) -> bytes:
    """Lay out and render DOT text with the system Graphviz; one-line CliError on failure."""
    import graphviz

    try:
        return graphviz.pipe(engine, fmt, source.encode("utf-8"), neato_no_op=neato_no_op, quiet=True)
    except graphviz.ExecutableNotFound:
        raise CliError(f"cannot render {fmt.upper()}: Graphviz's '{engine}' program is not installed or not on "
                       "PATH (install Graphviz, or write .dot output)") from None
    except graphviz.CalledProcessError as e:
        err = (e.stderr or b"").decode("utf-8", "replace").strip().splitlines()
        raise CliError(f"Graphviz '{engine}' failed to render {fmt.upper()}: "
                       f"{err[0] if err else f'exit status {e.returncode}'}") from None
    except OSError as e:
        raise CliError(f"cannot run Graphviz '{engine}': {e.strerror or e}") from None


def output_format(path: str) -> str:
    ext = os.path.splitext(path)[1].lower().lstrip(".")
    ext = {"gv": "dot"}.get(ext, ext)
    if ext not in FORMATS:
        raise CliError(f"cannot draw to {path}: unknown format '{ext or os.path.basename(path)}'; "
                       "use .svg, .png, .pdf or .dot")
    return ext


def draw(graph, path: str, rankdir: str = "TB", shapes: bool = True, rf: bool = False, params: bool = False,
         collapse=(), errors=frozenset()) -> None:
    """Write the drawing of a compiled graph to `path` (.svg/.png/.pdf/.dot), atomically."""
    from .outputs import check_writable, write_atomic

    fmt = output_format(path)
    check_writable(path)
    source = to_dot(graph, rankdir, shapes, rf, params, collapse, errors).source
    write_atomic(path, source if fmt == "dot" else render(source, fmt))
