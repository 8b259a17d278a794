"""The server: pygls wiring, document sync, and the analysis loop.

Analysis runs in one worker thread, so requests keep being answered while a document is
re-analysed; an edit inside one layer is re-analysed from the previous analysis
(netdef.lsp.incremental), anything else from scratch. Changes are coalesced: an edit that arrives while its document is being analysed
only marks it dirty, and the loop analyses the newest text once the running analysis ends, so a
burst of keystrokes costs one or two analyses, not one per key (a delay before each analysis,
`debounce_ms` in the initialization options, is 0 by default). Diagnostics are published for
the version analysed.

Requests that depend on the analysis (hover, definition, ...) wait for the analysis of the
current text; completion works on the text as typed and never waits. Every handler catches its
own failures: a bug answers null and is logged (window/logMessage), the server stays up.
"""
from __future__ import annotations

import asyncio
import functools
import gc
import logging
import traceback
from concurrent.futures import ThreadPoolExecutor

from lsprotocol import types as t
from pygls.lsp.server import LanguageServer

from ..version import __version__
from ..parse import NET, sniff_kind
from . import document as docmod
from .diagnostics import lsp_diagnostics
from .document import Document, path_of

log = logging.getLogger("netdef.lsp")


class _State:
    __slots__ = ("doc", "task", "dirty", "scan")

    def __init__(self):
        from .completion import Scan

        self.scan = Scan()
        self.doc: Document | None = None
        self.task: asyncio.Task | None = None
        self.dirty = False


class NetdefServer(LanguageServer):
    def __init__(self):
        super().__init__("netdef", __version__, text_document_sync_kind=t.TextDocumentSyncKind.Incremental)
        self.states: dict[str, _State] = {}
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="netdef-analysis")
        self.debounce = 0.0

    # --- analysis -------------------------------------------------------------------------

    def text_of(self, uri: str) -> tuple[str, int | None]:
        td = self.workspace.get_text_document(uri)
        return td.source, td.version

    def schedule(self, uri: str) -> asyncio.Task:
        st = self.states.setdefault(uri, _State())
        if st.task is not None and not st.task.done():
            st.dirty = True
            return st.task
        st.task = asyncio.get_running_loop().create_task(self._analyse_loop(uri, st))
        return st.task

    async def _analyse_loop(self, uri: str, st: _State) -> None:
        loop = asyncio.get_running_loop()
        while True:
            st.dirty = False
            if self.debounce:
                await asyncio.sleep(self.debounce)
                if st.dirty:
                    continue
            try:
                text, version = self.text_of(uri)
            except Exception:  # noqa: BLE001 - the document went away
                return
            doc = await loop.run_in_executor(self.executor, _analyse, uri, text, version, st.doc)
            st.doc = doc
            if not st.dirty:
                self.text_document_publish_diagnostics(
                    t.PublishDiagnosticsParams(uri=uri, version=version, diagnostics=lsp_diagnostics(doc)))
                return

    async def current(self, uri: str) -> Document:
        """The analysis of the document's current text (waiting for it if need be)."""
        st = self.states.setdefault(uri, _State())
        for _ in range(100):
            text, version = self.text_of(uri)
            if st.doc is not None and st.doc.version == version and st.doc.raw == text:
                return st.doc
            await asyncio.shield(self.schedule(uri))
        return st.doc


def _analyse(uri: str, text: str, version, prev: Document | None = None) -> Document:
    if prev is not None and prev.stages is not None:
        from .incremental import reanalyse
        gc_was_enabled = gc.isenabled()
        gc.disable()  # as compile does: the graph is many small long-lived objects to rescan
        try:
            doc = reanalyse(prev, text, version)
        except Exception:  # noqa: BLE001 - then the full analysis below decides
            log.error("netdef: internal error in the incremental analysis of %s\n%s", uri, traceback.format_exc())
            doc = None
        finally:
            if gc_was_enabled:
                gc.enable()
        if doc is not None:
            return doc
    try:
        return Document(uri, path_of(uri), text, version)
    except RecursionError:
        doc = Document(uri, path_of(uri), text, version, analyse=False)
    except Exception:  # noqa: BLE001 - a bug in netdef must not take the server down
        log.error("netdef: internal error while analysing %s\n%s", uri, traceback.format_exc())
        doc = Document(uri, path_of(uri), text, version, analyse=False)
    return doc


server = NetdefServer()


def _safe(fn):
    """Answer null instead of failing: a bug in one feature never stops the server."""
    if asyncio.iscoroutinefunction(fn):
        @functools.wraps(fn)
        async def wrapped(ls, params):
            try:
                return await fn(ls, params)
            except Exception:  # noqa: BLE001
                ls.window_log_message(t.LogMessageParams(t.MessageType.Error,
                                                         f"netdef: internal error\n{traceback.format_exc()}"))
                return None
    else:
        @functools.wraps(fn)
        def wrapped(ls, params):
            try:
                return fn(ls, params)
            except Exception:  # noqa: BLE001
                ls.window_log_message(t.LogMessageParams(t.MessageType.Error,
                                                         f"netdef: internal error\n{traceback.format_exc()}"))
                return None
    return wrapped


def _offset(doc: Document, pos: t.Position) -> int:
    return doc.position_to_offset(pos.line, pos.character)


def _line_starts_of(td, text: str) -> list[int]:
    """Line starts of a pygls document's text, cached on the document until its text changes."""
    cached = getattr(td, "_netdef_starts", None)
    if cached is not None and cached[0] is text:
        return cached[1]
    starts = docmod.line_starts(text)
    td._netdef_starts = (text, starts)
    return starts


def _text_offset(td, text: str, line: int, character: int) -> int:
    starts = _line_starts_of(td, text)
    if line < 0:
        return 0
    if line >= len(starts):
        return len(text)
    start = starts[line]
    end = starts[line + 1] - 1 if line + 1 < len(starts) else len(text)
    return start + docmod.units_to_chars(text[start:end], character)


def _apply_incremental_change(self, change) -> None:
    """pygls applies a ranged change by rewriting the document line by line (tens of ms on a
    10,000-line file); this splices the text at the change's offsets instead."""
    text = self._source
    rng = change.range
    starts = _line_starts_of(self, text)

    def offset(pos):
        if pos.line >= len(starts):
            return len(text)
        start = starts[pos.line]
        end = starts[pos.line + 1] - 1 if pos.line + 1 < len(starts) else len(text)
        return start + docmod.units_to_chars(text[start:end], pos.character)

    a, b = offset(rng.start), offset(rng.end)
    self._source = text[:a] + change.text + text[max(a, b):]


# --- lifecycle and sync ---------------------------------------------------------------------

@server.feature(t.INITIALIZE)
def _initialize(ls: NetdefServer, params: t.InitializeParams):
    from pygls.capabilities import ServerCapabilitiesBuilder

    enc = ServerCapabilitiesBuilder.choose_position_encoding(params.capabilities)
    docmod.ENCODING[0] = str(getattr(enc, "value", enc))
    opts = params.initialization_options if isinstance(params.initialization_options, dict) else {}
    try:
        ls.debounce = max(0.0, float(opts.get("debounce_ms", 0))) / 1000.0
    except (TypeError, ValueError):
        ls.debounce = 0.0


@server.feature(t.TEXT_DOCUMENT_DID_OPEN)
async def _did_open(ls: NetdefServer, params: t.DidOpenTextDocumentParams):
    ls.schedule(params.text_document.uri)


@server.feature(t.TEXT_DOCUMENT_DID_CHANGE)
async def _did_change(ls: NetdefServer, params: t.DidChangeTextDocumentParams):
    ls.schedule(params.text_document.uri)


@server.feature(t.TEXT_DOCUMENT_DID_SAVE)
async def _did_save(ls: NetdefServer, params: t.DidSaveTextDocumentParams):
    ls.schedule(params.text_document.uri)  # a solver's net files may have appeared


@server.feature(t.TEXT_DOCUMENT_DID_CLOSE)
def _did_close(ls: NetdefServer, params: t.DidCloseTextDocumentParams):
    uri = params.text_document.uri
    st = ls.states.pop(uri, None)
    if st is not None and st.task is not None:
        st.task.cancel()
    ls.text_document_publish_diagnostics(t.PublishDiagnosticsParams(uri=uri, diagnostics=[]))


# --- features -------------------------------------------------------------------------------

@server.feature(t.TEXT_DOCUMENT_HOVER)
@_safe
async def _hover(ls: NetdefServer, params: t.HoverParams):
    from .hover import hover

    doc = await ls.current(params.text_document.uri)
    return hover(doc, _offset(doc, params.position))


@server.feature(t.TEXT_DOCUMENT_COMPLETION, t.CompletionOptions(trigger_characters=[":", '"', " "]))
@_safe
def _completion(ls: NetdefServer, params: t.CompletionParams):
    from .completion import complete

    uri = params.text_document.uri
    text, version = ls.text_of(uri)
    st = ls.states.setdefault(uri, _State())
    kind = st.doc.kind if st.doc is not None and st.doc.parsed is not None else (sniff_kind(text) or NET)
    line, character = params.position.line, params.position.character
    td = ls.workspace.get_text_document(uri)
    offset = _text_offset(td, text, line, character)
    return complete(text, kind, offset, st.scan)


@server.feature(t.TEXT_DOCUMENT_DEFINITION)
@_safe
async def _definition(ls: NetdefServer, params: t.DefinitionParams):
    from .navigation import definition

    doc = await ls.current(params.text_document.uri)
    return definition(doc, _offset(doc, params.position))


@server.feature(t.TEXT_DOCUMENT_REFERENCES)
@_safe
async def _references(ls: NetdefServer, params: t.ReferenceParams):
    from .navigation import references

    doc = await ls.current(params.text_document.uri)
    return references(doc, _offset(doc, params.position), params.context.include_declaration)


@server.feature(t.TEXT_DOCUMENT_DOCUMENT_SYMBOL)
@_safe
async def _symbols(ls: NetdefServer, params: t.DocumentSymbolParams):
    from .navigation import document_symbols

    return document_symbols(await ls.current(params.text_document.uri))


@server.feature(t.TEXT_DOCUMENT_DOCUMENT_LINK)
@_safe
async def _links(ls: NetdefServer, params: t.DocumentLinkParams):
    from .navigation import document_links

    return document_links(await ls.current(params.text_document.uri))


@server.feature(t.TEXT_DOCUMENT_FORMATTING)
@_safe
async def _formatting(ls: NetdefServer, params: t.DocumentFormattingParams):
    from .edits import formatting

    uri = params.text_document.uri
    text, version = ls.text_of(uri)
    doc = Document(uri, path_of(uri), text, version, analyse=False)
    return await asyncio.get_running_loop().run_in_executor(ls.executor, formatting, doc)


@server.feature(t.TEXT_DOCUMENT_PREPARE_RENAME)
@_safe
async def _prepare_rename(ls: NetdefServer, params: t.PrepareRenameParams):
    from .edits import prepare_rename

    doc = await ls.current(params.text_document.uri)
    return prepare_rename(doc, _offset(doc, params.position))


@server.feature(t.TEXT_DOCUMENT_RENAME)
@_safe
async def _rename(ls: NetdefServer, params: t.RenameParams):
    from .edits import rename

    doc = await ls.current(params.text_document.uri)
    return rename(doc, _offset(doc, params.position), params.new_name)


@server.feature(t.TEXT_DOCUMENT_CODE_ACTION,
                t.CodeActionOptions(code_action_kinds=[t.CodeActionKind.QuickFix]))
@_safe
async def _code_action(ls: NetdefServer, params: t.CodeActionParams):
    from .edits import code_actions

    doc = await ls.current(params.text_document.uri)
    return code_actions(doc, _offset(doc, params.range.start), _offset(doc, params.range.end))


@server.feature(t.TEXT_DOCUMENT_INLAY_HINT)
@_safe
async def _inlay_hints(ls: NetdefServer, params: t.InlayHintParams):
    from .edits import inlay_hints

    doc = await ls.current(params.text_document.uri)
    return inlay_hints(doc, _offset(doc, params.range.start), _offset(doc, params.range.end))


def serve() -> None:
    from pygls.workspace.text_document import TextDocument

    TextDocument._apply_incremental_change = _apply_incremental_change
    logging.basicConfig(level=logging.WARNING)  # pygls logs to stderr; stdout is the protocol's
    server.start_io()
