"""netdef.reference is split by the same families as netdef.layers, and reads a fork layer's
parameter defaults from the one place they are declared: the layer class (`fork_defaults`)."""
import numpy as np

import netdef
from netdef import layers, reference
from netdef.parse import parse_text
from netdef.source import Source


def test_each_op_lives_in_the_family_module_of_its_layer_class():
    for t, fn in reference._OPS.items():
        impl = layers.get(t)
        assert impl is not None, f"reference op {t} has no layer class"
        family = type(impl).__module__.rsplit(".", 1)[1]
        assert fn.__module__ == f"netdef.reference.{family}", (t, fn.__module__, family)


UPSAMPLE = """name: "u"
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 1 dim: 2 dim: 2 } } }
layer { name: "up" type: "Upsample" bottom: "data" top: "up" upsample_param { } }
"""


def _shape_and_value(text, x):
    parsed = parse_text(Source(text, "u.prototxt"), "net")
    g = netdef.compile(parsed)
    assert not g.diagnostics.has_errors
    out = reference.forward(parsed.message, {}, {"data": x}, loc=parsed.loc)["up"]
    return next(v.meta["shape"] for v in g.values if v.name == "up"), out


def test_fork_defaults_come_from_the_layer_class(monkeypatch):
    x = np.arange(4, dtype=np.float32).reshape(1, 1, 2, 2)
    # SegNet's UpsampleParameter: scale [default 2]. Nearest neighbour with one bottom.
    shape, out = _shape_and_value(UPSAMPLE, x)
    assert shape == (1, 1, 4, 4) and out.shape == (1, 1, 4, 4)
    np.testing.assert_array_equal(out[0, 0], [[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 3, 3], [2, 2, 3, 3]])
    # Both the shape rule (ForkParams) and the reference read the class's declaration: change it
    # there and both follow.
    cls = type(layers.get("Upsample"))
    monkeypatch.setattr(cls, "fork_defaults", {**cls.fork_defaults, "scale": 3})
    shape, out = _shape_and_value(UPSAMPLE, x)
    assert shape == (1, 1, 6, 6) and out.shape == (1, 1, 6, 6)
    assert out[0, 0, 5, 5] == 3 and out[0, 0, 2, 3] == 1
