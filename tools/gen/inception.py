"""Writes netdef/data/prototxts/inception_v3.prototxt (Inception-v3, 299x299).

Run from anywhere: python3 tools/gen/inception.py (--check to compare only).

Naming follows the common Caffe ports (conv1_3x3_s2 .. pool2_3x3_s2 for the
stem, inception_a1..a3, reduction_a, inception_b1..b4, reduction_b,
inception_c1..c2 for the modules TensorFlow calls Mixed_5b .. Mixed_7c), with
GoogLeNet's slashes: inception_b1/1x7_reduce, inception_b1/1x7_reduce/bn, ...
"""

from _common import (Net, TRAIN, conv, inner_product, relu, pool, dropout,
                     concat, batch_norm, scale, softmax_loss, imagenet_data,
                     imagenet_data_note, imagenet_heads, filler, constant, param)

RESIZE = 342  # 299 / 0.875: the crop keeps 87.5% of the side, as torchvision evaluates it

HEADER = """\
Inception-v3 (ImageNet, 299x299): factorised modules, BatchNorm + Scale.

Szegedy, Vanhoucke, Ioffe, Shlens, Wojna: "Rethinking the Inception
Architecture for Computer Vision", CVPR 2016, arXiv:1512.00567 (table 1 and
figures 5-7, 10), in the layout of the released TensorFlow model that the
Caffe ports and torchvision follow. 23,834,568 learnable parameters in the
TEST/deploy graph (torchvision counts 27,161,264 with the auxiliary head;
Keras' 23,817,352 trainable omits the BatchNorm gammas, 17,216 of them). The
auxiliary classifier on the 17x17 grid (average pool 5x5/3, 1x1 conv 128, 5x5
conv 768, fc 1000, loss weight 0.4, all with BatchNorm: the paper's "BN-auxiliary")
exists only in the TRAIN phase and adds 3,326,696 parameters while training.

Every convolution is followed by BatchNorm (eps 0.001 as in TensorFlow;
statistics only: its three blobs have lr_mult 0), Scale (bias_term true, the
learned gamma and beta) and ReLU, and has no bias. Asymmetric 1x7/7x1 and 1x3/3x1
convolutions use kernel_h/kernel_w and pad_h/pad_w. Weights xavier (the paper
does not give its initialisation). Label smoothing (section 7) is not
expressible with BVLC Caffe's SoftmaxWithLoss and is left out.

Input 299x299 crops, pixels scaled to [-1, 1] as the released model expects
((x - 128) / 128). Sizes: 149, 147,
147 (conv1-3), 73 (pool1), 73, 71 (conv4), 35 (pool2, inception_a), 17
(reduction_a, inception_b), 8 (reduction_b, inception_c), 1 (pool3). Caffe
rounds pooling up: 3x3/2 pools on 147, 71, 35 and 17 come out 73, 35, 17 and 8
exactly as TensorFlow's VALID pools do.

""" + imagenet_data_note(299, RESIZE, "so that 299 is 0.875 of the side, the usual centre-crop ratio")

XAVIER = filler("xavier")
W_ONLY = [param(1, 1)]
BN_EPS = 0.001


def conv_bn(net, name, bottom, num_output, kernel, stride=1, pad=0, phase=None):
    """Convolution + BatchNorm + Scale + ReLU, all under `name`."""
    net.add(conv(name, bottom, num_output, kernel, stride=stride, pad=pad,
                 bias=False, weight_filler=XAVIER, params=W_ONLY, phase=phase),
            batch_norm(f"{name}/bn", name, eps=BN_EPS, phase=phase),
            scale(f"{name}/scale", name, phase=phase),
            relu(f"{name}/relu", name, phase=phase))
    return name


def avg_pool_3x3(name, bottom):
    return pool(name, bottom, "AVE", 3, 1, pad=1)


def inception_a(net, p, bottom, pool_features):
    net.comment(f"{p} (35x35): 1x1 64 | 1x1 48 -> 5x5 64 | 1x1 64 -> 3x3 96 -> "
                f"3x3 96 | avg pool -> 1x1 {pool_features}")
    b1 = conv_bn(net, f"{p}/1x1", bottom, 64, 1)
    b2 = conv_bn(net, f"{p}/5x5_reduce", bottom, 48, 1)
    b2 = conv_bn(net, f"{p}/5x5", b2, 64, 5, pad=2)
    b3 = conv_bn(net, f"{p}/3x3_reduce", bottom, 64, 1)
    b3 = conv_bn(net, f"{p}/3x3_1", b3, 96, 3, pad=1)
    b3 = conv_bn(net, f"{p}/3x3_2", b3, 96, 3, pad=1)
    net.add(avg_pool_3x3(f"{p}/pool", bottom))
    b4 = conv_bn(net, f"{p}/pool_proj", f"{p}/pool", pool_features, 1)
    net.add(concat(f"{p}/output", [b1, b2, b3, b4]))
    return f"{p}/output"


def reduction_a(net, p, bottom):
    net.comment(f"{p} (35 -> 17): 3x3/2 384 | 1x1 64 -> 3x3 96 -> 3x3/2 96 | "
                "max pool 3x3/2")
    b1 = conv_bn(net, f"{p}/3x3", bottom, 384, 3, stride=2)
    b2 = conv_bn(net, f"{p}/3x3_2_reduce", bottom, 64, 1)
    b2 = conv_bn(net, f"{p}/3x3_2", b2, 96, 3, pad=1)
    b2 = conv_bn(net, f"{p}/3x3_3", b2, 96, 3, stride=2)
    net.add(pool(f"{p}/pool", bottom, "MAX", 3, 2),
            concat(f"{p}/output", [b1, b2, f"{p}/pool"]))
    return f"{p}/output"


def inception_b(net, p, bottom, c7):
    net.comment(f"{p} (17x17): 1x1 192 | 1x1 {c7} -> 1x7 -> 7x1 192 | "
                f"1x1 {c7} -> 7x1 -> 1x7 -> 7x1 -> 1x7 192 | avg pool -> 1x1 192")
    row, col = ((1, 7), (0, 3)), ((7, 1), (3, 0))
    b1 = conv_bn(net, f"{p}/1x1", bottom, 192, 1)
    b2 = conv_bn(net, f"{p}/1x7_reduce", bottom, c7, 1)
    b2 = conv_bn(net, f"{p}/1x7", b2, c7, row[0], pad=row[1])
    b2 = conv_bn(net, f"{p}/7x1", b2, 192, col[0], pad=col[1])
    b3 = conv_bn(net, f"{p}/7x1_2_reduce", bottom, c7, 1)
    b3 = conv_bn(net, f"{p}/7x1_2", b3, c7, col[0], pad=col[1])
    b3 = conv_bn(net, f"{p}/1x7_2", b3, c7, row[0], pad=row[1])
    b3 = conv_bn(net, f"{p}/7x1_3", b3, c7, col[0], pad=col[1])
    b3 = conv_bn(net, f"{p}/1x7_3", b3, 192, row[0], pad=row[1])
    net.add(avg_pool_3x3(f"{p}/pool", bottom))
    b4 = conv_bn(net, f"{p}/pool_proj", f"{p}/pool", 192, 1)
    net.add(concat(f"{p}/output", [b1, b2, b3, b4]))
    return f"{p}/output"


def reduction_b(net, p, bottom):
    net.comment(f"{p} (17 -> 8): 1x1 192 -> 3x3/2 320 | 1x1 192 -> 1x7 -> 7x1 -> "
                "3x3/2 192 | max pool 3x3/2")
    b1 = conv_bn(net, f"{p}/3x3_reduce", bottom, 192, 1)
    b1 = conv_bn(net, f"{p}/3x3", b1, 320, 3, stride=2)
    b2 = conv_bn(net, f"{p}/1x7_reduce", bottom, 192, 1)
    b2 = conv_bn(net, f"{p}/1x7", b2, 192, (1, 7), pad=(0, 3))
    b2 = conv_bn(net, f"{p}/7x1", b2, 192, (7, 1), pad=(3, 0))
    b2 = conv_bn(net, f"{p}/3x3_2", b2, 192, 3, stride=2)
    net.add(pool(f"{p}/pool", bottom, "MAX", 3, 2),
            concat(f"{p}/output", [b1, b2, f"{p}/pool"]))
    return f"{p}/output"


def inception_c(net, p, bottom):
    net.comment(f"{p} (8x8): 1x1 320 | 1x1 384 -> (1x3 384, 3x1 384) | "
                "1x1 448 -> 3x3 384 -> (1x3 384, 3x1 384) | avg pool -> 1x1 192")
    b1 = conv_bn(net, f"{p}/1x1", bottom, 320, 1)
    b2 = conv_bn(net, f"{p}/1x3_reduce", bottom, 384, 1)
    b2a = conv_bn(net, f"{p}/1x3", b2, 384, (1, 3), pad=(0, 1))
    b2b = conv_bn(net, f"{p}/3x1", b2, 384, (3, 1), pad=(1, 0))
    b3 = conv_bn(net, f"{p}/3x3_reduce", bottom, 448, 1)
    b3 = conv_bn(net, f"{p}/3x3", b3, 384, 3, pad=1)
    b3a = conv_bn(net, f"{p}/3x3_1x3", b3, 384, (1, 3), pad=(0, 1))
    b3b = conv_bn(net, f"{p}/3x3_3x1", b3, 384, (3, 1), pad=(1, 0))
    net.add(avg_pool_3x3(f"{p}/pool", bottom))
    b4 = conv_bn(net, f"{p}/pool_proj", f"{p}/pool", 192, 1)
    net.add(concat(f"{p}/output", [b1, b2a, b2b, b3a, b3b, b4]))
    return f"{p}/output"


def auxiliary(net, bottom):
    net.comment("auxiliary classifier (TRAIN only): 5x5/3 average pool -> 5x5, "
                "1x1 conv 128, 5x5 conv 768 -> 1x1, fc 1000, loss weight 0.4")
    net.add(pool("aux/pool", bottom, "AVE", 5, 3, phase=TRAIN))
    x = conv_bn(net, "aux/conv1", "aux/pool", 128, 1, phase=TRAIN)
    x = conv_bn(net, "aux/conv2", x, 768, 5, phase=TRAIN)
    net.add(inner_product("aux/classifier", x, 1000, XAVIER, constant(0),
                          [param(1, 1), param(2, 0)], phase=TRAIN),
            softmax_loss("aux/loss", "aux/classifier", loss_weight=0.4,
                         phase=TRAIN))


def build():
    net = Net("inception_v3", "Inception-v3", HEADER)
    net.add(imagenet_data(299, 32, mean_value=(128, 128, 128),
                          scale=0.0078125, resize=RESIZE))

    net.comment("stem: 3x299x299 -> 32x149x149 -> 32x147x147 -> 64x147x147 -> "
                "pool 73 -> 80x73x73 -> 192x71x71 -> pool 35")
    x = conv_bn(net, "conv1_3x3_s2", "data", 32, 3, stride=2)
    x = conv_bn(net, "conv2_3x3_s1", x, 32, 3)
    x = conv_bn(net, "conv3_3x3_s1", x, 64, 3, pad=1)
    net.add(pool("pool1_3x3_s2", x, "MAX", 3, 2))
    x = conv_bn(net, "conv4_3x3_reduce", "pool1_3x3_s2", 80, 1)
    x = conv_bn(net, "conv4_3x3", x, 192, 3)
    net.add(pool("pool2_3x3_s2", x, "MAX", 3, 2))
    x = "pool2_3x3_s2"

    for i, pool_features in enumerate((32, 64, 64), start=1):
        x = inception_a(net, f"inception_a{i}", x, pool_features)
    x = reduction_a(net, "reduction_a", x)
    for i, c7 in enumerate((128, 160, 160, 192), start=1):
        x = inception_b(net, f"inception_b{i}", x, c7)
    auxiliary(net, x)
    x = reduction_b(net, "reduction_b", x)
    for i in (1, 2):
        x = inception_c(net, f"inception_c{i}", x)

    net.comment("head: 8x8 average pool, dropout 0.2, 2048 -> 1000")
    net.add(pool("pool3_8x8_s1", x, "AVE", 8, 1),
            dropout("pool3_drop", "pool3_8x8_s1", 0.2),
            inner_product("classifier", "pool3_8x8_s1", 1000, XAVIER, constant(0),
                          [param(1, 1), param(2, 0)]))
    net.add(imagenet_heads("classifier"))
    return [net]


if __name__ == "__main__":
    from _common import main
    main(build())
