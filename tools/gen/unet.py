"""Writes netdef/data/prototxts/unet.prototxt (the original U-Net, 572x572 valid convolutions).

Run from anywhere: python3 tools/gen/unet.py (--check to compare only).

Names follow the authors' released Caffe model: a layer conv_d1a-b reads blob
d1a and writes d1b (d = contracting, u = expansive path, the digit the level);
crop_d3c-d3cc crops d3c to d3cc, concat_d3cc_u3a-b joins d3cc and u3a into u3b.
"""

from _common import (Net, Layer, TEST, conv, relu, pool, dropout,
                     concat, segmentation_data, filler, constant)

TILE, OUT = 572, 388
WIDTHS = [64, 128, 256, 512, 1024]
CLASSES = 2

HEADER = f"""\
U-Net (ISBI 2012 EM segmentation, 572x572 tiles, 2 classes), unpadded convs.

Ronneberger, Fischer, Brox: "U-Net: Convolutional Networks for Biomedical Image
Segmentation", MICCAI 2015, arXiv:1505.04597 (figure 1). 31,030,658 learnable
parameters (the paper gives no count).

Contracting path: at each of five levels two unpadded 3x3 convolutions with
ReLU (each loses a 1-pixel border), then a 2x2/2 max pool, doubling the
channels from 64 to 1024. Expansive path: a 2x2/2 up-convolution
(Deconvolution, then ReLU) halving the channels, concatenation with the contracting
path's map at that level centre-cropped to the same size (Crop with offsets 4,
16, 40, 88), and two unpadded 3x3 convolutions with ReLU; a final 1x1
convolution scores the 2 classes. Sizes: 572 -> 568 -> 284 -> 280 -> 140 -> 136
-> 68 -> 64 -> 32 -> 28 (1024 maps), then 56 -> 52 -> 104 -> 100 -> 200 -> 196
-> 392 -> 388. Dropout 0.5 at the end of the contracting path, as the paper
has it. Weights msra: the paper's N(0, 2/N) with N the fan-in.

The paper's loss weights each pixel (class balance and the border-separation
term); BVLC Caffe's SoftmaxWithLoss takes no weight map, so this uses the plain
per-pixel softmax loss.

Data: the tile is the 512x512 image mirrored at its borders to 572x572, the
label map the centre 388x388 of its segmentation (0 and 1), both grey PNG files
named in two list files in the same order, one "path 0" line per file
(ImageData wants an integer after each path). Two ImageData layers read them
unshuffled, in step, batch 1 as in the paper; is_color false gives one channel.
crop_size equals the stored sizes, so it crops nothing (offsets 0 in both
phases) and fixes the shapes: the TEST data blob is 1x1x{TILE}x{TILE}, the label
blob 1x1x{OUT}x{OUT}. No mirroring: the two layers would flip independently
(augmentation, the paper's elastic deformations, belongs to data preparation).
For deployment use the data blob alone."""

MSRA = filler("msra")
ZERO = constant(0)


def conv_relu(net, level, a, b, bottom, width):
    top = f"{level}{b}"
    net.add(conv(f"conv_{level}{a}-{b}", bottom, width, 3, weight_filler=MSRA,
                 bias_filler=ZERO, top=top),
            relu(f"relu_{level}{b}", top))
    return top


def crop(name, bottom, like, offset, top):
    return Layer(name, "Crop", [bottom, like], top,
                 [("crop_param", [("axis", 2), ("offset", offset)])])


def build():
    net = Net("unet", "U-Net", HEADER)
    net.add(segmentation_data("data/isbi2012/{split}_tiles.txt",
                              "data/isbi2012/{split}_labels.txt", TILE, OUT,
                              is_color=False, scale=0.00390625))

    size = TILE
    for level, width in enumerate(WIDTHS):
        d = f"d{level}"
        net.comment(f"contracting level {level}: 2 x conv3x3-{width}, "
                    f"{size} -> {size - 4}")
        # level 0 reads the data blob; the others read the pool above them
        x = conv_relu(net, d, "a", "b", "data" if level == 0 else f"{d}a", width)
        x = conv_relu(net, d, "b", "c", x, width)
        size -= 4
        if level < len(WIDTHS) - 1:
            net.add(pool(f"pool_{d}c-{level + 1}a", x, "MAX", 2, 2,
                         top=f"d{level + 1}a"))
            size //= 2
    net.add(dropout("dropout_d4c", "d4c", 0.5))

    x = "d4c"
    crops = {3: 4, 2: 16, 1: 40, 0: 88}
    for level in (3, 2, 1, 0):
        width = WIDTHS[level]
        u = f"u{level}"
        net.comment(f"expansive level {level}: up-conv 2x2/2 -> {width} maps at "
                    f"{size * 2}, crop d{level}c by {crops[level]}, concat, "
                    f"2 x conv3x3-{width} -> {size * 2 - 4}")
        size = size * 2 - 4
        net.add(conv(f"upconv_{x}_{u}a", x, width, 2, stride=2, weight_filler=MSRA,
                     bias_filler=ZERO, top=f"{u}a", type_="Deconvolution"),
                relu(f"relu_{u}a", f"{u}a"),
                crop(f"crop_d{level}c-d{level}cc", f"d{level}c", f"{u}a",
                     crops[level], f"d{level}cc"),
                concat(f"concat_d{level}cc_{u}a-b", [f"d{level}cc", f"{u}a"],
                       top=f"{u}b"))
        x = conv_relu(net, u, "b", "c", f"{u}b", width)
        x = conv_relu(net, u, "c", "d", x, width)

    net.comment(f"1x1 convolution to {CLASSES} class scores, per-pixel softmax loss")
    net.add(conv("conv_u0d-score", x, CLASSES, 1, weight_filler=MSRA,
                 bias_filler=ZERO, top="score"),
            Layer("loss", "SoftmaxWithLoss", ["score", "label"], "loss"),
            Layer("accuracy", "Accuracy", ["score", "label"], "accuracy",
                  phase=TEST))
    return [net]


if __name__ == "__main__":
    from _common import main
    main(build())
