"""Writes netdef/data/prototxts/vgg16.prototxt and netdef/data/prototxts/vgg19.prototxt.

Run from anywhere: python3 tools/gen/vgg.py (--check to compare only).
"""

from _common import (Net, conv, inner_product, relu, pool, dropout,
                     imagenet_data, imagenet_data_note, imagenet_heads, filler, constant, param,
                     IMAGENET_MEAN_VGG)

# convolutions per stage; every stage ends in a 2x2/2 max pool
CONFIGS = {
    16: ("D", [2, 2, 3, 3, 3], "138,357,544"),
    19: ("E", [2, 2, 4, 4, 4], "143,667,240"),
}
WIDTHS = [64, 128, 256, 512, 512]

HEADER = """\
VGG-{depth} (ImageNet, 224x224): {convs} 3x3 convolutions, 3 fully connected layers.

Simonyan, Zisserman: "Very Deep Convolutional Networks for Large-Scale Image
Recognition", ICLR 2015, arXiv:1409.1556, configuration {config}. {count} learnable parameters.

Input 224x224 crops (the paper rescales the shorter side to 256 or a random
size in [256, 512] first; here a fixed 256x256). Mean subtraction only, with
the BGR means of the VGG release.

Training as in the paper: batch 256 (here 64 per pass, iter_size 4 in the
solver), momentum 0.9, weight decay 5e-4, dropout 0.5 on fc6 and fc7. The paper
initialised deeper nets from configuration A, and noted afterwards that Glorot &
Bengio's initialisation trains them from scratch: xavier for the convolutions,
N(0, 0.01^2) for the fully connected layers, zero biases. Biases train at twice
the learning rate without weight decay, the Caffe convention.

Sizes: 224 -> 112 -> 56 -> 28 -> 14 -> 7 after pool1..pool5; fc6 sees 512x7x7.

"""

CONV_W = filler("xavier")
FC_W = filler("gaussian", std=0.01)
LEARN = [param(1, 1), param(2, 0)]


def build_one(depth):
    config, per_stage, count = CONFIGS[depth]
    header = HEADER.format(depth=depth, config=config, convs=sum(per_stage),
                           count=count) + imagenet_data_note(224)
    net = Net(f"vgg{depth}", f"VGG_ILSVRC_{depth}_layers", header)
    net.add(imagenet_data(224, 64, mean_value=IMAGENET_MEAN_VGG))

    bottom = "data"
    size = 224
    for stage, (n, width) in enumerate(zip(per_stage, WIDTHS), start=1):
        net.comment(f"stage {stage}: {n} x conv3x3-{width} at {size}x{size}, "
                    f"then pool to {size // 2}x{size // 2}")
        for i in range(1, n + 1):
            name = f"conv{stage}_{i}"
            net.add(conv(name, bottom, width, 3, pad=1, weight_filler=CONV_W,
                         bias_filler=constant(0), params=LEARN),
                    relu(f"relu{stage}_{i}", name))
            bottom = name
        net.add(pool(f"pool{stage}", bottom, "MAX", 2, 2))
        bottom = f"pool{stage}"
        size //= 2

    net.comment("classifier: 25088 -> 4096 -> 4096 -> 1000")
    net.add(inner_product("fc6", bottom, 4096, FC_W, constant(0), LEARN),
            relu("relu6", "fc6"),
            dropout("drop6", "fc6", 0.5),
            inner_product("fc7", "fc6", 4096, FC_W, constant(0), LEARN),
            relu("relu7", "fc7"),
            dropout("drop7", "fc7", 0.5),
            inner_product("fc8", "fc7", 1000, FC_W, constant(0), LEARN))
    net.add(imagenet_heads("fc8"))
    return net


def build():
    return [build_one(16), build_one(19)]


if __name__ == "__main__":
    from _common import main
    main(build())
