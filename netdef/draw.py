"""Drawing with graphviz: running the `dot` program (shared with the learning-rate plot).

The network drawing itself follows once the graph IR lands.
"""
from __future__ import annotations

from .diagnostics import CliError

RENDERED = ("svg", "png", "pdf")


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
