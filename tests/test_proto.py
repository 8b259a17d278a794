"""netdef/proto: the generated code is current and the schema is BVLC Caffe's.

The schema check leans on real data: weights Caffe itself saved (conformance/)
must round-trip byte for byte, and every zoo prototxt written for BVLC Caffe
must parse. Zoo files that use fork-only fields are listed explicitly below with
every unknown name they contain, so a field wrongly missing from (or wrongly
added to) the schema shows up as a difference from that list.
"""
import math
import re

import pytest
from google.protobuf import text_format

from conftest import CONFORMANCE, REPO, ZOO
from netdef.proto import PROTO_DIR, pb, regenerate

# --------------------------------------------------------------------------
# (a) the committed generated code matches netdef.proto


def test_proto_dir_is_in_the_repo():
    assert PROTO_DIR == REPO / "netdef" / "proto"


def test_regenerated_code_is_byte_identical(tmp_path):
    pytest.importorskip("grpc_tools.protoc", reason="grpcio-tools is not installed; cannot regenerate netdef_pb2")
    generated = regenerate(tmp_path)
    assert generated == tmp_path / "netdef_pb2.py"
    for name in ("netdef_pb2.py", "netdef_pb2.pyi"):
        fresh = (tmp_path / name).read_bytes()
        committed = (PROTO_DIR / name).read_bytes()
        version = re.search(rb"Protobuf Python Version: (\S+)", fresh)
        assert fresh == committed, (
            f"netdef/proto/{name} is stale or was made by another protoc "
            f"(this grpc_tools generates Protobuf Python Version {version and version.group(1).decode()}); "
            "regenerate it with the command in netdef/proto/__init__.py and commit it"
        )


# --------------------------------------------------------------------------
# (b) weights saved by real Caffe parse and re-serialise to the same bytes

CAFFEMODELS = sorted(CONFORMANCE.glob("layers/*/weights.caffemodel")) + sorted(
    CONFORMANCE.glob("nets/*/weights.caffemodel")
)


def test_conformance_weights_exist():
    assert len(CAFFEMODELS) >= 20, f"expected the conformance weights under {CONFORMANCE}"


@pytest.mark.parametrize("path", CAFFEMODELS, ids=lambda p: f"{p.parent.parent.name}/{p.parent.name}")
def test_caffemodel_round_trips(path):
    data = path.read_bytes()
    net = pb.NetParameter.FromString(data)
    assert net.SerializeToString() == data
    # Every field Caffe wrote is one the schema knows: nothing was kept as unknown.
    _assert_no_unknown_fields(net)
    assert not net.layers, "Caffe saves current-format layers, not V1"
    blobs = [(layer, blob) for layer in net.layer for blob in layer.blobs]
    assert blobs, "weights file without any parameter blob"
    for layer, blob in blobs:
        # A scalar blob (e.g. channel-shared PReLU) is saved with no shape at
        # all: its count is the empty product, 1.
        assert not blob.HasField("num"), "Caffe 1.0 writes `shape`, not the legacy 4-D fields"
        count = math.prod(blob.shape.dim)
        assert count == len(blob.data) > 0, (layer.name, list(blob.shape.dim), len(blob.data))
        assert all(d > 0 for d in blob.shape.dim), (layer.name, list(blob.shape.dim))


def _assert_no_unknown_fields(message):
    """Walk a parsed message and fail on any field the schema did not recognise."""
    from google.protobuf.unknown_fields import UnknownFieldSet

    assert len(UnknownFieldSet(message)) == 0, type(message).__name__
    for field, value in message.ListFields():
        if field.message_type is None:
            continue
        for item in value if field.is_repeated else [value]:
            _assert_no_unknown_fields(item)


# --------------------------------------------------------------------------
# (c) facts checked against BVLC caffe.proto by hand


def _field(message, name):
    return message.DESCRIPTOR.fields_by_name[name]


def _float32(x):
    import struct

    return struct.unpack("<f", struct.pack("<f", x))[0]


def test_package_is_netdef():
    assert pb.DESCRIPTOR.package == "netdef"
    assert pb.NetParameter.DESCRIPTOR.full_name == "netdef.NetParameter"


@pytest.mark.parametrize(
    "message, field, number",
    [
        (pb.LayerParameter, "convolution_param", 106),
        (pb.LayerParameter, "transform_param", 100),
        (pb.LayerParameter, "loss_param", 101),
        (pb.LayerParameter, "batch_norm_param", 139),
        (pb.LayerParameter, "input_param", 143),
        (pb.LayerParameter, "crop_param", 144),
        (pb.LayerParameter, "recurrent_param", 146),
        (pb.LayerParameter, "swish_param", 147),
        (pb.LayerParameter, "clip_param", 148),
        (pb.LayerParameter, "phase", 10),
        (pb.LayerParameter, "propagate_down", 11),
        (pb.NetParameter, "layer", 100),
        (pb.NetParameter, "layers", 2),
        (pb.NetParameter, "input_dim", 4),
        (pb.NetParameter, "input_shape", 8),
        (pb.SolverParameter, "lr_policy", 8),
        (pb.SolverParameter, "net", 24),
        (pb.SolverParameter, "type", 40),
        (pb.SolverParameter, "solver_type", 30),
        (pb.SolverParameter, "layer_wise_reduce", 41),  # SSD forks use 41 for eval_type
        (pb.SolverParameter, "weights", 42),  # SSD forks use 42 for ap_version
        (pb.PoolingParameter, "round_mode", 13),  # forks use 13 for bool ceil_mode
        (pb.InfogainLossParameter, "axis", 2),
        (pb.ConvolutionParameter, "dilation", 18),
        (pb.V1LayerParameter, "layer", 1),
        (pb.V1LayerParameter, "convolution_param", 10),
        (pb.V1LayerParameter, "blobs_lr", 7),
        (pb.V1LayerParameter, "param", 1001),
        (pb.V0LayerParameter, "num_output", 3),
        (pb.V0LayerParameter, "kernelsize", 8),
        (pb.V0LayerParameter, "k", 22),
        (pb.V0LayerParameter, "hdf5_output_param", 1001),
        (pb.BlobProto, "shape", 7),
        (pb.BlobProto, "double_data", 8),
    ],
)
def test_field_numbers(message, field, number):
    assert _field(message, field).number == number


def test_defaults():
    assert pb.PoolingParameter().pool == pb.PoolingParameter.MAX
    assert pb.PoolingParameter().round_mode == pb.PoolingParameter.CEIL
    assert pb.PoolingParameter().stride == 1
    assert pb.LRNParameter().k == 1.0
    assert pb.LRNParameter().local_size == 5
    assert pb.LRNParameter().beta == 0.75
    assert pb.BatchNormParameter().eps == _float32(1e-5)
    assert pb.BatchNormParameter().moving_average_fraction == _float32(0.999)
    assert not _field(pb.BatchNormParameter, "use_global_stats").has_default_value
    assert pb.ConvolutionParameter().bias_term is True
    assert pb.ConvolutionParameter().group == 1
    assert pb.ConvolutionParameter().axis == 1
    # BVLC gives stride_h/stride_w no default (the brocolli fork says 1).
    assert not _field(pb.ConvolutionParameter, "stride_h").has_default_value
    assert pb.InnerProductParameter().bias_term is True
    assert pb.ScaleParameter().bias_term is False
    assert pb.CropParameter().axis == 2
    assert pb.ImageDataParameter().batch_size == 1
    assert pb.DataParameter().prefetch == 4
    assert pb.MVNParameter().eps == _float32(1e-9)
    assert pb.EltwiseParameter().operation == pb.EltwiseParameter.SUM
    assert pb.ReductionParameter().operation == pb.ReductionParameter.SUM == 1
    assert pb.HingeLossParameter().norm == pb.HingeLossParameter.L1 == 1
    assert pb.LossParameter().normalization == pb.LossParameter.VALID
    assert pb.ReshapeParameter().num_axes == -1
    assert pb.FlattenParameter().end_axis == -1
    assert pb.FillerParameter().type == "constant"
    assert pb.FillerParameter().sparse == -1
    assert pb.NetState().phase == pb.TEST
    assert pb.ParamSpec().lr_mult == 1.0
    assert pb.SolverParameter().type == "SGD"
    assert pb.SolverParameter().solver_mode == pb.SolverParameter.GPU
    assert pb.SolverParameter().snapshot_format == pb.SolverParameter.BINARYPROTO
    assert pb.SolverParameter().random_seed == -1
    assert pb.SolverParameter().clip_gradients == -1
    assert pb.SolverParameter().delta == _float32(1e-8)
    assert pb.SolverParameter().momentum2 == _float32(0.999)
    assert pb.SolverParameter().rms_decay == _float32(0.99)
    assert pb.SolverParameter().regularization_type == "L2"
    assert pb.SolverParameter().test_initialization is True
    assert pb.WindowDataParameter().crop_mode == "warp"
    assert pb.V0LayerParameter().biasterm is True
    assert pb.V0LayerParameter().det_crop_mode == "warp"
    assert pb.V0LayerParameter().concat_dim == 1


def test_enum_values():
    assert pb.V1LayerParameter.CONVOLUTION == 4
    assert pb.V1LayerParameter.NONE == 0
    assert pb.V1LayerParameter.DECONVOLUTION == 39
    assert pb.V1LayerParameter.ABSVAL == 35
    assert pb.V1LayerParameter.SOFTMAX_LOSS == 21
    assert len(pb.V1LayerParameter.LayerType.keys()) == 40
    assert pb.TRAIN == 0 and pb.TEST == 1
    assert pb.SolverParameter.ADAM == 5
    assert pb.LossParameter.NONE == 3
    assert pb.PoolingParameter.FLOOR == 1
    assert pb.FillerParameter.AVERAGE == 2


def test_fork_only_names_are_absent():
    layer_fields = pb.LayerParameter.DESCRIPTOR.fields_by_name
    for name in ("permute_param", "prior_box_param", "detection_output_param", "norm_param", "interp_param",
                 "upsample_param", "bn_param", "roi_pooling_param", "annotated_data_param"):
        assert name not in layer_fields
    assert "ceil_mode" not in pb.PoolingParameter.DESCRIPTOR.fields_by_name
    assert "eval_type" not in pb.SolverParameter.DESCRIPTOR.fields_by_name
    assert "LabelMap" not in pb.DESCRIPTOR.message_types_by_name


def test_message_inventory():
    names = list(pb.DESCRIPTOR.message_types_by_name)
    assert names[:6] == ["BlobShape", "BlobProto", "BlobProtoVector", "Datum", "FillerParameter", "NetParameter"]
    assert names[-3:] == ["V1LayerParameter", "V0LayerParameter", "PReLUParameter"]
    assert len(names) == 63
    assert list(pb.DESCRIPTOR.enum_types_by_name) == ["Phase"]
    # Every *_param of LayerParameter is a message defined here.
    for field in pb.LayerParameter.DESCRIPTOR.fields:
        if field.name.endswith("_param"):
            assert field.message_type.name in pb.DESCRIPTOR.message_types_by_name


def test_packed_blob_encoding():
    # Packed repeated fields: one length-delimited record, not one tag per value.
    assert pb.BlobShape(dim=[1, 2]).SerializeToString() == b"\x0a\x02\x01\x02"
    assert pb.BlobProto(data=[1.0, 2.0]).SerializeToString() == b"\x2a\x08\x00\x00\x80\x3f\x00\x00\x00\x40"
    assert pb.BlobProto(double_diff=[0.0]).SerializeToString()[:2] == b"\x4a\x08"
    # Datum.float_data and LayerParameter.loss_weight are not packed in Caffe.
    assert pb.Datum(float_data=[1.0, 2.0]).SerializeToString() == b"\x35\x00\x00\x80\x3f\x35\x00\x00\x00\x40"
    assert pb.LayerParameter(loss_weight=[1.0]).SerializeToString() == b"\x2d\x00\x00\x80\x3f"


def test_clip_bounds_are_required():
    assert not pb.ClipParameter().IsInitialized()
    assert pb.ClipParameter(min=0, max=6).IsInitialized()


def test_text_round_trip():
    text = """
    name: "t"
    layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 3 dim: 8 dim: 8 } } }
    layer { name: "pool" type: "Pooling" bottom: "data" top: "pool"
            pooling_param { pool: AVE kernel_size: 3 stride: 2 round_mode: FLOOR } }
    layer { name: "clip" type: "Clip" bottom: "pool" top: "pool" clip_param { min: 0 max: 6 } }
    layers { name: "old" type: CONVOLUTION blobs_lr: 1 convolution_param { num_output: 4 kernel_size: 3 } }
    """
    net = text_format.Parse(text, pb.NetParameter())
    assert net.layer[1].pooling_param.round_mode == pb.PoolingParameter.FLOOR
    assert net.layers[0].type == pb.V1LayerParameter.CONVOLUTION
    assert net.layers[0].convolution_param.kernel_size == [3]
    again = text_format.Parse(text_format.MessageToString(net), pb.NetParameter())
    assert again == net
    assert pb.NetParameter.FromString(net.SerializeToString()) == net


# --------------------------------------------------------------------------
# (d) the zoo: everything written for BVLC Caffe parses

ZOO_SUFFIXES = {".prototxt", ".pt", ".proto", ".txt"}
ZOO_FILES = sorted(p for p in ZOO.glob("*/*") if p.suffix in ZOO_SUFFIXES)

# Files that are not BVLC Caffe text: file -> (the message it was written for,
# the unknown name in the first parse error, every unknown field as
# "Message.field"). Each name is a fork addition (SSD, SegNet/ENet BN and
# Upsample, PSPNet Interp, Fast/Faster R-CNN ROIPooling and SmoothL1Loss,
# DenseNet/ResNeXt ports' ceil_mode) or, for the label map, not a net at all.
_SSD_DEPLOY = {"LayerParameter.permute_param", "LayerParameter.prior_box_param",
               "LayerParameter.detection_output_param"}
_SEGNET = {"LayerParameter.bn_param", "LayerParameter.dense_image_data_param", "LayerParameter.upsample_param"}
EXPECTED_FAILURES = {
    "bvlc_v1_format/lenet_stepearly_solver.prototxt": ("solver", "stepearly", {"SolverParameter.stepearly"}),
    "densenet121/deploy.prototxt": ("net", "ceil_mode", {"PoolingParameter.ceil_mode"}),
    "densenet161/deploy.prototxt": ("net", "ceil_mode", {"PoolingParameter.ceil_mode"}),
    "densenet169/deploy.prototxt": ("net", "ceil_mode", {"PoolingParameter.ceil_mode"}),
    "densenet201/deploy.prototxt": ("net", "ceil_mode", {"PoolingParameter.ceil_mode"}),
    "resnext50_32x4d/deploy.prototxt": ("net", "ceil_mode", {"PoolingParameter.ceil_mode"}),
    "enet/enet_deploy.prototxt": ("net", "bn_param", {"LayerParameter.bn_param", "LayerParameter.upsample_param"}),
    "enet/enet_deploy_final.prototxt": (
        "net", "bn_param", {"LayerParameter.bn_param", "LayerParameter.upsample_param"}),
    "enet/enet_train_encoder_decoder.prototxt": (
        "net", "dense_image_data_param", _SEGNET | {"LossParameter.weight_by_label_freqs"}),
    "segnet/bayesian_segnet_inference.prototxt": (
        "net", "dense_image_data_param", _SEGNET | {"DropoutParameter.sample_weights_test"}),
    "segnet/segnet_basic_inference.prototxt": ("net", "dense_image_data_param", _SEGNET),
    "segnet/segnet_inference.prototxt": ("net", "dense_image_data_param", _SEGNET),
    "segnet/segnet_train.prototxt": (
        "net", "dense_image_data_param",
        _SEGNET | {"LossParameter.class_weighting", "LossParameter.weight_by_label_freqs"}),
    "pspnet101_voc2012/deploy.prototxt": ("net", "bn_param", {"LayerParameter.bn_param", "LayerParameter.interp_param"}),
    "pspnet50_ade20k/deploy.prototxt": ("net", "bn_param", {"LayerParameter.bn_param", "LayerParameter.interp_param"}),
    "pspnet_resnet101_v2/deploy.prototxt": ("net", "interp_param", {"LayerParameter.interp_param"}),
    "fast_rcnn_vgg16/test.prototxt": ("net", "roi_pooling_param", {"LayerParameter.roi_pooling_param"}),
    "faster_rcnn_vgg16/test.prototxt": ("net", "roi_pooling_param", {"LayerParameter.roi_pooling_param"}),
    "faster_rcnn_vgg16/train.prototxt": (
        "net", "smooth_l1_loss_param", {"LayerParameter.roi_pooling_param", "LayerParameter.smooth_l1_loss_param"}),
    "faster_rcnn_zf/test.prototxt": (
        "net", "roi_pooling_param", {"LayerParameter.roi_pooling_param", "DropoutParameter.scale_train"}),
    "mobilenet_ssd/MobileNetSSD_deploy_nobn.prototxt": ("net", "permute_param", _SSD_DEPLOY),
    "mobilenet_ssd/deploy.prototxt": ("net", "permute_param", _SSD_DEPLOY),
    "mobilenet_ssd/solver_train.prototxt": (
        "solver", "eval_type", {"SolverParameter.eval_type", "SolverParameter.ap_version"}),
    "yolov5s_caffe/deploy.prototxt": ("net", "permute_param", {"LayerParameter.permute_param"}),
    "ssd300_vgg16_voc/deploy.prototxt": ("net", "norm_param", _SSD_DEPLOY | {"LayerParameter.norm_param"}),
    "ssd300_vgg16_voc/solver.prototxt": (
        "solver", "eval_type", {"SolverParameter.eval_type", "SolverParameter.ap_version"}),
    "ssd300_vgg16_voc/test.prototxt": (
        "net", "resize_param",
        _SSD_DEPLOY | {"LayerParameter.norm_param", "LayerParameter.annotated_data_param",
                       "LayerParameter.detection_evaluate_param", "TransformationParameter.resize_param"}),
    "ssd300_vgg16_voc/train.prototxt": (
        "net", "resize_param",
        {"LayerParameter.permute_param", "LayerParameter.prior_box_param", "LayerParameter.norm_param",
         "LayerParameter.annotated_data_param", "LayerParameter.multibox_loss_param",
         "TransformationParameter.resize_param", "TransformationParameter.distort_param",
         "TransformationParameter.emit_constraint", "TransformationParameter.expand_param"}),
    # A LabelMap (SSD), not a NetParameter or SolverParameter at all.
    "ssd300_vgg16_voc/labelmap_voc.prototxt": ("net", "item", {"NetParameter.item"}),
}

MESSAGES = {"net": pb.NetParameter, "solver": pb.SolverParameter}


def _parse_as(text, kind):
    """None if text parses as that kind, else the ParseError message."""
    try:
        text_format.Parse(text, MESSAGES[kind]())
        return None
    except text_format.ParseError as error:
        return str(error)


def _unknown_fields(text, kind):
    """Every field name the schema lacks, as "Message.field", skipping over them.

    Uses text_format's parser with allow_unknown_field and records each
    outermost skip, so names nested inside an unknown block are not counted.
    """
    base = getattr(text_format, "_Parser", None)
    if base is None or not hasattr(base, "_SkipFieldContents"):
        pytest.skip("this protobuf's text_format has no _Parser._SkipFieldContents hook")

    class Recorder(base):
        def __init__(self):
            super().__init__(allow_unknown_field=True)
            self.seen, self.depth = set(), 0

        def _SkipFieldContents(self, tokenizer, field_name, immediate_message_type):
            if self.depth == 0:
                self.seen.add(f"{immediate_message_type.rsplit('.', 1)[-1]}.{field_name}")
            self.depth += 1
            try:
                return super()._SkipFieldContents(tokenizer, field_name, immediate_message_type)
            finally:
                self.depth -= 1

    recorder = Recorder()
    recorder.ParseLines(text.split("\n"), MESSAGES[kind]())
    return recorder.seen


def test_zoo_is_there():
    assert len(ZOO_FILES) >= 100, f"expected the prototxt zoo under {ZOO}"
    names = {str(p.relative_to(ZOO)) for p in ZOO_FILES}
    assert set(EXPECTED_FAILURES) <= names, "an expected failure no longer exists: update EXPECTED_FAILURES"


@pytest.mark.parametrize("path", ZOO_FILES, ids=lambda p: str(p.relative_to(ZOO)))
def test_zoo_file_parses(path):
    rel = str(path.relative_to(ZOO))
    text = path.read_text()
    errors = {kind: _parse_as(text, kind) for kind in MESSAGES}
    parsed = [kind for kind, error in errors.items() if error is None]
    if rel not in EXPECTED_FAILURES:
        assert len(parsed) == 1, f"{rel} should parse as exactly one of net/solver: {errors}"
        return
    kind, first_unknown, all_unknown = EXPECTED_FAILURES[rel]
    assert not parsed, f"{rel} is listed as failing but parses as {parsed}: remove it from EXPECTED_FAILURES"
    assert re.search(rf'has no field named "{first_unknown}"', errors[kind]), errors[kind]
    # Skipping the fork-only fields, the rest of the file is valid BVLC text:
    # no BVLC field, enum value or type error hides behind the first one.
    assert _unknown_fields(text, kind) == all_unknown


def test_zoo_counts():
    kinds = {"net": 0, "solver": 0}
    for path in ZOO_FILES:
        if str(path.relative_to(ZOO)) in EXPECTED_FAILURES:
            continue
        text = path.read_text()
        for kind in MESSAGES:
            if _parse_as(text, kind) is None:
                kinds[kind] += 1
    assert kinds["net"] > 0 and kinds["solver"] > 0
    assert kinds["net"] + kinds["solver"] + len(EXPECTED_FAILURES) == len(ZOO_FILES)


# The conformance nets and solvers were all run by real Caffe, BVLC or the
# SSD fork; every one of them that exists must be BVLC text (round_mode
# included).
CONFORMANCE_TEXT = sorted(
    p for p in list(CONFORMANCE.glob("layers/*/net.prototxt")) + list(CONFORMANCE.glob("upgrade/*/*"))
    + list(CONFORMANCE.glob("lr/*.prototxt"))
    if p.suffix in ZOO_SUFFIXES
)


@pytest.mark.parametrize("path", CONFORMANCE_TEXT, ids=lambda p: str(p.relative_to(CONFORMANCE)))
def test_conformance_text_parses(path):
    text = path.read_text()
    errors = {kind: _parse_as(text, kind) for kind in MESSAGES}
    assert None in errors.values(), errors
