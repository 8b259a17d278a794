"""Writes netdef/data/prototxts/resnet{18,34,50,101,152}.prototxt.

Run from anywhere: python3 tools/gen/resnet.py (--check to compare only).

Naming follows Kaiming He's released Caffe models: res2a_branch1 (projection),
res2a_branch2a/2b/2c (residual branch), bn2a_branch2a / scale2a_branch2a for its
BatchNorm + Scale, res2a for the sum and res2a_relu after it. Stages 3 and 4 of
ResNet-101/152 number their blocks res3b1, res3b2, ... as those releases do.
"""

from _common import (Net, conv, inner_product, relu, pool, batch_norm,
                     scale, eltwise_sum, imagenet_data, imagenet_data_note, imagenet_heads, filler,
                     constant, param)

# depth: (block kind, blocks per stage 2..5, conv1 bias, published count)
CONFIGS = {
    18: ("basic", [2, 2, 2, 2], False, "11,689,512"),
    34: ("basic", [3, 4, 6, 3], False, "21,797,672"),
    50: ("bottleneck", [3, 4, 6, 3], True, "25,557,032"),
    101: ("bottleneck", [3, 4, 23, 3], False, "44,549,160"),
    152: ("bottleneck", [3, 8, 36, 3], False, "60,192,808"),
}
WIDTHS = [64, 128, 256, 512]  # bottleneck width; basic blocks output this
EXPANSION = {"basic": 1, "bottleneck": 4}

CONV1_NOTE = {
    True: """\
conv1 has a bias (bias_term true), as in Kaiming He's released ResNet-50 deploy
definition, so this file holds 64 parameters more than the figure usually quoted
without it: 25,557,096 = 25,557,032 + 64. Every other convolution is followed
by BatchNorm and has no bias.""",
    False: """\
conv1 has no bias (bias_term false), as in Kaiming He's released ResNet-101 and
ResNet-152 definitions (only the ResNet-50 release has one) and in torchvision,
whose count {count} this file matches exactly. No convolution has a bias: each
is followed by BatchNorm.""",
}

HEADER = """\
ResNet-{depth} (ImageNet, 224x224): {blocks} {kind} blocks, BatchNorm + Scale.

He, Zhang, Ren, Sun: "Deep Residual Learning for Image Recognition", CVPR 2016,
arXiv:1512.03385 (table 1). Published count {count} learnable parameters
(torchvision's figure: convolutions, fc1000 and BatchNorm's gamma and beta,
which Caffe holds in the Scale layers; BatchNorm's mean/variance statistics are
not counted). {conv1}

Style of the released Caffe models: every convolution is followed by BatchNorm
(statistics only: its three blobs have lr_mult 0) and Scale (bias_term true,
the learned gamma and beta). {stride_note} Shortcuts are identities, except at
the first block of each stage where the shape changes, which projects with a
1x1 convolution and its own BatchNorm + Scale (option B of the paper){res2a}.
pool1 is 3x3/2 without padding: Caffe rounds pooling up, so 112 -> 56.
Weights: msra (He et al., ICCV 2015), as the paper initialises them. Sizes: 112
(conv1), 56 (res2), 28 (res3), 14 (res4), 7 (res5), 1 (pool5).

"""

STRIDE_NOTE = {
    "bottleneck": "A stage's first block downsamples in its first 1x1\n"
                  "convolution (stride 2 in branch2a and branch1), as in the "
                  "released models.",
    "basic": "A stage's first block downsamples in its first 3x3\n"
             "convolution (stride 2 in branch2a and branch1).",
}

MSRA = filler("msra")
W_ONLY = [param(1, 1)]
W_AND_B = [param(1, 1), param(2, 0)]


def block_names(depth, stage, n):
    """res2a, res2b, ... or res4a, res4b1, res4b2, ... for ResNet-101/152."""
    if depth >= 101 and stage in (3, 4):
        return [f"{stage}a"] + [f"{stage}b{i}" for i in range(1, n)]
    return [f"{stage}{chr(ord('a') + i)}" for i in range(n)]


def conv_bn(net, tag, bottom, num_output, kernel, stride=1, pad=0, act=True):
    """Convolution res<tag> + bn<tag> + scale<tag> (+ res<tag>_relu)."""
    name = f"res{tag}"
    net.add(conv(name, bottom, num_output, kernel, stride=stride, pad=pad,
                 bias=False, weight_filler=MSRA, params=W_ONLY),
            batch_norm(f"bn{tag}", name),
            scale(f"scale{tag}", name))
    if act:
        net.add(relu(f"{name}_relu", name))
    return name


def residual_block(net, kind, tag, bottom, in_ch, width, stride):
    out_ch = width * EXPANSION[kind]
    if stride != 1 or in_ch != out_ch:
        shortcut = conv_bn(net, f"{tag}_branch1", bottom, out_ch, 1,
                           stride=stride, act=False)
    else:
        shortcut = bottom
    if kind == "bottleneck":
        x = conv_bn(net, f"{tag}_branch2a", bottom, width, 1, stride=stride)
        x = conv_bn(net, f"{tag}_branch2b", x, width, 3, pad=1)
        x = conv_bn(net, f"{tag}_branch2c", x, out_ch, 1, act=False)
    else:
        x = conv_bn(net, f"{tag}_branch2a", bottom, width, 3, stride=stride, pad=1)
        x = conv_bn(net, f"{tag}_branch2b", x, width, 3, pad=1, act=False)
    net.add(eltwise_sum(f"res{tag}", [shortcut, x]),
            relu(f"res{tag}_relu", f"res{tag}"))
    return f"res{tag}", out_ch


def build_one(depth):
    kind, blocks, conv1_bias, count = CONFIGS[depth]
    header = HEADER.format(
        depth=depth, blocks=sum(blocks), kind=kind, count=count,
        conv1=CONV1_NOTE[conv1_bias].format(count=count),
        stride_note=STRIDE_NOTE[kind],
        res2a=("" if kind == "bottleneck" else
               "; res2a keeps 64x56x56 and so needs none"),
    ) + imagenet_data_note(224)
    net = Net(f"resnet{depth}", f"ResNet-{depth}", header)
    net.add(imagenet_data(224, 32))

    net.comment("stem: conv1 7x7/2 -> 64x112x112, pool1 3x3/2 -> 64x56x56")
    net.add(conv("conv1", "data", 64, 7, stride=2, pad=3, bias=conv1_bias,
                 weight_filler=MSRA, bias_filler=constant(0),
                 params=W_AND_B if conv1_bias else W_ONLY),
            batch_norm("bn_conv1", "conv1"),
            scale("scale_conv1", "conv1"),
            relu("conv1_relu", "conv1"),
            pool("pool1", "conv1", "MAX", 3, 2))

    bottom, channels, size = "pool1", 64, 56
    for stage, (n, width) in enumerate(zip(blocks, WIDTHS), start=2):
        stride = 1 if stage == 2 else 2
        size //= stride
        out_ch = width * EXPANSION[kind]
        for i, tag in enumerate(block_names(depth, stage, n)):
            if i == 0:
                net.comment(f"stage res{stage}: {n} blocks, {out_ch}x{size}x{size}")
            net.comment(f"res{tag}" + (f" (stride {stride}, projection shortcut)"
                                       if i == 0 and (stride != 1 or channels != out_ch)
                                       else ""),
                        blank_before=(i != 0))
            bottom, channels = residual_block(net, kind, tag, bottom, channels,
                                              width, stride if i == 0 else 1)

    net.comment(f"head: global average pool -> {channels} -> 1000")
    net.add(pool("pool5", bottom, "AVE", 7, 1),
            inner_product("fc1000", "pool5", 1000, filler("gaussian", std=0.01),
                          constant(0), W_AND_B))
    net.add(imagenet_heads("fc1000"))
    return net


def build():
    return [build_one(depth) for depth in CONFIGS]


if __name__ == "__main__":
    from _common import main
    main(build())
