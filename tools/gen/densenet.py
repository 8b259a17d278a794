"""Writes netdef/data/prototxts/densenet121.prototxt (DenseNet-BC-121, growth rate 32).

Run from anywhere: python3 tools/gen/densenet.py (--check to compare only).

Naming follows the common Caffe port of the released models: conv2_1/x1 and
conv2_1/x2 are the 1x1 bottleneck and 3x3 convolutions of the first layer of
dense block 2 (Caffe-style numbering: block 2 runs at conv2's resolution), with
/bn and /scale beside them, concat_2_1 the running concatenation, conv2_blk the
transition's 1x1 convolution and pool2 its average pool.
"""

from _common import (Net, conv, inner_product, relu, pool, batch_norm, scale,
                     concat, imagenet_data, imagenet_data_note, imagenet_heads, filler, constant,
                     param, IMAGENET_MEAN_VGG)

DEPTHS = {121: [6, 12, 24, 16]}
COUNTS = {121: "7,978,856"}
GROWTH = 32
BOTTLENECK = 4  # the 1x1 convolution makes 4k maps
INIT = 64       # 2k maps out of conv1
COMPRESSION = 0.5

HEADER = """\
DenseNet-121 (ImageNet, 224x224): DenseNet-BC, k = 32, compression 0.5.

Huang, Liu, van der Maaten, Weinberger: "Densely Connected Convolutional
Networks", CVPR 2017, arXiv:1608.06993 (table 1). {count} learnable
parameters (convolutions, fc6 and BatchNorm's gamma and beta, which Caffe holds
in the Scale layers; BatchNorm's statistics are not counted).

Four dense blocks of {blocks} layers. Each layer is pre-activated: BatchNorm +
Scale + ReLU, 1x1 convolution to {bott} maps (the "B" bottleneck), BatchNorm +
Scale + ReLU, 3x3 convolution to {growth} maps, whose output is concatenated to
the block's running feature map. The first BatchNorm of a layer reads the
running concatenation, which later layers still need, so it writes a new blob
(conv2_1/x1/bn); everything after it works in place. Transitions halve the
channels ("C", compression 0.5) with BatchNorm + Scale + ReLU + 1x1 convolution
and halve the resolution with a 2x2/2 average pool. Convolutions have no bias;
weights msra, as the paper initialises them.

Pooling: Caffe rounds pooling sizes up (the common ports use a fork-only
ceil_mode flag to get PyTorch's rounding down). pool1 is therefore 3x3/2
without padding, which gives the paper's 112 -> 56 under Caffe's rule (with
PyTorch's pad 1 it would give 57). Sizes: 112 (conv1), 56 (block 2), 28 (block
3), 14 (block 4), 7 (block 5), 1 (pool5).

Preprocessing: BGR mean subtraction and scale 0.017 (about 1/58.8, the
standard deviation of ImageNet pixels), as the Caffe port of the released
models does.

"""

MSRA = filler("msra")
W_ONLY = [param(1, 1)]


def bn_scale_relu(net, name, relu_name, bottom, top):
    net.add(batch_norm(f"{name}/bn", bottom, top=top),
            scale(f"{name}/scale", top),
            relu(relu_name, top))
    return top


def dense_layer(net, block, i, bottom):
    p = f"conv{block}_{i}"
    x = bn_scale_relu(net, f"{p}/x1", f"relu{block}_{i}/x1", bottom, f"{p}/x1/bn")
    net.add(conv(f"{p}/x1", x, BOTTLENECK * GROWTH, 1, bias=False,
                 weight_filler=MSRA, params=W_ONLY))
    x = bn_scale_relu(net, f"{p}/x2", f"relu{block}_{i}/x2", f"{p}/x1", f"{p}/x1")
    net.add(conv(f"{p}/x2", x, GROWTH, 3, pad=1, bias=False, weight_filler=MSRA,
                 params=W_ONLY),
            concat(f"concat_{block}_{i}", [bottom, f"{p}/x2"]))
    return f"concat_{block}_{i}"


def build_one(depth):
    blocks = DEPTHS[depth]
    header = HEADER.format(count=COUNTS[depth],
                           blocks=", ".join(map(str, blocks)),
                           bott=BOTTLENECK * GROWTH, growth=GROWTH) \
        + imagenet_data_note(224)
    net = Net(f"densenet{depth}", f"DenseNet-{depth}", header)
    net.add(imagenet_data(224, 32, mean_value=IMAGENET_MEAN_VGG, scale=0.017))

    net.comment("stem: conv1 7x7/2 -> 64x112x112, pool1 3x3/2 -> 64x56x56")
    net.add(conv("conv1", "data", INIT, 7, stride=2, pad=3, bias=False,
                 weight_filler=MSRA, params=W_ONLY))
    bn_scale_relu(net, "conv1", "relu1", "conv1", "conv1")
    net.add(pool("pool1", "conv1", "MAX", 3, 2))

    bottom, channels, size = "pool1", INIT, 56
    for b, n in enumerate(blocks, start=2):
        net.comment(f"dense block {b}: {n} layers at {size}x{size}, "
                    f"{channels} -> {channels + n * GROWTH} maps")
        for i in range(1, n + 1):
            net.comment(f"conv{b}_{i}", blank_before=i > 1)
            bottom = dense_layer(net, b, i, bottom)
        channels += n * GROWTH
        if b == len(blocks) + 1:
            break
        out = int(channels * COMPRESSION)
        size //= 2
        net.comment(f"transition: {channels} -> {out} maps, "
                    f"2x2/2 average pool to {size}x{size}")
        x = bn_scale_relu(net, f"conv{b}_blk", f"relu{b}_blk", bottom,
                          f"conv{b}_blk/bn")
        net.add(conv(f"conv{b}_blk", x, out, 1, bias=False, weight_filler=MSRA,
                     params=W_ONLY),
                pool(f"pool{b}", f"conv{b}_blk", "AVE", 2, 2))
        bottom, channels = f"pool{b}", out

    last = len(blocks) + 1
    net.comment(f"head: BatchNorm + Scale + ReLU, global average pool, "
                f"{channels} -> 1000")
    x = bn_scale_relu(net, f"conv{last}_blk", f"relu{last}_blk", bottom,
                      f"conv{last}_blk/bn")
    net.add(pool(f"pool{last}", x, "AVE", global_pooling=True),
            inner_product("fc6", f"pool{last}", 1000, MSRA, constant(0),
                          [param(1, 1), param(2, 0)]))
    net.add(imagenet_heads("fc6"))
    return net


def build():
    return [build_one(depth) for depth in DEPTHS]


if __name__ == "__main__":
    from _common import main
    main(build())
