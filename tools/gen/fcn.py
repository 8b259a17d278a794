"""Writes netdef/data/prototxts/fcn8s.prototxt (FCN-8s on a VGG-16 backbone, PASCAL VOC).

Run from anywhere: python3 tools/gen/fcn.py (--check to compare only).
"""

from _common import (Net, Layer, TEST, Enum, conv, relu, pool, dropout,
                     eltwise_sum, segmentation_data, filler, constant,
                     param)

CLASSES = 21  # PASCAL VOC: 20 classes and background
SIZE = 500    # PASCAL VOC images are at most 500x500

HEADER = f"""\
FCN-8s (PASCAL VOC, 21 classes): fully convolutional VGG-16, 3 skip levels.

Long, Shelhamer, Darrell: "Fully Convolutional Networks for Semantic
Segmentation", CVPR 2015, arXiv:1411.4038 (section 4.2, figure 3). VGG-16's
fully connected layers become convolutions (fc6 7x7, fc7 1x1), score_fr scores
the 21 classes at stride 32, and two learned 2x up-convolutions fuse the scores
with those of pool4 (stride 16) and pool3 (stride 8) before a fixed 8x bilinear
up-convolution returns to the input resolution.

conv1_1 pads by 100 so that even small inputs survive the 32x reduction and the
7x7 fc6; the Crop layers then cut each upsampled map back into register with
the finer one it is added to: offsets 5 (score_pool4c), 9 (score_pool3c) and 31
(score, against data) align the maps for every input size. Deconvolutions have
no bias and run per class (group 21) with Caffe's bilinear filler, the paper's
initialisation; upscore2 and upscore_pool4 then learn, upscore8 stays fixed
(lr_mult 0). (The reference code holds full 21x21 kernels that net surgery
initialises to a diagonal bilinear kernel; group 21 expresses that
initialisation in the definition itself.) The score layers start at zero, as in
the paper; the backbone is meant to be initialised from VGG-16's weights (the
fillers only make the definition complete). Learnable parameters: 134,363,423
(with upscore8's 5,376 fixed weights: 134,368,799).

Data: images and label maps are PNG files padded to {SIZE}x{SIZE} (label 255
on the padding, as on object boundaries: ignored by the loss), named in two list
files in the same order, one "path 0" line per file (ImageData wants an integer
after each path). Two ImageData layers read them unshuffled, in step, batch 1 as
in the paper's training. The label maps must be single-channel PNGs of class
indices (is_color false), not VOC's palette PNGs, which OpenCV decodes to
colours. crop_size {SIZE} equals the stored size, so it crops nothing (offsets 0
in both phases) and fixes the shapes: the TEST data blob is 1x3x{SIZE}x{SIZE},
the label blob 1x1x{SIZE}x{SIZE}. No mirroring: the two layers would flip
independently. For deployment use the data blob alone."""

XAVIER = filler("xavier")
ZERO = constant(0)
LEARN = [param(1, 1), param(2, 0)]
VGG16 = [2, 2, 3, 3, 3]
WIDTHS = [64, 128, 256, 512, 512]
VOC_MEAN = (104.00699, 116.66877, 122.67892)


def crop(name, bottom, like, offset):
    return Layer(name, "Crop", [bottom, like], name,
                 [("crop_param", [("axis", 2), ("offset", offset)])])


def upscore(name, bottom, kernel, stride, learn):
    return conv(name, bottom, CLASSES, kernel, stride=stride, group=CLASSES,
                bias=False, weight_filler=filler("bilinear"),
                params=[param(1, 1) if learn else param(0, 0)],
                type_="Deconvolution")


def score(name, bottom):
    return conv(name, bottom, CLASSES, 1, weight_filler=ZERO, bias_filler=ZERO,
                params=LEARN)


def build():
    net = Net("fcn8s", "FCN-8s", HEADER)
    net.add(segmentation_data("data/voc2012/{split}_images.txt",
                              "data/voc2012/{split}_labels.txt", SIZE, SIZE,
                              mean_value=VOC_MEAN))

    bottom = "data"
    for stage, (n, width) in enumerate(zip(VGG16, WIDTHS), start=1):
        net.comment(f"VGG-16 stage {stage}: {n} x conv3x3-{width}, 2x2/2 max pool"
                    + (" (conv1_1 pads by 100)" if stage == 1 else ""))
        for i in range(1, n + 1):
            name = f"conv{stage}_{i}"
            pad = 100 if stage == 1 and i == 1 else 1
            net.add(conv(name, bottom, width, 3, pad=pad, weight_filler=XAVIER,
                         bias_filler=ZERO, params=LEARN),
                    relu(f"relu{stage}_{i}", name))
            bottom = name
        net.add(pool(f"pool{stage}", bottom, "MAX", 2, 2))
        bottom = f"pool{stage}"

    net.comment("fc6 and fc7 as convolutions (7x7 and 1x1), dropout 0.5")
    net.add(conv("fc6", "pool5", 4096, 7, weight_filler=XAVIER, bias_filler=ZERO,
                 params=LEARN),
            relu("relu6", "fc6"),
            dropout("drop6", "fc6", 0.5),
            conv("fc7", "fc6", 4096, 1, weight_filler=XAVIER, bias_filler=ZERO,
                 params=LEARN),
            relu("relu7", "fc7"),
            dropout("drop7", "fc7", 0.5))

    net.comment("stride 32 scores, up 2x, fused with the pool4 scores (stride 16)")
    net.add(score("score_fr", "fc7"),
            upscore("upscore2", "score_fr", 4, 2, learn=True),
            score("score_pool4", "pool4"),
            crop("score_pool4c", "score_pool4", "upscore2", 5),
            eltwise_sum("fuse_pool4", ["upscore2", "score_pool4c"]))

    net.comment("up 2x again, fused with the pool3 scores (stride 8)")
    net.add(upscore("upscore_pool4", "fuse_pool4", 4, 2, learn=True),
            score("score_pool3", "pool3"),
            crop("score_pool3c", "score_pool3", "upscore_pool4", 9),
            eltwise_sum("fuse_pool3", ["upscore_pool4", "score_pool3c"]))

    net.comment("fixed bilinear 8x upsampling, cropped to the input")
    net.add(upscore("upscore8", "fuse_pool3", 16, 8, learn=False),
            crop("score", "upscore8", "data", 31))

    net.comment("per-pixel loss, summed (not averaged) over pixels as in the paper")
    net.add(Layer("loss", "SoftmaxWithLoss", ["score", "label"], "loss",
                  [("loss_param", [("ignore_label", 255),
                                   ("normalization", Enum("NONE"))])]),
            Layer("accuracy", "Accuracy", ["score", "label"], "accuracy",
                  [("accuracy_param", [("ignore_label", 255)])], phase=TEST))
    return [net]


if __name__ == "__main__":
    from _common import main
    main(build())
