"""`netdef fmt`: definitions in canonical form (the formatting itself is netdef.fmt)."""
from __future__ import annotations

import sys

from .. import codes
from ..diagnostics import UsageError
from ..fmt import count_extras, format_parsed
from ..library import resolve
from ..outputs import check_writable, write_or_print
from ..parse import parse_file
from .output import print_diagnostics
from .select import shown


def cmd_fmt(args) -> int:
    """`netdef fmt FILE [FILE...] [-o OUT] [--check] [--diff]`: each file in canonical form, in the
    format it is written in (V1 stays V1: `netdef upgrade` is the command that changes formats),
    comments kept. --check and --diff leave the files alone: they say which would change
    (--diff shows how, as a unified diff) and exit 1 when any would."""
    files = [args.file] + list(getattr(args, "more", None) or [])
    checking = getattr(args, "check", False) or getattr(args, "diff", False)
    if len(files) > 1 and not checking:
        raise UsageError("netdef fmt: several files can only be given with --check or --diff")
    if args.output and checking:
        raise UsageError("netdef fmt: -o cannot be combined with --check or --diff")
    if args.output:
        check_writable(args.output)
    status = 0
    changed = []
    failed = 0
    for name in files:
        path = resolve(name)
        parsed = parse_file(path, None, args.max_errors)
        if parsed.diagnostics.has_errors:
            # Values with errors are not in the message: formatting would silently lose them.
            print_diagnostics(parsed.diagnostics)
            status = 1
            failed += 1
            continue
        # The fork-field warnings (W202, W216) are summed up in the one line below.
        print_diagnostics(shown("fmt", parsed.diagnostics))
        # Fields the schema lacks are kept only with a W202/W215/W216 (an unknown field of no
        # fork is an error, handled above): without one, the Loc tree walk is skipped (a tenth
        # of a large file's fmt).
        forked = parsed.diagnostics.full or any(d.code in codes.FORK_NOTES for d in parsed.diagnostics)
        kept = count_extras(parsed.loc) if forked else []
        if kept and not checking:
            names = ", ".join(dict.fromkeys(kept))
            sys.stderr.write(f"netdef fmt: kept {len(kept)} field(s) that BVLC Caffe does not define, "
                             f"at the end of their blocks: {names}\n")
        text = format_parsed(parsed)
        if not checking:
            write_or_print(args.output, text)
            continue
        original = parsed.source.text
        if text == original:
            continue
        changed.append(name)
        if getattr(args, "diff", False):
            import difflib
            for line in difflib.unified_diff(original.splitlines(keepends=True), text.splitlines(keepends=True),
                                             f"{path}", f"{path} (formatted)"):
                sys.stdout.write(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n")
        else:
            sys.stdout.write(f"would reformat: {name}\n")
    if checking:
        n = len(files) - len(changed) - failed
        sys.stderr.write(f"netdef fmt: {len(changed)} file(s) would be reformatted, {n} already formatted\n"
                         if changed else f"netdef fmt: {n} file(s) already formatted\n")
        if changed:
            status = 1
    return status
