"""One analysis of one document: what every feature of the server reads.

A Document is made from a text and never changes afterwards, so the server can hand the
latest one to a request while the next is being built in a worker thread. It holds:

  - the parse (upgraded to the current format, with the Loc tree over the user's text),
  - the analysed graph for a net (TEST phase, as `netdef check`), or the solver's checks,
  - the diagnostics, exactly those `netdef check` (nets) or `netdef solver` (solvers) reports
    for this file,
  - an index of the layers and of every place a blob name is written (bottom, top, input),
  - offsets <-> LSP positions (lines and UTF-16 code units, the protocol's default).
"""
from __future__ import annotations

import bisect
import os
from dataclasses import dataclass

from ..diagnostics import Diagnostics
from ..parse import NET, SOLVER, parse_text
from ..proto import pb
from ..source import Source
from ..loc import Loc


@dataclass
class LayerRef:
    index: int            # position among the file's layers
    loc: Loc              # the `layer {` block
    msg: object           # pb.LayerParameter (or V1LayerParameter when the upgrade failed)
    node: object = None   # the ir.Node, when the layer is in the analysed (TEST) graph

    @property
    def name(self) -> str:
        return self.msg.name

    @property
    def type(self) -> str:
        t = self.msg.type
        return t if isinstance(t, str) else pb.V1LayerParameter.LayerType.Name(t)


@dataclass
class BlobUse:
    start: int            # the value as written, quotes included
    end: int
    name: str
    role: str             # "bottom", "top" or "input"
    layer: int            # index into Document.layers; -1 for a net-level `input:`
    slot: int             # which bottom/top of the layer


# The position encoding the server and the client agreed on (set by the server at initialize).
ENCODING = ["utf-16"]


def _units(ch: str) -> int:
    if ENCODING[0] == "utf-8":
        return len(ch.encode("utf-8", "surrogatepass"))
    return 2 if ord(ch) > 0xFFFF else 1


def units_to_chars(line: str, units: int) -> int:
    """How many characters of a line `units` position units cover (clamped to the line)."""
    if line.isascii() or ENCODING[0] == "utf-32":
        return max(0, min(units, len(line)))
    n = 0
    for i, ch in enumerate(line):
        if n >= units:
            return i
        n += _units(ch)
    return len(line)


def line_starts(text: str) -> list[int]:
    """Offsets of the starts of the lines (as Source computes them, in C rather than a loop)."""
    import numpy as np

    nl = np.flatnonzero(np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32) == 10)
    return [0] + (nl + 1).tolist()


def descriptor_of(kind: str):
    return (pb.SolverParameter if kind == SOLVER else pb.NetParameter).DESCRIPTOR


class Document:
    def __init__(self, uri: str, path: str, text: str, version: int | None = None, analyse: bool = True,
                 max_errors: int = 100):
        self.uri = uri
        self.path = path
        self.version = version
        self.raw = text
        self.source = Source(text, path)
        self.source._starts = line_starts(self.source.text)
        self.text = self.source.text
        self.kind = NET
        self.parsed = None
        self.graph = None
        self.diagnostics: list = []
        self.layers: list[LayerRef] = []
        self.blobs: list[BlobUse] = []
        self._blob_starts: list[int] = []
        self._sorted: dict[int, tuple] = {}
        self.stages = None
        self.spread: set = set()
        self.incremental = False
        if analyse:
            self._analyse(max_errors)

    # --- analysis -------------------------------------------------------------------------

    def _analyse(self, max_errors: int) -> None:
        from ..upgrade import upgrade_parsed

        parsed = upgrade_parsed(parse_text(self.source, None, max_errors))
        self.parsed = parsed
        self.kind = parsed.kind
        if parsed.kind == SOLVER:
            self.diagnostics = self._solver_diagnostics(parsed, max_errors)
        else:
            self._compile(parsed, max_errors)
        self._index()

    def _compile(self, parsed, max_errors: int) -> None:
        """netdef.pipeline.compile (TEST phase, as `netdef check`), pass by pass, remembering
        which diagnostics each stage made and what the build wrote into each node's and value's
        meta: what netdef.lsp.incremental needs to re-analyse one layer's edit."""
        import gc

        from ..build import build
        from ..ir import Graph
        from ..passes import PIPELINE

        diags = Diagnostics(max_errors)
        diags.extend(parsed.diagnostics)
        diags.dropped += getattr(parsed.diagnostics, "dropped", 0)
        self.stages = None
        if not parsed.syntax_ok:
            self.graph = Graph(parsed.message.name, parsed=parsed, diagnostics=diags)
            self.diagnostics = list(diags)
            return
        gc_was_enabled = gc.isenabled()
        gc.disable()
        try:
            graph = build(parsed, "TEST", (), 0, None, diagnostics=diags)
            marks = [len(parsed.diagnostics.items), len(diags.items)]
            built = ({id(n): dict(n.meta) for n in graph.nodes},
                     {id(v): dict(v.meta) for n in graph.nodes for v in n.outputs})
            for p in PIPELINE:
                p.run(graph)
                marks.append(len(diags.items))
        finally:
            if gc_was_enabled:
                gc.enable()
        self.graph = graph
        self.diagnostics = list(diags)
        # [parse+upgrade, build, verify, shapes, receptive field, cost] diagnostics, and the meta
        # the build wrote.
        items = diags.items
        self.stages = ([items[a:b] for a, b in zip([0] + marks[:-1], marks)], built)
        self.spread = spread_blocks(parsed.loc)

    def _solver_diagnostics(self, parsed, max_errors: int) -> list:
        """What `netdef solver` reports about this file: its fields, and the nets it names
        (whether they can be read; their own diagnostics belong to their own files)."""
        from ..solver import check_fields, plan_nets

        diags = Diagnostics(max_errors)
        diags.extend(parsed.diagnostics)
        if parsed.syntax_ok:
            check_fields(parsed.message, parsed.loc, diags)
            try:
                plan_nets(parsed, diags)
            except RecursionError:
                pass
        return [d for d in diags if d.span is None or d.span.source is self.source]

    def _index(self) -> None:
        parsed = self.parsed
        if parsed is None or self.kind != NET or parsed.loc is None:
            return
        msg, loc = parsed.message, parsed.loc
        layer_field = "layer" if msg.layer or not msg.layers else "layers"
        entries = loc.fields.get(layer_field, [])
        msgs = getattr(msg, layer_field)
        for i, (e, m) in enumerate(zip(entries, msgs)):
            if isinstance(e, Loc):
                self.layers.append(LayerRef(i, e, m))
        if self.graph is not None:
            for node in self.graph.nodes:
                if 0 <= node.index < len(self.layers) and self.layers[node.index].loc is node.loc:
                    self.layers[node.index].node = node
        self._index_blobs()

    def _index_blobs(self) -> None:
        msg, loc = self.parsed.message, self.parsed.loc
        uses = []
        for j, e in enumerate(loc.fields.get("input", [])):
            if isinstance(e, tuple) and j < len(msg.input):
                uses.append(BlobUse(e[1], e[2], msg.input[j], "input", -1, j))
        for ref in self.layers:
            for role in ("bottom", "top"):
                values = getattr(ref.msg, role)
                for j, e in enumerate(ref.loc.fields.get(role, [])):
                    if isinstance(e, tuple) and j < len(values):
                        uses.append(BlobUse(e[1], e[2], values[j], role, ref.index, j))
        uses.sort(key=lambda u: u.start)
        self.blobs = uses
        self._blob_starts = [u.start for u in uses]

    # --- positions ------------------------------------------------------------------------

    def offset_to_position(self, offset: int) -> tuple[int, int]:
        """(line, character) of an offset, 0-based, the character in the negotiated units
        (UTF-16 code units unless the client chose UTF-8 or UTF-32)."""
        line, col = self.source.line_col(offset)
        starts = self.source._line_starts()
        start = starts[line - 1]
        chunk = self.text[start:start + col - 1]
        if chunk.isascii() or ENCODING[0] == "utf-32":
            return line - 1, col - 1
        return line - 1, sum(_units(ch) for ch in chunk)

    def position_to_offset(self, line: int, character: int) -> int:
        starts = self.source._line_starts()
        if line < 0:
            return 0
        if line >= len(starts):
            return len(self.text)
        start = starts[line]
        end = starts[line + 1] - 1 if line + 1 < len(starts) else len(self.text)
        return start + units_to_chars(self.text[start:end], character)

    # --- lookups --------------------------------------------------------------------------

    def entries(self, loc: Loc) -> tuple[list[int], list[tuple[str, object]]]:
        """A block's fields sorted by where they start: ([starts], [(name, entry)])."""
        got = self._sorted.get(id(loc))
        if got is None:
            items = []
            for name, es in loc.fields.items():
                for e in es:
                    items.append((e.name_start if isinstance(e, Loc) else e[0], name, e))
            items.sort(key=lambda t: t[0])
            got = ([t[0] for t in items], [(t[1], t[2]) for t in items])
            self._sorted[id(loc)] = got
        return got

    def locate(self, offset: int):
        """Where an offset is in the Loc tree: (chain, field) where chain lists the blocks that
        hold it, outermost first, as (field name, Loc, message descriptor or None), and field is
        (name, entry, descriptor of the block holding it) for the innermost field the offset is
        on, or None between fields."""
        root = self.parsed.loc if self.parsed is not None else None
        if root is None:
            return [], None
        desc = descriptor_of(self.kind)
        chain = [("", root, desc)]
        loc = root
        while True:
            starts, items = self.entries(loc)
            i = bisect.bisect_right(starts, offset) - 1
            if i < 0:
                return chain, None
            name, e = items[i]
            if isinstance(e, Loc):
                if offset <= e.end:
                    if offset < e.head_end:  # on the block's own `name {`
                        return chain, (name, e, desc)
                    fd = desc.fields_by_name.get(name) if desc is not None else None
                    desc = fd.message_type if fd is not None else None
                    chain.append((name, e, desc))
                    loc = e
                    continue
                return chain, None
            if offset <= e[2]:
                return chain, (name, e, desc)
            return chain, None

    def layer_at(self, offset: int) -> LayerRef | None:
        """The layer whose block holds an offset."""
        lo, hi = 0, len(self.layers)
        while lo < hi:
            mid = (lo + hi) // 2
            if self.layers[mid].loc.name_start <= offset:
                lo = mid + 1
            else:
                hi = mid
        if lo and offset <= self.layers[lo - 1].loc.end:
            return self.layers[lo - 1]
        return None

    def blob_at(self, offset: int) -> BlobUse | None:
        i = bisect.bisect_right(self._blob_starts, offset) - 1
        if i >= 0 and offset <= self.blobs[i].end:
            return self.blobs[i]
        return None

    def producer_of(self, use: BlobUse) -> BlobUse | None:
        """Where the version of a blob that `use` reads was written: for a bottom (and for the
        top of an in-place layer, which reads the blob it rewrites), the last top of that name
        in an earlier layer, or the net's `input:`; the analysed graph decides when it has the
        layer (so a TRAIN-only layer never answers for the TEST net), the text otherwise."""
        if use.role == "top":
            ref = self.layers[use.layer]
            if use.name not in list(ref.msg.bottom):
                return use
        if use.role == "input":
            return use
        ref = self.layers[use.layer]
        node = ref.node
        if node is not None and use.role == "bottom" and use.slot < len(node.inputs):
            value = node.inputs[use.slot]
            prod = value.producer
            if prod is not None and 0 <= prod.index < len(self.layers):
                for u in self.uses_in_layer(prod.index, "top"):
                    if u.slot == value.top_index:
                        return u
            elif prod is None:
                for u in self.blobs:
                    if u.role == "input" and u.name == use.name:
                        return u
        found = None
        for u in self.blobs:
            if u.start >= ref.loc.name_start:
                break
            if u.name == use.name and (u.role == "top" or u.role == "input"):
                found = u
        return found

    def uses_in_layer(self, index: int, role: str | None = None) -> list[BlobUse]:
        ref = self.layers[index]
        lo = bisect.bisect_left(self._blob_starts, ref.loc.name_start)
        out = []
        for u in self.blobs[lo:]:
            if u.start > ref.loc.end:
                break
            if u.layer == index and (role is None or u.role == role):
                out.append(u)
        return out

    def value_of(self, use: BlobUse):
        """The ir.Value a use reads or writes, when the graph has it."""
        if use.layer < 0 or self.graph is None:
            if self.graph is not None:
                for v in self.graph.inputs:
                    if v.name == use.name and v.producer is None:
                        return v
            return None
        node = self.layers[use.layer].node
        if node is None:
            return None
        values = node.inputs if use.role == "bottom" else node.outputs
        return values[use.slot] if use.slot < len(values) else None


def path_of(uri: str) -> str:
    """A file path for a `file:` URI (other schemes, such as untitled:, are kept as they are)."""
    if uri.startswith("file:"):
        from pygls.uris import to_fs_path

        return to_fs_path(uri) or uri
    return uri


def uri_of(path: str) -> str:
    from pygls.uris import from_fs_path

    return from_fs_path(os.path.abspath(path)) or path


def spread_blocks(root: Loc) -> set:
    """The ids of the root's blocks with a field past their own end (see incremental._shift_tree)."""
    out = set()
    for entries in root.fields.values():
        for e in entries:
            if isinstance(e, Loc) and not _within(e, e.end):
                out.add(id(e))
    return out


def _within(loc: Loc, end: int) -> bool:
    for entries in loc.fields.values():
        for e in entries:
            if isinstance(e, Loc):
                if e.end > end or not _within(e, end):
                    return False
            elif e[2] > end:
                return False
    return True


def common_prefix(a: str, b: str) -> int:
    """The length of the longest common prefix of two texts (an edit's first changed offset)."""
    lo, hi = 0, min(len(a), len(b))
    while lo < hi:  # the longest m with a[:m] == b[:m]: compared in C, halving each time
        mid = (lo + hi + 1) // 2
        if a[lo:mid] == b[lo:mid]:
            lo = mid
        else:
            hi = mid - 1
    return lo
