"""Writes netdef/data/prototxts/squeezenet1_0.prototxt and netdef/data/prototxts/squeezenet1_1.prototxt.

Run from anywhere: python3 tools/gen/squeezenet.py (--check to compare only).
"""

from _common import (Net, conv, relu, pool, dropout, concat, imagenet_data, imagenet_data_note,
                     imagenet_heads, filler)

# fire modules: (squeeze 1x1, expand 1x1, expand 3x3); "pool" = 3x3/2 max pool
FIRE = {
    "1_0": [(16, 64, 64), (16, 64, 64), (32, 128, 128), "pool",
            (32, 128, 128), (48, 192, 192), (48, 192, 192), (64, 256, 256),
            "pool", (64, 256, 256)],
    "1_1": [(16, 64, 64), (16, 64, 64), "pool", (32, 128, 128), (32, 128, 128),
            "pool", (48, 192, 192), (48, 192, 192), (64, 256, 256),
            (64, 256, 256)],
}
CONV1 = {"1_0": (96, 7), "1_1": (64, 3)}
COUNT = {"1_0": "1,248,424", "1_1": "1,235,496"}
SIZES = {"1_0": "111 (conv1), 55 (pool1), 27 (pool4), 13 (pool8)",
         "1_1": "113 (conv1), 56 (pool1), 28 (pool3), 14 (pool5)"}

VERSION_NOTE = {
    "1_0": """\
Version 1.0 is the net of the paper (table 1): conv1 96 7x7/2, max pools after
conv1, fire4 and fire8.""",
    "1_1": """\
Version 1.1 (SqueezeNet release notes, DeepScale/SqueezeNet v1.1): conv1 64
3x3/2 and the max pools moved earlier (after conv1, fire3 and fire5), for 2.4x
less computation than 1.0 at the same accuracy; the fire modules are those of
1.0.""",
}

HEADER = """\
SqueezeNet {dotted} (ImageNet, 227x227): fire modules, no fully connected layer.

Iandola, Han, Moskewicz, Ashraf, Dally, Keutzer: "SqueezeNet: AlexNet-level
accuracy with 50x fewer parameters and <0.5MB model size", arXiv:1602.07360,
2016. {count} learnable parameters. {version}

A fire module squeezes with 1x1 convolutions and expands with 1x1 and 3x3
(pad 1) convolutions side by side, concatenated; every convolution is followed
by ReLU. The classifier is conv10 (1x1, 1000 maps) and a global average pool.
Dropout 0.5 after fire9. Weights xavier, conv10 N(0, 0.01^2), as in the
released train_val definitions.

Input 227x227 crops. Sizes: {sizes}; Caffe rounds pooling up, so the 3x3/2
pools need no padding.

"""

XAVIER = filler("xavier")


def fire(net, index, bottom, widths):
    s1, e1, e3 = widths
    p = f"fire{index}"
    net.comment(f"{p}: squeeze {s1}, expand {e1} + {e3} -> {e1 + e3} maps")
    net.add(conv(f"{p}/squeeze1x1", bottom, s1, 1, weight_filler=XAVIER),
            relu(f"{p}/relu_squeeze1x1", f"{p}/squeeze1x1"),
            conv(f"{p}/expand1x1", f"{p}/squeeze1x1", e1, 1, weight_filler=XAVIER),
            relu(f"{p}/relu_expand1x1", f"{p}/expand1x1"),
            conv(f"{p}/expand3x3", f"{p}/squeeze1x1", e3, 3, pad=1,
                 weight_filler=XAVIER),
            relu(f"{p}/relu_expand3x3", f"{p}/expand3x3"),
            concat(f"{p}/concat", [f"{p}/expand1x1", f"{p}/expand3x3"]))
    return f"{p}/concat"


def build_one(version):
    dotted = version.replace("_", ".")
    header = HEADER.format(dotted=dotted, count=COUNT[version],
                           version=VERSION_NOTE[version], sizes=SIZES[version]) \
        + imagenet_data_note(227)
    net = Net(f"squeezenet{version}", f"SqueezeNet_v{dotted}", header)
    net.add(imagenet_data(227, 32))

    width, kernel = CONV1[version]
    net.comment(f"conv1: {width} {kernel}x{kernel}/2, then 3x3/2 max pool")
    net.add(conv("conv1", "data", width, kernel, stride=2, weight_filler=XAVIER),
            relu("relu_conv1", "conv1"),
            pool("pool1", "conv1", "MAX", 3, 2))

    bottom, index = "pool1", 2
    for item in FIRE[version]:
        if item == "pool":
            name = f"pool{index - 1}"
            net.comment(f"{name}: 3x3/2 max pool", blank_before=True)
            net.add(pool(name, bottom, "MAX", 3, 2))
            bottom = name
            continue
        bottom = fire(net, index, bottom, item)
        index += 1

    net.comment("classifier: dropout, conv10 1x1 -> 1000, global average pool")
    net.add(dropout("drop9", bottom, 0.5),
            conv("conv10", bottom, 1000, 1,
                 weight_filler=filler("gaussian", mean=0.0, std=0.01)),
            relu("relu_conv10", "conv10"),
            pool("pool10", "conv10", "AVE", global_pooling=True))
    net.add(imagenet_heads("pool10"))
    return net


def build():
    return [build_one("1_0"), build_one("1_1")]


if __name__ == "__main__":
    from _common import main
    main(build())
