"""Writes netdef/data/prototxts/googlenet.prototxt (GoogLeNet / Inception v1).

Run from anywhere: python3 tools/gen/googlenet.py (--check to compare only).
"""

from _common import (Net, TRAIN, conv, inner_product, relu, lrn, pool, dropout,
                     concat, softmax_loss, accuracy, imagenet_data, imagenet_data_note, filler,
                     constant, param)

HEADER = """\
GoogLeNet / Inception v1 (ImageNet, 224x224), auxiliary classifiers in TRAIN.

Szegedy et al.: "Going Deeper with Convolutions", CVPR 2015, arXiv:1409.4842
(table 1 and figure 3). 6,998,552 learnable parameters in the TEST/deploy graph;
the two auxiliary classifiers (loss1/*, loss2/*, each 1x1 conv 128, fc 1024,
dropout 0.7, fc 1000, loss weight 0.3) exist only in the TRAIN phase
(include { phase: TRAIN }) and add 6,379,728 more while training.

Layer names and the stem (conv 7x7/2, max pool, LRN, conv 1x1 + 3x3, LRN, max
pool) as in BVLC Caffe's models/bvlc_googlenet. Each inception module
concatenates 1x1, 1x1 -> 3x3, 1x1 -> 5x5 and 3x3 max pool -> 1x1 branches, all
followed by ReLU. Sizes: 112 (conv1), 56 (pool1), 28 (pool2, inception 3),
14 (pool3, inception 4), 7 (pool4, inception 5), 1 (7x7 average pool); Caffe
rounds pooling up, so 3x3/2 pools need no padding. Weights xavier, biases 0.2,
biases at twice the learning rate without weight decay (BVLC's choices: the
paper trained with DistBelief and does not give its initialisation).

""" + imagenet_data_note(224)

# name: (#1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj), table 1
INCEPTION = [
    ("3a", (64, 96, 128, 16, 32, 32)),
    ("3b", (128, 128, 192, 32, 96, 64)),
    "pool3",
    ("4a", (192, 96, 208, 16, 48, 64)),
    ("4b", (160, 112, 224, 24, 64, 64)),
    ("4c", (128, 128, 256, 24, 64, 64)),
    ("4d", (112, 144, 288, 32, 64, 64)),
    ("4e", (256, 160, 320, 32, 128, 128)),
    "pool4",
    ("5a", (256, 160, 320, 32, 128, 128)),
    ("5b", (384, 192, 384, 48, 128, 128)),
]
AUX_AFTER = {"4a": "loss1", "4d": "loss2"}

XAVIER = filler("xavier")
LEARN = [param(1, 1), param(2, 0)]


def conv_relu(name, bottom, num_output, kernel, stride=1, pad=0, relu_name=None,
              phase=None):
    return [conv(name, bottom, num_output, kernel, stride=stride, pad=pad,
                 weight_filler=XAVIER, bias_filler=constant(0.2), params=LEARN,
                 phase=phase),
            relu(relu_name, name, phase=phase)]


def inception(net, tag, bottom, widths):
    n1, n3r, n3, n5r, n5, npool = widths
    p = f"inception_{tag}"
    net.comment(f"{p}: 1x1 {n1}, 3x3 {n3r}->{n3}, 5x5 {n5r}->{n5}, "
                f"pool->{npool}; {n1 + n3 + n5 + npool} maps out")
    net.add(conv_relu(f"{p}/1x1", bottom, n1, 1, relu_name=f"{p}/relu_1x1"),
            conv_relu(f"{p}/3x3_reduce", bottom, n3r, 1,
                      relu_name=f"{p}/relu_3x3_reduce"),
            conv_relu(f"{p}/3x3", f"{p}/3x3_reduce", n3, 3, pad=1,
                      relu_name=f"{p}/relu_3x3"),
            conv_relu(f"{p}/5x5_reduce", bottom, n5r, 1,
                      relu_name=f"{p}/relu_5x5_reduce"),
            conv_relu(f"{p}/5x5", f"{p}/5x5_reduce", n5, 5, pad=2,
                      relu_name=f"{p}/relu_5x5"),
            pool(f"{p}/pool", bottom, "MAX", 3, 1, pad=1),
            conv_relu(f"{p}/pool_proj", f"{p}/pool", npool, 1,
                      relu_name=f"{p}/relu_pool_proj"),
            concat(f"{p}/output", [f"{p}/1x1", f"{p}/3x3", f"{p}/5x5",
                                   f"{p}/pool_proj"]))
    return f"{p}/output"


def auxiliary(net, prefix, bottom):
    net.comment(f"auxiliary classifier {prefix} (TRAIN only): 5x5/3 average pool "
                "-> 4x4, 1x1 conv 128, fc 1024, fc 1000")
    net.add(pool(f"{prefix}/ave_pool", bottom, "AVE", 5, 3, phase=TRAIN),
            conv_relu(f"{prefix}/conv", f"{prefix}/ave_pool", 128, 1,
                      relu_name=f"{prefix}/relu_conv", phase=TRAIN),
            inner_product(f"{prefix}/fc", f"{prefix}/conv", 1024, XAVIER,
                          constant(0.2), LEARN, phase=TRAIN),
            relu(f"{prefix}/relu_fc", f"{prefix}/fc", phase=TRAIN),
            dropout(f"{prefix}/drop_fc", f"{prefix}/fc", 0.7, phase=TRAIN),
            inner_product(f"{prefix}/classifier", f"{prefix}/fc", 1000, XAVIER,
                          constant(0), LEARN, phase=TRAIN),
            softmax_loss(f"{prefix}/loss", f"{prefix}/classifier",
                         loss_weight=0.3, phase=TRAIN))


def build():
    net = Net("googlenet", "GoogLeNet", HEADER)
    net.add(imagenet_data(224, 32))

    net.comment("stem: 3x224x224 -> 64x112x112 -> 64x56x56 -> 192x56x56 -> 192x28x28")
    net.add(conv_relu("conv1/7x7_s2", "data", 64, 7, stride=2, pad=3,
                      relu_name="conv1/relu_7x7"),
            pool("pool1/3x3_s2", "conv1/7x7_s2", "MAX", 3, 2),
            lrn("pool1/norm1", "pool1/3x3_s2"),
            conv_relu("conv2/3x3_reduce", "pool1/norm1", 64, 1,
                      relu_name="conv2/relu_3x3_reduce"),
            conv_relu("conv2/3x3", "conv2/3x3_reduce", 192, 3, pad=1,
                      relu_name="conv2/relu_3x3"),
            lrn("conv2/norm2", "conv2/3x3"),
            pool("pool2/3x3_s2", "conv2/norm2", "MAX", 3, 2))

    bottom = "pool2/3x3_s2"
    for item in INCEPTION:
        if isinstance(item, str):
            net.comment(f"{item}: 3x3/2 max pool")
            net.add(pool(f"{item}/3x3_s2", bottom, "MAX", 3, 2))
            bottom = f"{item}/3x3_s2"
            continue
        tag, widths = item
        bottom = inception(net, tag, bottom, widths)
        if tag in AUX_AFTER:
            auxiliary(net, AUX_AFTER[tag], bottom)

    net.comment("head: 7x7 average pool, dropout 0.4, 1024 -> 1000")
    net.add(pool("pool5/7x7_s1", bottom, "AVE", 7, 1),
            dropout("pool5/drop_7x7_s1", "pool5/7x7_s1", 0.4),
            inner_product("loss3/classifier", "pool5/7x7_s1", 1000, XAVIER,
                          constant(0), LEARN),
            softmax_loss("loss3/loss3", "loss3/classifier", loss_weight=1),
            accuracy("loss3/top-1", "loss3/classifier"),
            accuracy("loss3/top-5", "loss3/classifier", top_k=5))
    return [net]


if __name__ == "__main__":
    from _common import main
    main(build())
