"""Graphviz layouts for the page: the net with its repeated blocks folded, and each block's inside.

The boxes and blocks are netdef.draw's (in-place layers folded into their producer's box;
`clusters(..., ["auto"])` finds the repeated blocks). Graphviz lays out, in one `dot` run:

  * "top": every box outside a block, one node per block, the net's inputs and outputs;
  * one graph per block: its boxes, with small port nodes for the blobs that enter (top row)
    and leave (bottom row).

The page draws the SVG itself from the positions (view.js); expanding a block swaps its node for
its own layout and moves what lies below it down by the difference in height.

No text from the definition goes to Graphviz: node sizes are given explicitly and edge labels
are placeholders of the same length, so the DOT text holds only generated ids and numbers.
"""
from __future__ import annotations

import json

from ..draw import render
from ..ir import fmt_shape
from ..layers.base import prod

# Text metrics assumed for sizing (the page uses these font sizes; a generous average width).
_CHAR = {"b": 7.0, "r": 6.1, "s": 5.6}
_LINE = 15.0
_PAD_X, _PAD_Y = 14.0, 8.0


def _size(lines) -> tuple[float, float]:
    w = max((len(t["t"]) * _CHAR[t.get("f", "r")] for t in lines), default=20.0)
    return w + 2 * _PAD_X, len(lines) * _LINE + 2 * _PAD_Y


def box_lines(box, index) -> list[dict]:
    from ..draw import detail_text

    head = box.head
    unknown = bool(head.meta.get("unknown"))
    i = index[id(head)]
    detail = detail_text(head) if not unknown or head.type == "Python" else ""
    second = head.type + (" (unknown)" if unknown else "") + (f"  {detail}" if detail else "")
    lines = [{"t": head.name, "f": "b", "l": i}, {"t": second, "f": "r", "l": i}]
    for f in box.folded:
        extra = detail_text(f)
        lines.append({"t": f"+ {f.type}  {f.name}" + (f"  ({extra})" if extra else ""), "f": "s", "l": index[id(f)]})
    return lines


def _si(n) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.2f}{unit}"
    return f"{n:g}"


def block_lines(name, stage, boxes) -> list[dict]:
    nodes = [n for b in boxes for n in b.nodes]
    macs = sum((n.meta.get("cost") or {}).get("macs") or 0 for n in nodes)
    params = sum(sum(prod(s) for s in n.meta.get("params") or ()) for n in nodes)
    what = f"{len(nodes)} layers" + (f" · {_si(macs)} MACs" if macs else "") + (f" · {_si(params)} params" if params else "")
    lines = [{"t": "▸ " + name, "f": "b"}, {"t": what, "f": "r"}]
    if stage:
        lines.append({"t": f"stage {stage}", "f": "s"})
    return lines


def value_lines(v) -> list[str]:
    s = v.meta.get("shape")
    return [v.name] + ([fmt_shape(s, "×")] if s is not None else [])


class _Dot:
    def __init__(self, name: str):
        self.name = name
        self.out = [f'digraph {name} {{', 'graph [rankdir=TB nodesep=0.25 ranksep=0.35 fontname="Helvetica"];',
                    'node [shape=box fixedsize=true label="" fontname="Helvetica" fontsize=11];',
                    'edge [fontname="Helvetica" fontsize=9 arrowsize=0.7];']
        self.nodes: dict[str, dict] = {}
        self.edges: list[dict] = []
        self.sources: list[str] = []
        self.sinks: list[str] = []

    def node(self, nid: str, info: dict, w: float, h: float, shape: str = "box") -> None:
        info.update(id=nid, w=w, h=h)
        self.nodes[nid] = info
        self.out.append(f'{nid} [width={w / 72:.4f} height={h / 72:.4f} shape={shape}];')

    def edge(self, a: str, b: str, info: dict, label: list[str] | None) -> None:
        info.update(t=a, h=b, lab=label or [])
        eid = f"e{len(self.edges)}"
        self.edges.append(info)
        if label:
            # placeholders of the same length: Graphviz reserves the space, sees no user text
            text = "\\n".join("x" * max(1, len(line)) for line in label)
            self.out.append(f'{a} -> {b} [id={eid} label="{text}"];')
        else:
            self.out.append(f"{a} -> {b} [id={eid}];")

    def text(self) -> str:
        extra = []
        if self.sources:
            extra.append("{rank=source; " + " ".join(self.sources) + ";}")
        if self.sinks:
            extra.append("{rank=sink; " + " ".join(self.sinks) + ";}")
        return "\n".join(self.out + extra + ["}"])


def _points(pos: str, height: float):
    """An edge's `pos`: 'e,x,y x1,y1 x2,y2 ...' → (bezier points, arrow end), y flipped."""
    end = None
    pts = []
    for tok in pos.split():
        if tok.startswith("e,"):
            x, y = tok[2:].split(",")
            end = [round(float(x), 1), round(height - float(y), 1)]
        elif tok.startswith("s,"):
            continue
        else:
            x, y = tok.split(",")
            pts.append([round(float(x), 1), round(height - float(y), 1)])
    return pts, end


def _apply(doc: dict, g: _Dot) -> dict:
    x0, y0, x1, y1 = (float(t) for t in doc["bb"].split(","))
    height = y1
    by_gvid = {}
    for obj in doc.get("objects", []):
        if "pos" not in obj:
            continue  # a subgraph (the rank groups)
        by_gvid[obj["_gvid"]] = obj["name"]
        x, y = (float(t) for t in obj["pos"].split(","))
        n = g.nodes[obj["name"]]
        n["x"], n["y"] = round(x, 1), round(height - y, 1)
    edges = []
    for e in doc.get("edges", []):
        info = g.edges[int(e["id"][1:])]
        if by_gvid.get(e["tail"]) != info["t"] or by_gvid.get(e["head"]) != info["h"]:
            raise RuntimeError("Graphviz returned an edge between other nodes")
        info["p"], info["e"] = _points(e.get("pos", ""), height)
        if "lp" in e:
            x, y = (float(t) for t in e["lp"].split(","))
            info["lp"] = [round(x, 1), round(height - y, 1)]
        edges.append(info)
    return {"w": round(x1 - x0, 1), "h": round(y1 - y0, 1), "nodes": list(g.nodes.values()), "edges": edges}


def _cyclic_units(edges: dict) -> set:
    """The units (nodes of `edges`: unit → set of successors) that lie on a cycle: members of a
    strongly connected component of more than one unit (Tarjan's algorithm, iterative)."""
    index, low, on, stack, out = {}, {}, set(), [], set()
    counter = 0
    for root in list(edges):
        if root in index:
            continue
        work = [(root, iter(edges.get(root, ())))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on.add(root)
        while work:
            u, it = work[-1]
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(edges.get(w, ()))))
                    break
                if w in on:
                    low[u] = min(low[u], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[u])
                if low[u] == index[u]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on.discard(w)
                        comp.append(w)
                        if w == u:
                            break
                    if len(comp) > 1:
                        out.update(comp)
    return out


def acyclic_blocks(graph, box_of, blocks: list) -> list:
    """Drop the blocks whose folding would make the folded graph cyclic.

    A name-prefix block need not be convex: DenseNet's "concat_4_1" ... "concat_4_36" share a
    prefix but each sits between two of the "conv4_N" blocks, so folding them all makes a cycle
    through every conv4 block (and Graphviz then takes minutes, or fails). While the folded
    graph has a cycle, the block on one with the most neighbours is unfolded."""
    blocks = list(blocks)
    while True:
        block_of = {b.id: bid for bid, _, _, bs in blocks for b in bs}
        edges: dict = {}
        for node in graph.nodes:
            dst = box_of[id(node)]
            d = block_of.get(dst.id, dst.id)
            for v in node.inputs:
                if v.producer is None:
                    continue
                src = box_of[id(v.producer)]
                s = block_of.get(src.id, src.id)
                if s != d:
                    edges.setdefault(s, set()).add(d)
        ids = {bid for bid, _, _, _ in blocks}
        bad = [u for u in _cyclic_units(edges) if u in ids]
        if not bad:
            return blocks
        # Unfold the block with the most neighbours first (DenseNet's concat_4, not conv4_N).
        degree = {u: len(edges.get(u, ())) for u in bad}
        for targets in edges.values():
            for t in targets:
                if t in degree:
                    degree[t] += 1
        worst = max(bad, key=lambda u: degree[u])
        blocks = [blk for blk in blocks if blk[0] != worst]


def layout(graph, boxes, box_of, blocks, vids: dict, index: dict) -> dict:
    """{"top": {...}, "blocks": {bid: {...}}}: positions in px, y downwards.

    blocks: [(bid, name, stage, [Box])]; vids: id(Value) → the page's blob index;
    index: id(Node) → the layer's index."""
    block_of = {b.id: bid for bid, _, _, bs in blocks for b in bs}
    top = _Dot("top")

    def where(box) -> str:
        return block_of.get(box.id, box.id)

    for b in boxes:
        if b.id not in block_of:
            lines = box_lines(b, index)
            w, h = _size(lines)
            top.node(b.id, {"kind": "box", "lines": lines, "layers": [index[id(n)] for n in b.nodes]}, w, h)
    for bid, name, stage, bs in blocks:
        lines = block_lines(name, stage, bs)
        w, h = _size(lines)
        top.node(bid, {"kind": "block", "lines": lines, "block": bid,
                       "layers": [index[id(n)] for b in bs for n in b.nodes]}, w, h)
    input_ids = {}
    for i, v in enumerate(graph.inputs):
        if v.producer is None:
            nid = f"in{i}"
            lines = [{"t": t, "f": "r"} for t in value_lines(v)]
            w, h = _size(lines)
            top.node(nid, {"kind": "input", "lines": lines, "v": vids[id(v)]}, w, h + 4, "ellipse")
            input_ids[id(v)] = nid

    inner = {bid: _Dot(bid) for bid, _, _, _ in blocks}
    ports_in: dict[str, dict] = {bid: {} for bid in inner}
    ports_out: dict[str, dict] = {bid: {} for bid in inner}
    for bid, _, _, bs in blocks:
        g = inner[bid]
        for b in bs:
            lines = box_lines(b, index)
            w, h = _size(lines)
            g.node(b.id, {"kind": "box", "lines": lines, "layers": [index[id(n)] for n in b.nodes]}, w, h)

    def port(bid, v, out: bool) -> str:
        table = ports_out[bid] if out else ports_in[bid]
        if id(v) not in table:
            g = inner[bid]
            pid = f"{bid}_{'po' if out else 'pi'}{len(table)}"
            table[id(v)] = pid
            g.node(pid, {"kind": "port", "v": vids[id(v)], "out": out}, 6.0, 6.0, "point")
            (g.sinks if out else g.sources).append(pid)
        return table[id(v)]

    seen = set()
    missing = {}
    for node in graph.nodes:
        dst = box_of[id(node)]
        dst_where = where(dst)
        for v in node.inputs:
            if v.producer is None:
                src_id = input_ids.get(id(v))
                if src_id is None:
                    src_id = missing.get(v.name)
                    if src_id is None:
                        src_id = missing[v.name] = f"missing{len(missing)}"
                        lines = [{"t": v.name, "f": "r"}, {"t": "(not produced)", "f": "s"}]
                        w, h = _size(lines)
                        top.node(src_id, {"kind": "missing", "lines": lines, "v": vids[id(v)]}, w, h + 4, "ellipse")
                src_box, src_where = None, src_id
            else:
                src_box = box_of[id(v.producer)]
                if src_box is dst:
                    continue
                src_where = where(src_box)
            key = (src_where, dst.id, id(v))  # one edge per blob and reading box
            if key in seen:
                continue
            seen.add(key)
            vi = vids[id(v)]
            if src_where == dst_where and dst_where in inner:  # inside one block
                inner[dst_where].edge(src_box.id, dst.id, {"v": vi}, value_lines(v))
                continue
            if dst_where in inner:  # entering a block: a port inside it
                k = ("in", dst_where, id(v), dst.id)
                if k not in seen:
                    seen.add(k)
                    inner[dst_where].edge(port(dst_where, v, False), dst.id, {"v": vi}, None)
            if src_where in inner:  # leaving a block
                k = ("out", src_where, id(v))
                if k not in seen:
                    seen.add(k)
                    inner[src_where].edge(src_box.id, port(src_where, v, True), {"v": vi}, None)
            k = ("top", src_where, dst_where, id(v))
            if k not in seen:
                seen.add(k)
                top.edge(src_where, dst_where, {"v": vi}, value_lines(v))
    for i, v in enumerate(graph.outputs):
        if v.producer is None:
            continue
        oid = f"out{i}"
        lines = [{"t": t, "f": "r"} for t in value_lines(v)]
        w, h = _size(lines)
        top.node(oid, {"kind": "output", "lines": lines, "v": vids[id(v)]}, w, h + 4, "ellipse")
        src = box_of[id(v.producer)]
        if where(src) in inner:
            inner[where(src)].edge(src.id, port(where(src), v, True), {"v": vids[id(v)]}, None)
        top.edge(where(src), oid, {"v": vids[id(v)]}, None)

    graphs = [top] + list(inner.values())
    source = "\n".join(g.text() for g in graphs)
    raw = render(source, "json0").decode("utf-8")
    docs = {}
    dec = json.JSONDecoder()
    pos = 0
    while True:
        while pos < len(raw) and raw[pos].isspace():
            pos += 1
        if pos >= len(raw):
            break
        doc, pos = dec.raw_decode(raw, pos)
        docs[doc["name"]] = doc
    result = {"top": _apply(docs["top"], top), "blocks": {}}
    for bid, name, stage, _ in blocks:
        lay = _apply(docs[bid], inner[bid])
        lay["name"], lay["stage"] = name, stage
        result["blocks"][bid] = lay
    return result

