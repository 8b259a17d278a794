"""Layer types and fields that exist only in forks of Caffe.

Real-world definitions are full of them (SSD, PSPNet, SegNet, ENet, Faster R-CNN, ...). They are
not errors in the file; they are things BVLC Caffe, and so netdef's schema, does not define.
Knowing where each comes from lets a diagnostic say so precisely instead of "unknown field".
"""
from __future__ import annotations

SSD = "the SSD fork of Caffe (weiliu89/caffe)"
PSPNET = "the PSPNet/DeepLab forks of Caffe (hszhao/PSPNet, DeepLab)"
SEGNET = "the SegNet fork of Caffe (alexgkendall/caffe-segnet)"
FRCNN = "the Fast/Faster R-CNN fork of Caffe (rbgirshick/caffe-fast-rcnn)"
CEIL = "Caffe forks that let pooling round down (SSD's, and the DenseNet/ResNeXt ports)"
YOLO = "YOLO ports of Caffe"
RFCN = "the R-FCN fork of Caffe (daijifeng001/caffe-rfcn)"
FRCNN_CPP = "Caffe forks with a C++ port of Faster R-CNN's proposal layer"
MOBILE = "the MobileNet/ShuffleNet Caffe forks"

# (message, field) -> fork. A message of None means: a field of LayerParameter (layer params).
_FIELDS: dict[tuple[str, str], str] = {
    ("LayerParameter", "permute_param"): SSD,
    ("LayerParameter", "norm_param"): SSD,
    ("LayerParameter", "prior_box_param"): SSD,
    ("LayerParameter", "detection_output_param"): SSD,
    ("LayerParameter", "detection_evaluate_param"): SSD,
    ("LayerParameter", "multibox_loss_param"): SSD,
    ("LayerParameter", "annotated_data_param"): SSD,
    ("LayerParameter", "video_data_param"): SSD,
    ("LayerParameter", "smooth_l1_loss_param"): SSD,
    ("TransformationParameter", "resize_param"): SSD,
    ("TransformationParameter", "distort_param"): SSD,
    ("TransformationParameter", "expand_param"): SSD,
    ("TransformationParameter", "noise_param"): SSD,
    ("TransformationParameter", "emit_constraint"): SSD,
    ("PoolingParameter", "ceil_mode"): CEIL,
    ("PoolingParameter", "round_mode"): CEIL,
    ("LayerParameter", "interp_param"): PSPNET,
    ("LayerParameter", "upsample_param"): SEGNET,
    ("LayerParameter", "bn_param"): SEGNET,
    ("LayerParameter", "dense_image_data_param"): SEGNET,
    ("LayerParameter", "roi_pooling_param"): FRCNN,
    ("LayerParameter", "reorg_param"): YOLO,
    ("LayerParameter", "region_param"): YOLO,
    ("LayerParameter", "yolo_param"): YOLO,
    ("LayerParameter", "yolo_detection_output_param"): YOLO,
    ("LayerParameter", "yolov3_detection_output_param"): YOLO,
    ("LayerParameter", "psroi_pooling_param"): RFCN,
    ("LayerParameter", "proposal_param"): FRCNN_CPP,
    ("LayerParameter", "shuffle_channel_param"): MOBILE,
    ("LayerParameter", "relu6_param"): MOBILE,
    ("LossParameter", "weight_by_label_freqs"): SEGNET,
    ("LossParameter", "class_weighting"): SEGNET,
    ("DropoutParameter", "sample_weights_test"): SEGNET,
    ("DropoutParameter", "scale_train"): FRCNN,
    ("SolverParameter", "eval_type"): SSD,
    ("SolverParameter", "ap_version"): SSD,
    ("SolverParameter", "show_per_class_result"): SSD,
    ("V1LayerParameter", "upsample_param"): SEGNET,
    ("V1LayerParameter", "bn_param"): SEGNET,
}

_LAYER_TYPES: dict[str, str] = {
    "Permute": SSD, "Normalize": SSD, "PriorBox": SSD, "DetectionOutput": SSD,
    "DetectionEvaluate": SSD, "MultiBoxLoss": SSD, "AnnotatedData": SSD, "VideoData": SSD,
    "SmoothL1Loss": FRCNN, "ROIPooling": FRCNN,
    "Interp": PSPNET, "Upsample": SEGNET, "BN": SEGNET, "DenseImageData": SEGNET,
    "DenseCRF": "CRF-as-RNN forks of Caffe", "ReLU6": MOBILE, "ShuffleChannel": MOBILE,
    "DepthwiseConvolution": MOBILE, "ConvolutionDepthwise": MOBILE,
    "Reorg": YOLO, "Region": YOLO, "Yolo": YOLO, "Upsample2": YOLO,
    "YoloDetectionOutput": YOLO, "Yolov3DetectionOutput": YOLO, "PSROIPooling": RFCN, "Proposal": FRCNN_CPP,
}


def fork_of_field(message: str, field: str) -> str | None:
    return _FIELDS.get((message, field))


def fork_of_layer_type(layer_type: str) -> str | None:
    return _LAYER_TYPES.get(layer_type)
