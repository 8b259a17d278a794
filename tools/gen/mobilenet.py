"""Writes netdef/data/prototxts/mobilenet_v1.prototxt (MobileNet v1, width 1.0, 224x224).

Run from anywhere: python3 tools/gen/mobilenet.py (--check to compare only).
"""

from _common import (Net, conv, inner_product, relu, pool, batch_norm, scale,
                     imagenet_data, imagenet_data_note, imagenet_heads, filler, constant, param,
                     IMAGENET_MEAN_VGG)

# depthwise separable layers after conv1: (name, stride of the 3x3 depthwise
# conv, output maps of the 1x1 pointwise conv), table 1 of the paper
LAYERS = [
    ("conv2_1", 1, 64), ("conv2_2", 2, 128),
    ("conv3_1", 1, 128), ("conv3_2", 2, 256),
    ("conv4_1", 1, 256), ("conv4_2", 2, 512),
    ("conv5_1", 1, 512), ("conv5_2", 1, 512), ("conv5_3", 1, 512),
    ("conv5_4", 1, 512), ("conv5_5", 1, 512), ("conv5_6", 2, 1024),
    ("conv6", 1, 1024),
]

HEADER = """\
MobileNet v1 1.0 (ImageNet, 224x224): 13 depthwise separable conv layers.

Howard, Zhu, Chen, Kalenichenko, Wang, Weyand, Andreetto, Adam: "MobileNets:
Efficient Convolutional Neural Networks for Mobile Vision Applications",
arXiv:1704.04861, 2017 (table 1, width multiplier 1.0, resolution 224).
4,231,976 learnable parameters (convolutions, fc7 and BatchNorm's gamma and
beta, which Caffe holds in the Scale layers; BatchNorm's statistics are not
counted). The paper rounds this to 4.2 million.

Caffe has no depthwise layer: a depthwise convolution is a Convolution whose
group equals its input and output channel count (conv*/dw), followed by a 1x1
pointwise Convolution (conv*/sep). Every convolution is followed by BatchNorm
(statistics only: its three blobs have lr_mult 0), Scale (bias_term true, the
learned gamma and beta) and ReLU, and has no bias. The depthwise filters get no
weight decay (decay_mult 0), as the paper advises. Head: global average pool
and a fully connected fc7, 1024 -> 1000. Weights msra.

Input 224x224 crops. Preprocessing: BGR mean
subtraction and scale 0.017 (about 1/58.8, the standard deviation of ImageNet
pixels). Sizes: 112 (conv1, conv2_1), 56 (conv2_2, conv3_1), 28 (conv3_2,
conv4_1), 14 (conv4_2 .. conv5_5), 7 (conv5_6, conv6), 1 (pool6).

""" + imagenet_data_note(224)

MSRA = filler("msra")
DECAY = [param(1, 1)]
NO_DECAY = [param(1, 0)]


def conv_bn_relu(net, name, relu_name, bottom, num_output, kernel, stride=1,
                 pad=0, group=1, params=DECAY):
    net.add(conv(name, bottom, num_output, kernel, stride=stride, pad=pad,
                 group=group, bias=False, weight_filler=MSRA, params=params),
            batch_norm(f"{name}/bn", name),
            scale(f"{name}/scale", name),
            relu(relu_name, name))
    return name


def build():
    net = Net("mobilenet_v1", "MobileNet_v1", HEADER)
    net.add(imagenet_data(224, 64, mean_value=IMAGENET_MEAN_VGG, scale=0.017))

    net.comment("conv1: full 3x3/2 convolution, 3 -> 32 maps, 112x112")
    bottom = conv_bn_relu(net, "conv1", "relu1", "data", 32, 3, stride=2, pad=1)
    channels, size = 32, 112
    for name, stride, out in LAYERS:
        size //= stride
        tag = name[len("conv"):]
        net.comment(f"{name}: depthwise 3x3/{stride} on {channels} maps, "
                    f"pointwise {channels} -> {out}, {size}x{size}")
        dw = conv_bn_relu(net, f"{name}/dw", f"relu{tag}/dw", bottom, channels, 3,
                          stride=stride, pad=1, group=channels, params=NO_DECAY)
        bottom = conv_bn_relu(net, f"{name}/sep", f"relu{tag}/sep", dw, out, 1)
        channels = out

    net.comment("head: global average pool, 1024 -> 1000")
    net.add(pool("pool6", bottom, "AVE", global_pooling=True),
            inner_product("fc7", "pool6", 1000, MSRA, constant(0),
                          [param(1, 1), param(2, 0)]))
    net.add(imagenet_heads("fc7"))
    return [net]


if __name__ == "__main__":
    from _common import main
    main(build())
