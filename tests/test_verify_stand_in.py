"""verify without --weights: blobs whose filler would make them all 0 get random stand-ins.

A deploy file rarely gives fillers and Caffe's default filler is constant 0, so a comparison of
such a net would compare zeros everywhere (max error exactly 0, whatever the lowering does)."""
import json

import numpy as np
import onnx
from onnx import numpy_helper

from netdef.cli import main

NET = '''name: "n"
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 3 dim: 8 dim: 8 } } }
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv" convolution_param { num_output: 4 kernel_size: 3 } }
layer { name: "relu" type: "ReLU" bottom: "conv" top: "conv" }
layer { name: "ip" type: "InnerProduct" bottom: "conv" top: "ip"
        inner_product_param { num_output: 5 bias_filler { type: "constant" value: 0 } } }
layer { name: "bn" type: "BatchNorm" bottom: "ip" top: "ip" }
'''


def _verify_json(capsys, path, *extra):
    code = main(["verify", str(path), "--format", "json", "--no-fold", *extra])
    out, _ = capsys.readouterr()
    return code, json.loads(out)


def test_a_net_without_fillers_is_compared_on_real_values(tmp_path, capsys):
    path = tmp_path / "n.prototxt"
    path.write_text(NET)
    code, doc = _verify_json(capsys, path)
    assert code == 0 and doc["ok"], doc
    # float32 against float64 on non-zero weights differs in the last bits; on the zeros Caffe's
    # default filler gives, every blob after the data would be 0 on both sides and the error 0.
    assert 0 < doc["max_error"] < 1e-5, doc["max_error"]


def test_the_seed_changes_the_stand_ins(tmp_path, capsys):
    path = tmp_path / "n.prototxt"
    path.write_text(NET)
    errors = {_verify_json(capsys, path, "--seed", str(s))[1]["max_error"] for s in (0, 1)}
    assert len(errors) == 2


def test_export_keeps_caffe_zeros(tmp_path, capsys):
    path = tmp_path / "n.prototxt"
    path.write_text(NET)
    out = tmp_path / "n.onnx"
    assert main(["export", str(path), "-o", str(out), "--no-fold"]) == 0, capsys.readouterr().err
    inits = {i.name: numpy_helper.to_array(i) for i in onnx.load(str(out)).graph.initializer}
    weights = [a for n, a in inits.items() if n.startswith(("conv", "ip"))]
    assert weights and all(not np.any(a) for a in weights), sorted(inits)
