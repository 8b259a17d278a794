"""Completion from the text as it is being typed (it need not parse): the blocks that hold the
cursor are found with the lexer's rules for strings and comments, then the schema says what
can be written there.

  after `name` in a block:   the block's fields (type, default, documentation, origin)
  after `field: `:           enum values; layer types for a layer's `type`; the tops written
                             above the layer for `bottom`; lr_policy names with the fields each
                             needs; true/false
"""
from __future__ import annotations

import bisect
import re

from lsprotocol import types as t

from ..forks import _FIELDS as FORK_FIELDS, fork_of_layer_type
from .document import common_prefix, descriptor_of
from .schema import field_detail, field_doc, type_name

# One pass over the text finds what completion needs: strings and comments are skipped whole; a
# `name {` (or `name: {`, `<`) opens a block and `}` (`>`) closes one; a `top:` or `input:` string
# names a blob.
_SCAN = re.compile(r"""#[^\n]*|\b(top|input)\s*:\s*(?:"((?:[^"\\\n]|\\[^\n])*)"|'((?:[^'\\\n]|\\[^\n])*)')"""
                   r"""|"(?:[^"\\\n]|\\[^\n])*"|'(?:[^'\\\n]|\\[^\n])*'|\b([A-Za-z_]\w*)\s*:?\s*[{<]|[}>]""")
_VALUE = re.compile(r"""([A-Za-z_]\w*)\s*:\s*(["']?)([^"'\s{}:;,]*)$""")
_NAME = re.compile(r"(?:^|[\s{};,])([A-Za-z_]\w*)?$")
CHECKPOINT = 4096


class Scan:
    """The scan of one text up to some offset, with checkpoints (the open blocks every few KB,
    at token boundaries), so that after an edit only the text from the last checkpoint before
    it is scanned again: completion costs the same at the end of a 10,000-line file."""

    def __init__(self):
        self.text = ""
        self.checkpoints: list[tuple[int, tuple, tuple, int]] = [(0, (), (), 0)]  # offset, names, starts, #blobs
        self.blobs: list[tuple[int, str]] = []  # (offset, name) of every top:/input: string

    def _common(self, text: str) -> int:
        return common_prefix(self.text, text)

    def at(self, text: str, offset: int) -> tuple[list[str], list[int]]:
        """The names of the blocks open at `offset`, outermost first, and where each starts."""
        if text is not self.text:
            same = self._common(text)
            # A token that ended at `same` may have gone on in the old text: one character back.
            keep = [c for c in self.checkpoints if c[0] < same] or [(0, (), (), 0)]
            self.checkpoints = keep
            self.text = text
        i = bisect.bisect_right(self.checkpoints, offset, key=lambda c: c[0]) - 1
        pos, names_t, starts_t, nblobs = self.checkpoints[max(i, 0)]
        del self.blobs[nblobs:]
        names, starts = list(names_t), list(starts_t)
        nxt = pos + CHECKPOINT
        last = self.checkpoints[-1][0]
        for m in _SCAN.finditer(text, pos, offset):
            if m.group(1) is not None:
                self.blobs.append((m.start(), m.group(2) if m.group(2) is not None else m.group(3)))
            elif m.group(4) is not None:
                names.append(m.group(4))
                starts.append(m.start())
            elif m.group(0) in "}>" and names:
                names.pop()
                starts.pop()
            e = m.end()
            if e >= nxt:
                if e > last:
                    self.checkpoints.append((e, tuple(names), tuple(starts), len(self.blobs)))
                    last = e
                nxt = e + CHECKPOINT
        return names, starts

    def blobs_before(self, offset: int) -> list[str]:
        seen: dict[str, None] = {}
        for at, name in self.blobs:
            if at >= offset:
                break
            seen.pop(name, None)
            seen[name] = None
        return list(seen)[::-1]  # the most recent first


def block_path(text: str, offset: int) -> tuple[list[str], list[int]]:
    """The names of the blocks open at `offset`, outermost first, and where each starts."""
    return Scan().at(text, offset)


def descriptor_at(kind: str, names: list[str]):
    desc = descriptor_of(kind)
    for name in names:
        fd = desc.fields_by_name.get(name)
        if fd is None or fd.message_type is None:
            return None
        desc = fd.message_type
    return desc


def _doc(text: str | None):
    return t.MarkupContent(t.MarkupKind.Markdown, text) if text else None


def _field_items(desc) -> list[t.CompletionItem]:
    items = []
    for fd in desc.fields:
        msg = fd.message_type is not None
        items.append(t.CompletionItem(
            label=fd.name, kind=t.CompletionItemKind.Module if msg else t.CompletionItemKind.Field,
            detail=field_detail(fd), documentation=_doc(field_doc(desc.name, fd.name)),
            insert_text=f"{fd.name} {{" if msg else f"{fd.name}: ", sort_text=f"0{fd.name}"))
    for (message, name), fork in FORK_FIELDS.items():
        if message == desc.name and name not in desc.fields_by_name:
            items.append(t.CompletionItem(label=name, kind=t.CompletionItemKind.Field,
                                          detail="fork field", documentation=_doc(f"Not in BVLC Caffe: from {fork}."),
                                          insert_text=f"{name}: ", sort_text=f"1{name}"))
    return items


def _quoted(label: str, quote: str) -> str:
    return label if quote else f'"{label}"'


def _layer_types(quote: str) -> list[t.CompletionItem]:
    from ..forks import _LAYER_TYPES
    from ..layers import get, known_types

    items = []
    for name in known_types():
        impl = get(name)
        family = type(impl).__module__.rsplit(".", 1)[-1]
        fork = fork_of_layer_type(name)
        detail = f"{family} family" + (f", from {fork}" if fork else "")
        items.append(t.CompletionItem(label=name, kind=t.CompletionItemKind.Class, detail=detail,
                                      insert_text=_quoted(name, quote), sort_text=("1" if fork else "0") + name))
    for name, fork in _LAYER_TYPES.items():
        if get(name) is None:
            items.append(t.CompletionItem(label=name, kind=t.CompletionItemKind.Class,
                                          detail=f"from {fork} (netdef cannot infer its shapes)",
                                          insert_text=_quoted(name, quote), sort_text="2" + name))
    return items


def _blob_names(names: list[str], quote: str) -> list[t.CompletionItem]:
    return [t.CompletionItem(label=n, kind=t.CompletionItemKind.Variable, detail="blob written above",
                             insert_text=_quoted(n, quote), sort_text=f"{i:06d}") for i, n in enumerate(names)]


def _policies() -> list[t.CompletionItem]:
    from ..solver import POLICIES

    items = []
    for name, p in POLICIES.items():
        needs = ", ".join(p.needs) if p.needs else "no other field"
        items.append(t.CompletionItem(label=name, kind=t.CompletionItemKind.EnumMember, detail=f"needs {needs}",
                                      documentation=_doc(f"`{p.formula}`\n\nneeds: {needs}"),
                                      insert_text=f'"{name}"'))
    return items


def complete(text: str, kind: str, offset: int, scan: Scan | None = None) -> t.CompletionList:
    """Completion at `offset`; `scan` (a Scan kept for the document) makes repeated requests
    on a large text cheap."""
    line_start = text.rfind("\n", 0, offset) + 1
    prefix = text[line_start:offset]
    if "#" in prefix:
        # In a comment (a '#' outside strings before the cursor on this line): nothing.
        from ..fmt import scan_comments
        if scan_comments(prefix):
            return t.CompletionList(False, [])
    scan = scan if scan is not None else Scan()
    names, starts = scan.at(text, offset)
    desc = descriptor_at(kind, names)
    items: list[t.CompletionItem] = []
    m = _VALUE.search(prefix)
    if m:
        field, quote = m.group(1), m.group(2)
        if desc is None:
            return t.CompletionList(False, [])
        fd = desc.fields_by_name.get(field)
        if desc.name == "LayerParameter" and field == "type":
            items = _layer_types(quote)
        elif desc.name in ("LayerParameter", "V1LayerParameter") and field == "bottom":
            items = _blob_names(scan.blobs_before(starts[-1] if starts else offset), quote)
        elif desc.name == "SolverParameter" and field == "lr_policy":
            items = _policies()
            if quote:
                for it in items:
                    it.insert_text = it.label
        elif fd is not None and fd.enum_type is not None:
            items = [t.CompletionItem(label=v.name, kind=t.CompletionItemKind.EnumMember,
                                      detail=f"{type_name(fd)} = {v.number}") for v in fd.enum_type.values]
        elif fd is not None and fd.type == fd.TYPE_BOOL:
            items = [t.CompletionItem(label=v, kind=t.CompletionItemKind.Keyword) for v in ("true", "false")]
        return t.CompletionList(False, items)
    if _NAME.search(prefix) and desc is not None:
        items = _field_items(desc)
    return t.CompletionList(False, items)

