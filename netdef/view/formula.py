"""The page's "Output size" lines: netdef.formula's text, plain.

    formula(node) -> ["out = (in + 2×pad − kernel) / stride + 1",
                      "/ is integer division (truncates toward zero), as in Caffe's C++",
                      "channels: num_output = 96", "height: (227 + 2×0 − 11) / 4 + 1 = 55", ...]

Only a layer whose output the shapes pass computed gets lines, so each axis line ends in the
size shown beside it (tests/test_view.py checks both).
"""
from __future__ import annotations

from ..formula import formula as lines


def formula(node) -> list[str]:
    """Lines explaining the output size; [] when the layer has no such rule or no shapes."""
    if not node.outputs or node.outputs[0].meta.get("shape") is None or node.meta.get("unknown") \
            or node.meta.get("invalid"):
        return []
    return [line.text() for line in lines(node)]
