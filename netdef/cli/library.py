"""`netdef list`: the bundled library of networks and solvers (netdef.library finds them)."""
from __future__ import annotations

from ..library import description, nets, solvers
from .output import emit_json


def cmd_list(args) -> int:
    rows = [("net", name, description(p)) for name, p in nets().items()]
    rows += [("solver", name, description(p)) for name, p in solvers().items()]
    if getattr(args, "format", "text") == "json":
        emit_json(args, {"nets": [{"name": n, "path": str(p), "description": description(p)} for n, p in nets().items()],
                         "solvers": [{"name": n, "path": str(p), "description": description(p)}
                                     for n, p in solvers().items()]})
        return 0
    width = max((len(r[1]) for r in rows), default=4)
    for kind, name, desc in rows:
        print(f"{kind:<7} {name:<{width}}  {desc}")
    return 0
