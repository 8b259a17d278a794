"""Writes netdef/data/prototxts/alexnet.prototxt (run from anywhere: python3 tools/gen/alexnet.py)."""

from _common import (Net, conv, inner_product, relu, lrn, pool, dropout,
                     imagenet_data, imagenet_data_note, imagenet_heads, filler,
                     constant, param)

HEADER = """\
AlexNet (ImageNet, 227x227), grouped two-tower version as in BVLC Caffe.

Krizhevsky, Sutskever, Hinton: "ImageNet Classification with Deep Convolutional
Neural Networks", NIPS 2012; BVLC Caffe's models/bvlc_alexnet. 60,965,224 learnable parameters (conv2, conv4 and
conv5 in two groups, as the paper's two GPUs had them; without groups it would
be about 62.4M).

Input 227x227 (the paper says 224, but 11x11/4 convolutions only tile 227; the
usual correction).

Order as in the paper: conv -> ReLU -> LRN -> max pool (CaffeNet swaps pool and
LRN). LRN: n = 5, alpha = 1e-4, beta = 0.75 as BVLC has them. Caffe's LRN
divides alpha by n and its k defaults to 1, where the paper wrote k = 2 and
alpha without the 1/n: BVLC's values, not a transcription of the paper's.

Initialisation as in the paper: weights N(0, 0.01^2); biases 1 in conv2, conv4,
conv5 and the hidden fully connected layers (so their ReLUs start active), 0
elsewhere (BVLC uses 0.1 and std 0.005 for fc6/fc7). Biases train at twice the
learning rate without weight decay, the BVLC convention.

""" + imagenet_data_note(227)

W = filler("gaussian", std=0.01)
LEARN = [param(1, 1), param(2, 0)]


def build():
    net = Net("alexnet", "AlexNet", HEADER)
    net.add(imagenet_data(227, 128))

    net.comment("conv1: 3x227x227 -> 96x55x55 -> pool 96x27x27")
    net.add(conv("conv1", "data", 96, 11, stride=4, weight_filler=W,
                 bias_filler=constant(0), params=LEARN),
            relu("relu1", "conv1"),
            lrn("norm1", "conv1"),
            pool("pool1", "norm1", "MAX", 3, 2))

    net.comment("conv2: two groups of 48 -> 128 maps, 5x5 -> 256x27x27 -> pool 256x13x13")
    net.add(conv("conv2", "pool1", 256, 5, pad=2, group=2, weight_filler=W,
                 bias_filler=constant(1), params=LEARN),
            relu("relu2", "conv2"),
            lrn("norm2", "conv2"),
            pool("pool2", "norm2", "MAX", 3, 2))

    net.comment("conv3 (all 256 maps of both towers) -> 384x13x13")
    net.add(conv("conv3", "pool2", 384, 3, pad=1, weight_filler=W,
                 bias_filler=constant(0), params=LEARN),
            relu("relu3", "conv3"))

    net.comment("conv4: two groups of 192 -> 192 -> 384x13x13")
    net.add(conv("conv4", "conv3", 384, 3, pad=1, group=2, weight_filler=W,
                 bias_filler=constant(1), params=LEARN),
            relu("relu4", "conv4"))

    net.comment("conv5: two groups of 192 -> 128 -> 256x13x13 -> pool 256x6x6")
    net.add(conv("conv5", "conv4", 256, 3, pad=1, group=2, weight_filler=W,
                 bias_filler=constant(1), params=LEARN),
            relu("relu5", "conv5"),
            pool("pool5", "conv5", "MAX", 3, 2))

    net.comment("fc6, fc7: 9216 -> 4096 -> 4096 with dropout 0.5")
    net.add(inner_product("fc6", "pool5", 4096, W, constant(1), LEARN),
            relu("relu6", "fc6"),
            dropout("drop6", "fc6", 0.5),
            inner_product("fc7", "fc6", 4096, W, constant(1), LEARN),
            relu("relu7", "fc7"),
            dropout("drop7", "fc7", 0.5))

    net.comment("fc8: 1000-way classifier")
    net.add(inner_product("fc8", "fc7", 1000, W, constant(0), LEARN))
    net.add(imagenet_heads("fc8"))
    return [net]


if __name__ == "__main__":
    from _common import main
    main(build())
