"""The table of every layer type netdef knows (docs/layers.md), generated from the registry.

    python3 -m netdef.layer_table            # rewrite docs/layers.md
    python3 -m netdef.layer_table --check    # exit 1 if docs/layers.md is not current

Each row comes from the layer class: `origin` and `checked_against` (netdef/layers/base.py),
which methods it defines (a shape rule, a receptive-field rule, a cost rule, an ONNX lowering,
whose docstring's first line names the ONNX operators), and whether netdef.reference computes it.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

from . import forks
from .layers import base

HEADER = """# Layer types

Every layer type netdef knows, generated from the layer registry by `python3 -m netdef.layer_table`
(a test checks that this file is current). Columns:

- **origin**: BVLC Caffe, or the fork that defines the type;
- **shape**: how the tops' shapes are found (`rule`: the type's own shape rule, as its
  `Reshape` computes it; `as bottom`: each top has the shape of bottom 0; `input`: a net input,
  shaped by the definition or, for data layers that read it from their data, by `--input`;
  `not inferred`: the size depends on the data);
- **RF**: `rule` when the type has its own receptive-field rule (which may say that the tops
  have no spatial meaning), `unchanged` when its tops see what bottom 0 sees, `input` for inputs;
- **cost**: `rule` (MACs/FLOPs counted from the shapes), `1/elt` (one FLOP per output element), `0`;
- **ONNX**: the lowering (the operators it emits), `dropped` for training-only layers, `input`
  for net inputs, `-` where ONNX cannot express it or netdef has no lowering;
- **reference**: whether `netdef verify`'s NumPy reference computes it (`yes`), skips it as
  training-only (`skipped`), takes it as an input (`input`), or not (`-`);
- **checked against**: the source the rules were written from (repository and file).

"""

# BVLC types whose source file is not the type's snake_case name + _layer.cpp.
_BVLC_FILES = {
    "Convolution": "conv_layer.cpp", "Deconvolution": "deconv_layer.cpp", "SoftmaxWithLoss": "softmax_loss_layer.cpp",
    "ReLU": "relu_layer.cpp", "PReLU": "prelu_layer.cpp", "TanH": "tanh_layer.cpp", "LRN": "lrn_layer.cpp",
    "BNLL": "bnll_layer.cpp", "MVN": "mvn_layer.cpp", "SPP": "spp_layer.cpp", "ELU": "elu_layer.cpp",
    "HDF5Data": "hdf5_data_layer.cpp", "HDF5Output": "hdf5_output_layer.cpp", "LSTM": "lstm_layer.cpp",
    "RNN": "rnn_layer.cpp", "ArgMax": "argmax_layer.cpp", "AbsVal": "absval_layer.cpp",
    "Im2col": "im2col_layer.cpp",
}


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


def _overrides(impl, method: str) -> bool:
    return getattr(type(impl), method, None) is not getattr(base.Layer, method)


def _origin(t: str, impl) -> str:
    if impl.origin != base.Layer.origin:
        return impl.origin
    return forks.fork_of_layer_type(t) or impl.origin


def _checked(t: str, impl) -> str:
    if impl.checked_against != base.Layer.checked_against:
        return impl.checked_against
    if _origin(t, impl) != base.Layer.origin:
        return "not recorded"
    if t == "Python":
        return "BVLC/caffe include/caffe/layers/python_layer.hpp"
    return f"BVLC/caffe src/caffe/layers/{_BVLC_FILES.get(t, _snake(t) + '_layer.cpp')}"


def _shape(impl) -> str:
    if impl.source:
        return "input"
    if impl.opaque:
        return "not inferred"
    if _overrides(impl, "infer_shapes"):
        return "rule"
    return "as bottom" if impl.elementwise else "-"


def _rf(impl) -> str:
    if impl.source:
        return "input"
    if _overrides(impl, "receptive_field"):
        return "rule"
    return "unchanged"


def _cost(impl) -> str:
    if _overrides(impl, "cost"):
        return "rule"
    return "1/elt" if impl.elementwise else "0"


def _onnx(t: str, impl) -> str:
    from .export.onnx import TRAINING_ONLY
    if impl.source:
        return "input"
    if t in TRAINING_ONLY or impl.loss or impl.training_only:
        return "dropped"
    fn = getattr(impl, "to_onnx", None)
    if fn is None:
        return "-"
    para = (fn.__doc__ or "").strip().split("\n\n")[0]
    text = " ".join(line.strip() for line in para.splitlines())
    return text.rstrip(".") if text else "yes"


def _reference(t: str) -> str:
    from . import reference
    if t in reference.TRAINING_ONLY:
        return "skipped"
    if t == "Input" or t in reference.DATA_LAYERS:
        return "input"
    return "yes" if t in reference.supported_types() else "-"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def rows() -> list[list[str]]:
    out = []
    for t in base.known_types():
        impl = base.get(t)
        out.append([f"`{t}`", _origin(t, impl), _shape(impl), _rf(impl), _cost(impl), _onnx(t, impl),
                    _reference(t), _checked(t, impl)])
    # A fork's variant of a type (base.register_variant): its own row, named by when it applies.
    for t, impl in base.variants():
        out.append([f"`{t}` {impl.variant}", _origin(t, impl), _shape(impl), _rf(impl), _cost(impl), _onnx(t, impl),
                    _reference(t), _checked(t, impl)])
    return out


def render() -> str:
    head = ["type", "origin", "shape", "RF", "cost", "ONNX", "reference", "checked against"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows():
        lines.append("| " + " | ".join(_cell(c) for c in r) + " |")
    n = len(base.known_types())
    forked = sum(1 for t in base.known_types() if _origin(t, base.get(t)) != base.Layer.origin)
    return (HEADER + f"{n} types: {n - forked} from BVLC Caffe, {forked} from forks; {len(base.variants())} fork "
            f"variants of a type.\n\n" + "\n".join(lines) + "\n")


def default_path() -> Path:
    return Path(__file__).resolve().parent.parent / "docs" / "layers.md"


def main(argv=None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    check = "--check" in args
    paths = [a for a in args if a != "--check"]
    path = Path(paths[0]) if paths else default_path()
    text = render()
    if check:
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current != text:
            print(f"{path} is not current: run python3 -m netdef.layer_table", file=sys.stderr)
            return 1
        return 0
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    print(f"wrote {path} ({len(base.known_types())} layer types)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
