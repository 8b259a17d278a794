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
C3D = "the C3D fork of Caffe (facebook/C3D)"
DEEPLAB = "the DeepLab fork of Caffe (deeplab-public, also in hszhao/PSPNet)"
HED = "the HED fork of Caffe (s9xie/hed)"
SPHEREFACE = "the SphereFace/A-Softmax fork of Caffe (wy1iu/sphereface)"
CENTERLOSS = "the center-loss fork of Caffe (ydwen/caffe-face)"
MOBILE = "the MobileNet/ShuffleNet Caffe forks"
OCR = "the caffe_ocr fork of Caffe (senlinuc/caffe_ocr)"
LSTM_FORKS = "caffe-lstm (junhyukoh/caffe-lstm) and caffe_ocr (senlinuc/caffe_ocr), which copies its layer"
VIDEO_CAFFE = "the video-caffe fork of Caffe (chuckcho/video-caffe)"
CRFASRNN = "the CRF-as-RNN fork of Caffe (torrvision/caffe, the crfasrnn submodule)"
FCN_CROP = ("the FCN-era Caffe forks (CRF-as-RNN's torrvision/caffe, whose crop_layer.cpp netdef follows, "
            "and the U-Net ports)")
SYNOPSYS = "Synopsys' Caffe fork (foss-for-synopsys-dwc-arc-processors/synopsys-caffe) and its model converters"
FACE = "the face-recognition forks of Caffe (happynear/caffe-windows, and xialuxi's AM-Softmax/ArcFace build)"
ARCFACE = "xialuxi's ArcFace layers for Caffe (xialuxi/arcface-caffe)"
LSOFTMAX = "the L-Softmax fork of Caffe (wy1iu/LargeMargin_Softmax_Loss)"
PSANET = "the PSANet layers for the PSPNet fork of Caffe (hszhao/PSANet)"
YOLOV2 = "the YOLOv2 port of Caffe (gklz1982/caffe-yolov2)"
TSN = "the TSN fork of Caffe (yjxiong/caffe, used by yjxiong/temporal-segment-networks)"

# (message, field) -> fork. A message of None means: a field of LayerParameter (layer params).
_FIELDS: dict[tuple[str, str], str] = {
    ("LayerParameter", "permute_param"): SSD,
    ("LayerParameter", "norm_param"): SSD,
    ("LayerParameter", "prior_box_param"): SSD,
    ("LayerParameter", "detection_output_param"): SSD,
    ("LayerParameter", "detection_evaluate_param"): SSD,
    ("LayerParameter", "multibox_loss_param"): SSD,
    ("LayerParameter", "annotated_data_param"): SSD,
    # SSD's webcam/video VideoData, yjxiong/caffe's (TSN) frame-list VideoData (video_data_param = 140)
    # and C3D-v1.1's (6660) all use this name.
    ("LayerParameter", "video_data_param"): "the SSD fork of Caffe (weiliu89/caffe), TSN's (yjxiong/caffe) or C3D-v1.1 (facebook/C3D)",
    ("LayerParameter", "smooth_l1_loss_param"): SSD,
    ("TransformationParameter", "resize_param"): SSD,
    ("TransformationParameter", "distort_param"): SSD,
    ("TransformationParameter", "expand_param"): SSD,
    ("TransformationParameter", "noise_param"): SSD,
    ("TransformationParameter", "emit_constraint"): SSD,
    ("PoolingParameter", "ceil_mode"): CEIL,
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
    # facebook/C3D's ConvolutionParameter and PoolingParameter add the temporal axis.
    ("ConvolutionParameter", "kernel_depth"): C3D,
    ("ConvolutionParameter", "temporal_stride"): C3D,
    ("ConvolutionParameter", "temporal_pad"): C3D,
    ("ConvolutionParameter", "filter_group"): C3D,
    ("PoolingParameter", "kernel_depth"): C3D,
    ("PoolingParameter", "temporal_stride"): C3D,
    ("V1LayerParameter", "interp_param"): DEEPLAB,
    # facebook/C3D C3D-v1.0/src/caffe/proto/caffe.proto ImageDataParameter, read by its V1 VIDEO_DATA
    # (and the v2v data layers): new_length = 11 ... clip_max = 23.
    **{("ImageDataParameter", f): C3D for f in (
        "new_length", "show_data", "use_image", "sampling_rate", "use_label", "use_temporal_jitter", "mean_value",
        "num_truth_channels", "use_byte_input", "is_flow", "truth_scale", "clip_min", "clip_max")},
    # facebook/C3D C3D-v1.1/src/caffe/proto/caffe.proto LayerParameter: convolution3d_param = 6661,
    # pooling3d_param = 6662 (its Convolution3D / Pooling3D read these, not convolution_param).
    ("LayerParameter", "convolution3d_param"): C3D, ("LayerParameter", "pooling3d_param"): C3D,
    # yjxiong/caffe (TSN) src/caffe/proto/caffe.proto TransformationParameter: fix_crop = 10,
    # multi_scale = 11, scale_ratios = 12, max_distort = 13, is_flow = 14, more_fix_crop = 15,
    # original_image = 20 (its VideoData's augmentations).
    # talent518/deeplab-public-ver2 (DeepLab v2) caffe.proto TransformationParameter: scale_factors = 8,
    # crop_width = 9, crop_height = 10 (also in hszhao/PSPNet's).
    **{("TransformationParameter", f): DEEPLAB for f in ("scale_factors", "crop_width", "crop_height")},
    **{("TransformationParameter", f): TSN for f in (
        "fix_crop", "more_fix_crop", "multi_scale", "scale_ratios", "max_distort", "is_flow", "original_image")},
    # deeplab-public (v1; its code is in TheLegendAli/DeepLab-Context src/caffe/proto/caffe.proto):
    # ConvolutionParameter hole = 17, hole_h = 18, hole_w = 19 [default 1] (the a trous kernel);
    # LayerParameter (its V1 form) strict_dim = 1003, softmaxloss_param = 44, padding_param = 45,
    # seg_accuracy_param = 42, mat_write_param = 46; ImageDataParameter has_label = 13,
    # max_labels = 14, ignore_label = 15, label_type = 16 (ImageSegData's label top).
    **{("ConvolutionParameter", f): DEEPLAB for f in ("hole", "hole_h", "hole_w")},
    **{("V1LayerParameter", f): DEEPLAB for f in ("strict_dim", "softmaxloss_param", "padding_param",
                                                  "seg_accuracy_param", "mat_write_param")},
    # (LayerParameter too: `netdef upgrade` keeps a V1 layer's fork fields in the layer it writes.)
    **{("LayerParameter", f): DEEPLAB for f in ("padding_param", "seg_accuracy_param", "mat_write_param",
                                                "strict_dim", "softmaxloss_param")},
    **{("ImageDataParameter", f): DEEPLAB for f in ("has_label", "max_labels", "ignore_label", "label_type")},
    ("LayerParameter", "center_loss_param"): CENTERLOSS,
    ("LayerParameter", "margin_inner_product_param"): SPHEREFACE,
    # foss-for-synopsys-dwc-arc-processors/synopsys-caffe src/caffe/proto/caffe.proto: BatchNormParameter
    # add_eps_before_sqrt = 4 [default true]; ConvolutionParameter pad_l/r/t/b = 36..39 [0];
    # PoolingParameter pad_l/r/t/b = 16..19 [0]; ReLUParameter relu6 = 3 [false];
    # LayerParameter upsample_darknet_param = 209.
    ("BatchNormParameter", "add_eps_before_sqrt"): SYNOPSYS,
    ("ConvolutionParameter", "pad_l"): SYNOPSYS, ("ConvolutionParameter", "pad_r"): SYNOPSYS,
    ("ConvolutionParameter", "pad_t"): SYNOPSYS, ("ConvolutionParameter", "pad_b"): SYNOPSYS,
    ("PoolingParameter", "pad_l"): SYNOPSYS, ("PoolingParameter", "pad_r"): SYNOPSYS,
    ("PoolingParameter", "pad_t"): SYNOPSYS, ("PoolingParameter", "pad_b"): SYNOPSYS,
    ("ReLUParameter", "relu6"): SYNOPSYS,
    ("LayerParameter", "upsample_darknet_param"): SYNOPSYS,
    ("LayerParameter", "resize_bilinear_param"): SYNOPSYS,
    # senlinuc/caffe_ocr caffe.proto LayerParameter: denseblock_param = 147, ctc_decoder_param = 158,
    # reverse_param = 160, transpose_param = 8266710, lstm_param = 8266711 (junhyukoh/caffe-lstm: 201).
    ("LayerParameter", "denseblock_param"): OCR, ("LayerParameter", "ctc_decoder_param"): OCR,
    ("LayerParameter", "reverse_param"): OCR, ("LayerParameter", "transpose_param"): OCR,
    ("LayerParameter", "lstm_param"): LSTM_FORKS,
    # chuckcho/video-caffe src/caffe/proto/caffe.proto: ConvolutionParameter and PoolingParameter
    # pad_shape = 7777, kernel_shape = 7778, stride_shape = 7779 (BlobShape), read by NdConvolution
    # and NdPooling only. Synopsys' caffe.proto: LayerParameter resize_nearest_neighbor_param = 210.
    # torrvision/caffe (master, the crfasrnn submodule) caffe.proto: multi_stage_meanfield_param = 146.
    **{(m, f): VIDEO_CAFFE for m in ("ConvolutionParameter", "PoolingParameter")
       for f in ("pad_shape", "kernel_shape", "stride_shape")},
    ("LayerParameter", "resize_nearest_neighbor_param"): SYNOPSYS,
    ("LayerParameter", "multi_stage_meanfield_param"): CRFASRNN,
    ("V1LayerParameter", "multi_stage_meanfield_param"): CRFASRNN,
    ("LayerParameter", "largemargin_inner_product_param"): LSOFTMAX,
    # happynear/caffe-windows src/caffe/proto/caffe.proto: LayerParameter flip_param = 212,
    # normalize_param = 214 (xialuxi/arcface-caffe's caffe.proto: 170), focal_loss_param = 235
    # (xialuxi: 155); InnerProductParameter normalize = 7 [default false] (both).
    ("LayerParameter", "flip_param"): FACE, ("LayerParameter", "normalize_param"): FACE,
    ("LayerParameter", "focal_loss_param"): FACE, ("InnerProductParameter", "normalize"): FACE,
    # xialuxi/arcface-caffe caffe.proto: LayerParameter cosin_add_m_param = 179.
    ("LayerParameter", "cosin_add_m_param"): ARCFACE,
    # hszhao/PSANet src/caffe/proto/caffe.proto: pointwise_spatial_attention_param = 1001.
    ("LayerParameter", "pointwise_spatial_attention_param"): PSANET,
    # gklz1982/caffe-yolov2 src/caffe/proto/caffe.proto: LayerParameter region_loss_param = 202;
    # DataParameter side = 11 (repeated uint32: one per BoxData label top), which
    # foss-for-synopsys-dwc-arc-processors/synopsys-caffe's caffe.proto declares too, with
    # LayerParameter yolo_v2_loss_param = 198 and TransformationParameter caffe_yolo = 21 [false].
    ("LayerParameter", "region_loss_param"): YOLOV2,
    ("DataParameter", "side"): "the YOLOv2 ports of Caffe (gklz1982/caffe-yolov2, Synopsys' synopsys-caffe)",
    ("LayerParameter", "yolo_v2_loss_param"): SYNOPSYS, ("TransformationParameter", "caffe_yolo"): SYNOPSYS,
}

# V1 `layers { type: NAME }` enum values that only forks define, and the V2 type string their
# UpgradeV1LayerType gives (each fork registers the layer under that name): C3D's VIDEO_DATA,
# CONVOLUTION3D, POOLING3D (facebook/C3D C3D-v1.0/src/caffe/proto/caffe.proto); DeepLab's
# IMAGE_SEG_DATA, INTERP, MAT_WRITE, PADDING, SEG_ACCURACY (REGISTER_LAYER_CLASS(ImageSegData /
# Interp / MatWrite / Padding / SegAccuracy) in hszhao/PSPNet src/caffe/layers/ and DeepLab).
V1_FORK_TYPES: dict[str, tuple[str, str]] = {
    "VIDEO_DATA": ("VideoData", C3D), "CONVOLUTION3D": ("Convolution3D", C3D), "POOLING3D": ("Pooling3D", C3D),
    "IMAGE_SEG_DATA": ("ImageSegData", DEEPLAB), "INTERP": ("Interp", DEEPLAB), "MAT_WRITE": ("MatWrite", DEEPLAB),
    "PADDING": ("Padding", DEEPLAB), "SEG_ACCURACY": ("SegAccuracy", DEEPLAB),
    # facebook/C3D C3D-v1.0 caffe.proto: DECONVOLUTION3D = 34, VIDEO_SEGMENTATION_DATA = 35,
    # VIDEO_WITH_VOXEL_TRUTH_DATA = 38 (its video-to-video examples; layer_factory.cpp names the classes).
    "DECONVOLUTION3D": ("Deconvolution3D", C3D), "VIDEO_SEGMENTATION_DATA": ("VideoSegmentationData", C3D),
    "VIDEO_WITH_VOXEL_TRUTH_DATA": ("VideoWithVoxelTruthData", C3D),
    # torrvision/caffe (master) caffe.proto V1LayerParameter.LayerType CROP = 40 and
    # MULTI_STAGE_MEANFIELD; src/caffe/util/upgrade_proto.cpp UpgradeV1LayerType gives "Crop"
    # (its coordinate-map CropLayer, see v1_written) and "MultiStageMeanfield".
    "CROP": ("Crop", FCN_CROP), "MULTI_STAGE_MEANFIELD": ("MultiStageMeanfield", CRFASRNN),
}

# What the V1 upgrade of a fork type changes, where it changes something: a note on its W215.
V1_FORK_TYPE_NOTES: dict[str, str] = {
    "CROP": "its offsets come from the coordinate maps of the layers above it (netdef computes them for "
            "V1 'layers' blocks); a V2 \"Crop\" written by 'netdef upgrade' is read as BVLC's, whose "
            "crop_param offsets default to 0",
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
    "Convolution3D": C3D, "Pooling3D": C3D, "Deconvolution3D": C3D, "VideoSegmentationData": C3D,
    "VideoWithVoxelTruthData": C3D, "ImageSegData": DEEPLAB, "MatWrite": DEEPLAB, "Padding": DEEPLAB,
    "SegAccuracy": DEEPLAB, "ImageLabelmapData": HED, "AutoCrop": HED, "MarginInnerProduct": SPHEREFACE,
    "CenterLoss": CENTERLOSS, "Axpy": "the SENet fork of Caffe (hujie-frank/SENet)",
    "Mish": "Caffe forks with a MishLayer (YOLOv4 ports)",
    "UpsampleDarknet": SYNOPSYS, "HardSwish": SYNOPSYS, "Mul": SYNOPSYS,
    "ResizeBilinear": SYNOPSYS, "YoloV2Loss": SYNOPSYS, "Add": SYNOPSYS, "ResizeNearestNeighbor": SYNOPSYS,
    "Flip": FACE, "FocalLoss": FACE, "CosinAddm": ARCFACE, "LargeMarginInnerProduct": LSOFTMAX,
    "PointwiseSpatialAttention": PSANET, "BoxData": YOLOV2, "RegionLoss": YOLOV2,
    "DenseBlock": OCR, "Transpose": OCR, "Reverse": OCR, "CTCGreedyDecoder": OCR, "Lstm": LSTM_FORKS,
    "NdConvolution": VIDEO_CAFFE, "NdPooling": VIDEO_CAFFE, "MultiStageMeanfield": CRFASRNN,
}

# (enum, value) -> fork: values only a fork's enum has. The parser keeps them, as their name, in
# the block Loc's extra under the field's name (the message field itself stays unset).
# foss-for-synopsys-dwc-arc-processors/synopsys-caffe caffe.proto PoolingParameter.PoolMethod
# AVE_EXC_PAD = 3 (and its deprecated alias AVE_TF = 3).
_ENUM_VALUES: dict[tuple[str, str], str] = {
    ("PoolMethod", "AVE_EXC_PAD"): SYNOPSYS, ("PoolMethod", "AVE_TF"): SYNOPSYS,
}


def fork_of_enum_value(enum: str, value: str) -> str | None:
    return _ENUM_VALUES.get((enum, value))


def fork_of_field(message: str, field: str) -> str | None:
    return _FIELDS.get((message, field))


def fork_of_layer_type(layer_type: str) -> str | None:
    return _LAYER_TYPES.get(layer_type)


# Fork fields whose value netdef reads (the others are reported and ignored): what it does.
_READ: dict[tuple[str, str], str] = {
    ("PoolingParameter", "ceil_mode"): "netdef reads it: false rounds the output size down, as BVLC's "
                                       "round_mode: FLOOR does",
    **{(m, f): "netdef reads it: pad_t/pad_l/pad_b/pad_r pad the top, left, bottom and right apart"
       for m in ("ConvolutionParameter", "PoolingParameter") for f in ("pad_l", "pad_r", "pad_t", "pad_b")},
    ("ReLUParameter", "relu6"): "netdef reads it: true limits the output to 6",
    **{(m, f): "netdef reads it for NdConvolution and NdPooling (one dim per spatial axis)"
       for m in ("ConvolutionParameter", "PoolingParameter") for f in ("pad_shape", "kernel_shape", "stride_shape")},
    # The SSD fork's layers netdef computes (netdef/layers/detection.py, pinned against the
    # fork's Caffe by tests/test_ssd_fork_cases.py).
    ("LayerParameter", "prior_box_param"): "netdef reads it for PriorBox's shape and values",
    ("LayerParameter", "detection_output_param"): "netdef reads it for DetectionOutput's decoding and NMS",
    ("LayerParameter", "norm_param"): "netdef reads it for Normalize (across_spatial, channel_shared, eps, "
                                      "scale_filler)",
    ("LayerParameter", "permute_param"): "netdef reads it: top axis i is bottom axis order[i]",
    ("LayerParameter", "relu6_param"): "netdef reads it: ReLU6 computes min(max(x, 0) + negative_slope * "
                                       "min(x, 0), threshold)",
    ("BatchNormParameter", "add_eps_before_sqrt"): "netdef reads it: false divides by sqrt(var) + eps",
    ("LayerParameter", "resize_nearest_neighbor_param"): "netdef reads it for ResizeNearestNeighbor",
    **{(m, "multi_stage_meanfield_param"): "netdef reads it for MultiStageMeanfield's checks and cost"
       for m in ("LayerParameter", "V1LayerParameter")},
    ("InnerProductParameter", "normalize"): "netdef reads it: true scales each weight row by 1/sqrt(its sum of "
                                             "squares + 1e-6) before the product",
    ("LayerParameter", "normalize_param"): "netdef reads it: a Normalize layer with normalize_param is this fork's "
                                           "(L2 or L1 norm over the channels at each position, no scale blob)",
    # The caffe_ocr and caffe-lstm layers (netdef/layers/ocr.py).
    ("LayerParameter", "transpose_param"): "netdef reads it: top axis i is bottom axis dim[i]",
    ("LayerParameter", "reverse_param"): "netdef reads it: the axis the Reverse layer flips",
    ("LayerParameter", "ctc_decoder_param"): "netdef reads it: blank_index (negative: the last class) and "
                                             "ctc_merge_repeated",
    ("LayerParameter", "lstm_param"): "netdef reads it: num_output, batch_size (for a bottom that is not 3-D) and "
                                      "the fillers; clipping_threshold only bounds gradients",
    ("LayerParameter", "denseblock_param"): "netdef reads it: numTransition, growthRate, use_BC and the fillers; "
                                            "the fork's code fixes the 3 x 3, stride 1, pad 1 convolutions",
    # C3D's temporal fields (netdef/layers/conv.py c3d_field), for Convolution3D and Pooling3D only.
    ("ConvolutionParameter", "kernel_depth"): "netdef reads it for Convolution3D: the kernel's length (the "
                                              "temporal axis)",
    ("ConvolutionParameter", "temporal_stride"): "netdef reads it for Convolution3D: the stride along the length",
    ("ConvolutionParameter", "temporal_pad"): "netdef reads it for Convolution3D: the padding of the length",
    ("ConvolutionParameter", "filter_group"): "netdef reads it for Convolution3D: it must divide num_output; the "
                                              "output does not depend on it (each group reads every channel)",
    ("PoolingParameter", "kernel_depth"): "netdef reads it for Pooling3D: the window's length (the temporal axis)",
    ("PoolingParameter", "temporal_stride"): "netdef reads it for Pooling3D: the stride along the length",
    # deeplab-public's a trous convolution (TheLegendAli/DeepLab-Context src/caffe/layers/conv_layer.cpp,
    # src/caffe/util/im2col.cpp: kernel taps hole apart, effective kernel k + (k - 1) * (hole - 1)).
    **{("ConvolutionParameter", f): "netdef reads it: the upgrade writes it as BVLC's dilation, which has the "
                                    "same meaning (kernel taps that far apart)"
       for f in ("hole", "hole_h", "hole_w")},
    **{(m, "padding_param"): "netdef reads it for Padding: pad_beg and pad_end (both >= 0 pad with zeros, both "
                             "<= 0 crop) on the height and width"
       for m in ("LayerParameter", "V1LayerParameter")},
    ("LayerParameter", "video_data_param"): "netdef reads it for TSN's VideoData (told by num_segments, modality, "
                                            "name_pattern, grayscale or encoded) and C3D-v1.1's (told by use_image, "
                                            "show_data, sampling_rate, ...): batch_size, new_length, new_height, "
                                            "new_width; TSN's num_segments, modality, grayscale; C3D's "
                                            "use_multiple_label, num_of_labels",
    ("ImageDataParameter", "new_length"): "netdef reads it for C3D's VideoData: the clip's length (frames)",
    ("LayerParameter", "convolution3d_param"): "netdef reads it for C3D-v1.1's Convolution3D: num_output, bias_term, "
                                               "kernel_size, kernel_depth, stride, temporal_stride, pad, "
                                               "temporal_pad, filter_group and the fillers",
    ("LayerParameter", "pooling3d_param"): "netdef reads it for C3D-v1.1's Pooling3D: pool, kernel_size, kernel_depth, "
                                           "stride, temporal_stride and pad",
    **{("TransformationParameter", f): "netdef reads it for ImageSegData: crop_height x crop_width crops"
       for f in ("crop_height", "crop_width")},
    # The resize layers (netdef/layers/resize.py).
    **{(m, "interp_param"): "netdef reads it for Interp: zoom_factor, shrink_factor or height and width (the "
                            "output size) and pad_beg/pad_end (a crop of the input)"
       for m in ("LayerParameter", "V1LayerParameter")},
    **{(m, "upsample_param"): "netdef reads it for Upsample: scale (or scale_h and scale_w, or upsample_h and "
                              "upsample_w) and pad_out_h/pad_out_w"
       for m in ("LayerParameter", "V1LayerParameter")},
    ("LayerParameter", "upsample_darknet_param"): "netdef reads it for UpsampleDarknet: stride",
    ("LayerParameter", "resize_bilinear_param"): "netdef reads it for ResizeBilinear: output_height/output_width "
                                                 "(else scale_height/scale_width), data_format (NCHW only) and "
                                                 "align_corners, half_pixel_centers or pytorch_half_pixel",
    # SegNet's, PSPNet's and wy1iu's BN (netdef/layers/norm.py, face.py).
    **{(m, "bn_param"): "netdef reads it for BN: bn_mode (SegNet's form), eps (PSPNet's and wy1iu's), frozen "
                        "(wy1iu's) and the fillers; momentum, which acts in training only, just tells the PSPNet "
                        "form apart"
       for m in ("LayerParameter", "V1LayerParameter")},
    # Region pooling (netdef/layers/roi.py); the YOLO layers (shape.py, yolo.py).
    ("LayerParameter", "roi_pooling_param"): "netdef reads it for ROIPooling: pooled_h, pooled_w and spatial_scale",
    ("LayerParameter", "psroi_pooling_param"): "netdef reads it for PSROIPooling: output_dim, group_size and "
                                               "spatial_scale",
    ("LayerParameter", "shuffle_channel_param"): "netdef reads it for ShuffleChannel: group",
    ("LayerParameter", "reorg_param"): "netdef reads it for Reorg: stride and reverse",
    ("LayerParameter", "region_param"): "netdef reads it for Region: coords, classes and num",
    ("LayerParameter", "yolo_detection_output_param"): "netdef reads it for YoloDetectionOutput: num_classes, "
                                                       "num_box, coords, biases, confidence_threshold and "
                                                       "nms_threshold",
    ("LayerParameter", "yolov3_detection_output_param"): "netdef reads it for Yolov3DetectionOutput: num_classes, "
                                                         "num_box, biases, mask, mask_group_num, anchors_scale, "
                                                         "confidence_threshold and nms_threshold (it refuses "
                                                         "gaussian_box)",
    ("LayerParameter", "region_loss_param"): "netdef reads only side, num_class, coords and num, to check "
                                             "RegionLoss's bottoms; it does not compute the loss",
    ("LayerParameter", "yolo_v2_loss_param"): "netdef reads only side, num_classes, num_object and anchors, to check "
                                              "YoloV2Loss's bottoms; it does not compute the loss",
    ("DataParameter", "side"): "netdef reads it for BoxData: one label top of (batch_size, 150) per value",
    # The face-recognition layers (netdef/layers/face.py, dense.py, loss.py) and PSANet's (attention.py).
    ("LayerParameter", "flip_param"): "netdef reads it for Flip: flip_width and flip_height",
    ("LayerParameter", "cosin_add_m_param"): "netdef reads it for CosinAddm: m (the margin added to the label's "
                                             "angle); transform_test is not read",
    ("LayerParameter", "focal_loss_param"): "netdef reads only gamma and alpha, to check them; it does not compute "
                                            "FocalLoss's value (type and beta are not read)",
    ("LayerParameter", "largemargin_inner_product_param"): "netdef reads it for LargeMarginInnerProduct: "
                                                           "num_output, axis and weight_filler (the shapes); type, "
                                                           "base, gamma, power, iteration and lambda_min (the "
                                                           "forward pass)",
    ("LayerParameter", "margin_inner_product_param"): "netdef reads only num_output, axis and weight_filler, for "
                                                      "MarginInnerProduct's shapes; it does not compute the margin",
    ("LayerParameter", "center_loss_param"): "netdef reads only num_output, axis and center_filler, for CenterLoss's "
                                             "centers blob; it does not compute the loss",
    ("LayerParameter", "pointwise_spatial_attention_param"): "netdef reads it for PointwiseSpatialAttention: "
                                                             "psa_type, attention_mask_height/attention_mask_width, "
                                                             "normalization_factor and is_softmax",
}


def reading_of_field(message: str, field: str) -> str | None:
    """What netdef does with a fork field it reads; None for one it ignores."""
    return _READ.get((message, field))


# The forks' `optional bool ceil_mode = 13 [default = true]` of PoolingParameter (the field of
# BVLC/caffe pull request 3057, which the DenseNet and ResNeXt ports build on): true rounds the
# pooled size up as BVLC Caffe always did, false rounds it down, and the clip of a last window
# that would start in the padding applies in both modes; the forward pass is unchanged. Checked
# against foss-for-synopsys-dwc-arc-processors/synopsys-caffe src/caffe/layers/pooling_layer.cpp
# (PoolingLayer::LayerSetUp reads ceil_mode_, Reshape uses ceil or floor of the same quotient).
# The spellings of a bool in protobuf's text format:
_BOOL_SPELLINGS = {"true": True, "True": True, "t": True, "1": True,
                   "false": False, "False": False, "f": False, "0": False}


def ceil_mode_values(layer_loc) -> list:
    """The `ceil_mode` values written in a layer's pooling_param blocks, in order (raw)."""
    values = []
    for sub in (layer_loc.fields.get("pooling_param") or []) if layer_loc is not None else []:
        if hasattr(sub, "extra"):
            values.extend(sub.extra.get("ceil_mode") or [])
    return values


def as_bool(value) -> bool | None:
    """A raw value as protobuf's text format reads a bool; None when it is not one."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return {0: False, 1: True}.get(value)
    return _BOOL_SPELLINGS.get(str(value))


def ceil_mode(layer_loc) -> bool | None:
    """The fork's ceil_mode of a Pooling layer (the last one written wins, as in protobuf);
    None when it is not given or not a bool (Pooling's check reports that)."""
    values = ceil_mode_values(layer_loc)
    return as_bool(values[-1]) if values else None


def v1_written(layer_loc) -> bool:
    """Whether a layer was written in the V1 format (`layers { type: ENUM }`). BVLC's V1 enum
    has no CROP: a V1 layer upgraded to "Crop" is the CROP of the FCN-era forks (torrvision/caffe
    master, the crfasrnn submodule, src/caffe/layers/crop_layer.cpp), which takes its offsets
    from the coordinate maps of the layers above it, not from a crop_param."""
    if layer_loc is None:
        return False
    text = layer_loc.source.text
    return text.startswith("layers", layer_loc.name_start)
