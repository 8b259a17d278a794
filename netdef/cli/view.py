"""`netdef view`: one self-contained HTML page of a net or solver (netdef.view builds it)."""
from __future__ import annotations

import os

from ..diagnostics import CliError
from ..outputs import check_writable, write_atomic
from ..parse import NET
from ..view import build
from . import output as cli
from .select import shown


def cmd_view(args) -> int:
    out = args.output
    special = os.path.exists(out) and not os.path.isfile(out) and not os.path.isdir(out)  # /dev/stdout
    if not special and os.path.splitext(out)[1].lower() not in (".html", ".htm"):
        raise CliError(f"cannot write {out}: netdef view writes an HTML page; name it OUT.html")
    check_writable(out)
    text, diags, errors, kind = build(args.file, args.phase, tuple(args.stage), args.level,
                                args.inputs or None, args.max_errors)
    # Unlike `draw`, the page of a net with errors is written: it lists the errors and marks
    # the layers they concern, which is what the page is for. The exit code still says 1.
    # A solver's page lists all its diagnostics; a net's, those a report on a net shows.
    cli.print_diagnostics(shown("view", diags) if kind == NET else diags)  # -W error stops here
    write_atomic(out, text)
    report = {"ok": not errors, "wrote": out, "bytes": len(text.encode("utf-8"))}
    if cli.json_mode:
        cli.emit_json(args, report)
    else:
        cli.info(f"wrote {out}" + ("; the definition has errors, listed in the page" if errors else ""))
    if args.open:
        import webbrowser
        from pathlib import Path

        if not webbrowser.open(Path(os.path.realpath(out)).as_uri()):
            cli.note(f"netdef view: no browser could be started; open {out} yourself")
    return 1 if errors else 0
