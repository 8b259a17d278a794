"""V0/V1 network definitions and old solvers → the current format, as Caffe upgrades them.

(First version: current-format files pass through unchanged; the upgrade itself follows.)
"""
from __future__ import annotations


def upgrade_parsed(parsed):
    """Return `parsed` with its message in the current format (pass-through for now)."""
    return parsed
