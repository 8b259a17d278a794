"""`netdef upgrade`: an old net or solver in the current format (the upgrade itself is
netdef.upgrade, which netdef.pipeline.load applies)."""
from __future__ import annotations

import sys

from .. import codes
from ..fmt import format_message
from ..outputs import check_writable, write_or_print
from ..pipeline import load
from .output import print_diagnostics
from .select import shown


def cmd_upgrade(args) -> int:
    """`netdef upgrade FILE [-o OUT]`: the current-format text of an old net or solver."""
    if args.output:
        check_writable(args.output)
    parsed = load(args.file, max_errors=args.max_errors)
    if parsed.diagnostics.has_errors:
        print_diagnostics(parsed.diagnostics)  # the collector itself: it knows how many were cut
        return 1
    print_diagnostics(shown("upgrade", parsed.diagnostics))
    if not any(d.code == codes.UPGRADED.id for d in parsed.diagnostics) and parsed.message is not None:
        sys.stderr.write(f"netdef upgrade: {parsed.source.path} is already in the current format\n")
    text = format_message(parsed.message, extras=parsed.loc)
    write_or_print(args.output, text)
    return 0
