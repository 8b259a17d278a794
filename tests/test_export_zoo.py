"""Every zoo net whose layers netdef can all lower exports, passes onnx's full check, and ONNX
shape inference agrees with netdef's shapes; the others fail with diagnostics, never crashes.

Weights are not materialised here (initializers are declared as typed inputs): structure and
shapes are what the checker and shape inference look at, and the zoo's large nets stay cheap.
"""
import json

import onnx
import pytest
from conftest import CONFORMANCE, ZOO

from netdef.pipeline import compile as compile_net
from netdef.diagnostics import DiagnosticError
from netdef.export import lowering as lower
from netdef.export.onnx import export, is_training_only, param_specs

NETS = sorted(p for p in ZOO.glob("*/*.prototxt") if "solver" not in p.name and "labelmap" not in p.name)
ZOO_SHAPES = json.loads((CONFORMANCE / "zoo_shapes.json").read_text())


def _all_lowered(graph) -> bool:
    if graph.diagnostics.has_errors:
        return False
    for v in graph.inputs:
        if v.meta.get("shape") is None and any(not is_training_only(c) for c in v.consumers):
            return False
    for n in graph.nodes:
        if is_training_only(n) or n.type == "Input" or getattr(n.impl, "source", False):
            continue
        if n.type not in lower.lowered_types() and getattr(n.impl, "to_onnx", None) is None:
            return False
    return True


@pytest.mark.parametrize("path", NETS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_zoo_net(path):
    graph = compile_net(str(path))
    expect_ok = _all_lowered(graph)
    try:
        ex = export(str(path))
    except DiagnosticError as e:
        assert not expect_ok, "\n".join(d.header() for d in e.diagnostics if d.is_error)
        assert any(d.is_error for d in e.diagnostics)
        return
    assert expect_ok
    model = ex.model(with_weights=False)
    onnx.checker.check_model(model, full_check=True)
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    # A symbolic axis (the row axis of DetectionOutput's detections) matches any length.
    shapes = {vi.name: tuple(d.dim_value if d.HasField("dim_value") else None for d in vi.type.tensor_type.shape.dim)
              for vi in list(inferred.graph.value_info) + list(inferred.graph.output)}
    names = ex.value_map()
    compared = 0
    for v in ex.exporter.graph.values:
        nm = names.get(id(v))
        if nm in shapes:
            expected = tuple(v.meta["shape"])
            assert len(shapes[nm]) == len(expected), v.label
            assert all(a is None or a == b for a, b in zip(shapes[nm], expected)), v.label
            compared += 1
    assert compared >= len(model.graph.output)


def test_enough_of_the_zoo_exports():
    # Guards against the lowering set silently shrinking: the deploy nets of the classic
    # families must all be exportable.
    for rel in ["bvlc_alexnet/deploy.prototxt", "bvlc_googlenet/deploy.prototxt", "resnet50/deploy.prototxt",
                "resnet152/deploy.prototxt", "densenet121/deploy.prototxt", "inception_v3/deploy.prototxt",
                "inception_v4/deploy.prototxt", "inception_resnet_v2/deploy.prototxt", "mobilenet_v2/deploy.prototxt",
                "squeezenet_v1.0/deploy.prototxt", "vgg16/deploy.prototxt", "xception/deploy.prototxt",
                "resnext50_32x4d/deploy.prototxt", "fcn8s_voc/deploy.prototxt", "unet_nerve/deploy.prototxt",
                "bvlc_v0_format/lenet.prototxt", "bvlc_v1_format/googlenet_deploy.prototxt",
                "ssd300_vgg16_voc/deploy.prototxt", "mobilenet_ssd/deploy.prototxt"]:
        assert _all_lowered(compile_net(str(ZOO / rel))), rel


@pytest.mark.parametrize("rel", sorted(ZOO_SHAPES), ids=str)
def test_weight_shapes_match_caffe(rel):
    # What the .caffemodel of a zoo net must hold, per layer, as Caffe itself reported it.
    graph = compile_net(str(ZOO / rel))
    if graph.diagnostics.has_errors:
        pytest.skip("the analysis rejects this net")
    caffe = ZOO_SHAPES[rel]["params"]
    caffe = json.loads(caffe) if isinstance(caffe, str) else caffe
    ours = {s.name: [list(x) for x in s.shapes] for s in param_specs(graph)}
    assert ours == {k: [list(x) for x in v] for k, v in caffe.items() if v}
