"""`netdef lsp`: the language server (netdef.lsp) on standard input and output."""
from __future__ import annotations


def cmd_lsp(args) -> int:
    """Serve the Language Server Protocol on standard input and output until the client exits."""
    from ..lsp.server import serve  # pygls is imported only when the server runs

    serve()
    return 0
