"""Shared text emitter for the generator scripts in this folder.

Each family script (vgg.py, resnet.py, ...) builds its nets as lists of layers
with the helpers below and writes them with ``Net.write``; running the script
again must reproduce the committed ``prototxts/<name>.prototxt`` byte for byte.
``--check`` compares instead of writing and exits 1 on any difference.

Only Python 3 standard library, and only BVLC Caffe layer types and fields.
This module writes nothing when run on its own.
"""

import sys
import textwrap
from pathlib import Path

PROTOTXT_DIR = Path(__file__).resolve().parent.parent.parent / "netdef" / "data" / "prototxts"

INDENT = "  "
ONE_LINE_MAX = 78  # a nested message of scalars goes on one line when it fits


class Enum(str):
    """An enum value, written bare (MAX, TRAIN, SUM) rather than quoted."""


TRAIN = Enum("TRAIN")
TEST = Enum("TEST")


def _scalar(value):
    if isinstance(value, Enum):
        return str(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        text = repr(value)
        return text[:-2] if text.endswith(".0") else text
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    raise TypeError(f"cannot write {value!r}")


def _is_message(value):
    return isinstance(value, list)


def render_fields(fields, depth):
    """Text for a list of (key, value) pairs; a list value is a nested message."""
    lines = []
    pad = INDENT * depth
    for key, value in fields:
        if not _is_message(value):
            lines.append(f"{pad}{key}: {_scalar(value)}")
            continue
        if not any(_is_message(v) for _, v in value):
            inline = " ".join(f"{k}: {_scalar(v)}" for k, v in value)
            one_line = f"{pad}{key} {{ {inline} }}" if value else f"{pad}{key} {{ }}"
            if len(one_line) <= ONE_LINE_MAX:
                lines.append(one_line)
                continue
        lines.append(f"{pad}{key} {{")
        lines.extend(render_fields(value, depth + 1))
        lines.append(f"{pad}}}")
    return lines


# --- fillers and parameter specs -------------------------------------------

def filler(kind, **kw):
    out = [("type", kind)]
    for key in ("value", "mean", "std", "variance_norm"):
        if key in kw:
            out.append((key, kw[key]))
    return out


def constant(value=0):
    return filler("constant", value=value)


def param(lr_mult, decay_mult, name=None):
    out = [("name", name)] if name else []
    return out + [("lr_mult", lr_mult), ("decay_mult", decay_mult)]


# --- layers ----------------------------------------------------------------

class Layer:
    def __init__(self, name, type_, bottom=(), top=(), body=(), phase=None,
                 comment=None):
        self.name = name
        self.type = type_
        self.bottom = [bottom] if isinstance(bottom, str) else list(bottom)
        self.top = [top] if isinstance(top, str) else list(top)
        self.body = list(body)
        self.phase = phase
        self.comment = comment

    def fields(self):
        out = [("name", self.name), ("type", self.type)]
        out += [("bottom", b) for b in self.bottom]
        out += [("top", t) for t in self.top]
        if self.phase is not None:
            out.append(("include", [("phase", self.phase)]))
        return out + self.body


class Comment:
    def __init__(self, text, blank_before=True):
        self.text = text
        self.blank_before = blank_before


def _kernel(prefix, value, default=None):
    """kernel_size: 3, or kernel_h/kernel_w for a (h, w) pair."""
    if isinstance(value, tuple):
        h, w = value
        if h == w:
            value = h
        else:
            return [(f"{prefix}_h", h), (f"{prefix}_w", w)]
    if value == default:
        return []
    key = "kernel_size" if prefix == "kernel" else prefix
    return [(key, value)]


def conv_fields(num_output, kernel, stride=1, pad=0, group=1, bias=True,
                weight_filler=None, bias_filler=None, dilation=1):
    body = [("num_output", num_output)]
    if not bias:
        body.append(("bias_term", False))
    body += _kernel("pad", pad, default=0)
    body += _kernel("kernel", kernel)
    body += _kernel("stride", stride, default=1)
    if dilation != 1:
        body.append(("dilation", dilation))
    if group != 1:
        body.append(("group", group))
    if weight_filler:
        body.append(("weight_filler", weight_filler))
    if bias and bias_filler:
        body.append(("bias_filler", bias_filler))
    return body


def conv(name, bottom, num_output, kernel, stride=1, pad=0, group=1, bias=True,
         weight_filler=None, bias_filler=None, params=None, top=None,
         type_="Convolution", phase=None, dilation=1):
    body = [("param", p) for p in (params or [])]
    body.append(("convolution_param",
                 conv_fields(num_output, kernel, stride, pad, group, bias,
                             weight_filler, bias_filler, dilation)))
    return Layer(name, type_, bottom, top or name, body, phase=phase)


def inner_product(name, bottom, num_output, weight_filler=None, bias_filler=None,
                  params=None, top=None, axis=None, bias=True, phase=None):
    body = [("param", p) for p in (params or [])]
    ip = [("num_output", num_output)]
    if not bias:
        ip.append(("bias_term", False))
    if axis is not None:
        ip.append(("axis", axis))
    if weight_filler:
        ip.append(("weight_filler", weight_filler))
    if bias and bias_filler:
        ip.append(("bias_filler", bias_filler))
    body.append(("inner_product_param", ip))
    return Layer(name, "InnerProduct", bottom, top or name, body, phase=phase)


def relu(name, blob, phase=None):
    return Layer(name, "ReLU", blob, blob, phase=phase)


def pool(name, bottom, method, kernel=None, stride=None, pad=0, top=None,
         global_pooling=False, phase=None):
    body = [("pool", Enum(method))]
    if global_pooling:
        body.append(("global_pooling", True))
    else:
        body.append(("kernel_size", kernel))
        if stride not in (None, 1):
            body.append(("stride", stride))
        if pad:
            body.append(("pad", pad))
    return Layer(name, "Pooling", bottom, top or name,
                 [("pooling_param", body)], phase=phase)


def lrn(name, bottom, local_size=5, alpha=0.0001, beta=0.75, top=None):
    body = [("local_size", local_size), ("alpha", alpha), ("beta", beta)]
    return Layer(name, "LRN", bottom, top or name, [("lrn_param", body)])


def dropout(name, blob, ratio, phase=None):
    return Layer(name, "Dropout", blob, blob,
                 [("dropout_param", [("dropout_ratio", ratio)])], phase=phase)


def concat(name, bottoms, top=None, phase=None):
    return Layer(name, "Concat", bottoms, top or name, phase=phase)


def eltwise_sum(name, bottoms, top=None):
    return Layer(name, "Eltwise", bottoms, top or name,
                 [("eltwise_param", [("operation", Enum("SUM"))])])


# BatchNorm's three blobs (mean, variance, moving-average factor) are statistics,
# not learned: lr_mult 0 keeps the solver off them. use_global_stats is left
# unset so Caffe picks it by phase (batch statistics in TRAIN, stored in TEST),
# which lets one file serve training, testing and deployment.
BN_PARAMS = [("param", param(0, 0))] * 3


def batch_norm(name, bottom, top=None, eps=None, phase=None):
    body = list(BN_PARAMS)
    if eps is not None:
        body.append(("batch_norm_param", [("eps", eps)]))
    return Layer(name, "BatchNorm", bottom, top or bottom, body, phase=phase)


def scale(name, blob, phase=None):
    return Layer(name, "Scale", blob, blob,
                 [("scale_param", [("bias_term", True)])], phase=phase)


def softmax_loss(name, bottom, label="label", top=None, loss_weight=None,
                 phase=None):
    body = [("loss_weight", loss_weight)] if loss_weight is not None else []
    return Layer(name, "SoftmaxWithLoss", [bottom, label], top or name, body,
                 phase=phase)


def accuracy(name, bottom, label="label", top_k=1, top=None, phase=TEST):
    body = [("accuracy_param", [("top_k", top_k)])] if top_k != 1 else []
    return Layer(name, "Accuracy", [bottom, label], top or name, body,
                 phase=phase)


def _transform(scale=None, mirror=None, crop_size=None, mean_value=()):
    out = []
    if scale is not None:
        out.append(("scale", scale))
    if mirror is not None:
        out.append(("mirror", mirror))
    if crop_size is not None:
        out.append(("crop_size", crop_size))
    return out + [("mean_value", m) for m in mean_value]


# ImageData rather than LMDB Data: Caffe's ImageDataLayer::DataLayerSetUp takes
# the channel count from is_color (3, or 1 for grey) and the size from
# new_height/new_width or crop_size, where a Data layer reads both from its
# database. So the blob shapes follow from the definition alone, in Caffe as in
# netdef, and each file doubles as its own deploy definition.
def image_data(phase, source, batch_size, *, root_folder=None, new_size=None,
               crop_size=None, is_color=True, shuffle=False, scale=None,
               mirror=None, mean_value=(), tops=("data", "label"), name="data"):
    body = []
    transform = _transform(scale, mirror, crop_size, mean_value)
    if transform:
        body.append(("transform_param", transform))
    ip = [("source", source)]
    if root_folder is not None:
        ip.append(("root_folder", root_folder))
    ip.append(("batch_size", batch_size))
    if shuffle:
        ip.append(("shuffle", True))
    if new_size is not None:
        ip += [("new_height", new_size), ("new_width", new_size)]
    if not is_color:
        ip.append(("is_color", False))
    body.append(("image_data_param", ip))
    return Layer(name, "ImageData", (), tops, body, phase=phase)


# The per-channel BGR means of ILSVRC-2012 as BVLC Caffe uses them, and the
# more precise figures of the VGG release that later ports copied.
IMAGENET_MEAN_BVLC = (104, 117, 123)
IMAGENET_MEAN_VGG = (103.939, 116.779, 123.68)
# Caffe's data/ilsvrc12/{train,val}.txt (get_ilsvrc_aux.sh): "path label" lines
# relative to the unpacked ILSVRC-2012 training and validation folders.
IMAGENET_LISTS = {TRAIN: ("data/ilsvrc12/train.txt", "data/ilsvrc12/train/"),
                  TEST: ("data/ilsvrc12/val.txt", "data/ilsvrc12/val/")}
IMAGENET_TEST_BATCH = 50


def imagenet_data(crop_size, train_batch, mean_value=IMAGENET_MEAN_BVLC,
                  scale=None, resize=256):
    """TRAIN: shuffled list, random crops, mirroring; TEST: centre crops."""
    layers = []
    for phase, batch in ((TRAIN, train_batch), (TEST, IMAGENET_TEST_BATCH)):
        source, root = IMAGENET_LISTS[phase]
        layers.append(image_data(
            phase, source, batch, root_folder=root, new_size=resize,
            crop_size=crop_size, shuffle=phase == TRAIN, scale=scale,
            mirror=phase == TRAIN, mean_value=mean_value))
    return layers


def imagenet_data_note(crop_size, resize=256,
                       why="as BVLC's ImageNet recipe stores them"):
    """The header paragraph that goes with imagenet_data()."""
    n = IMAGENET_TEST_BATCH
    return f"""\
Data: ImageData layers read the JPEG files named in Caffe's
data/ilsvrc12/train.txt and val.txt ("path label" lines) and resize them to
{resize}x{resize}, {why}. The blob shapes follow from the
definition: 3 channels (is_color), {crop_size}x{crop_size} crops. TRAIN takes random crops
with mirroring from a shuffled list, TEST the centre crop, {n} per batch: the
TEST data blob is {n}x3x{crop_size}x{crop_size}, the label blob {n}. For deployment
use N = 1."""


def segmentation_data(image_list, label_list, image_size, label_size,
                      is_color=True, scale=None, mean_value=()):
    """Images and label maps from two ImageData layers reading two lists in step.

    Neither list is shuffled and neither side is mirrored (two layers would draw
    their random choices independently); crop_size equals the stored sizes, so
    it crops nothing and only fixes the shapes. ImageData always has two tops
    (image and the list's integer); the integers go to a Silence layer.
    """
    layers = []
    for phase, split in ((TRAIN, "train"), (TEST, "val")):
        layers.append(image_data(
            phase, image_list.format(split=split), 1, crop_size=image_size,
            is_color=is_color, scale=scale, mirror=False, mean_value=mean_value,
            tops=("data", "data_index")))
        layers.append(image_data(
            phase, label_list.format(split=split), 1, crop_size=label_size,
            is_color=False, mirror=False, tops=("label", "label_index"),
            name="label"))
    layers.append(Layer("silence_index", "Silence", ["data_index", "label_index"]))
    return layers


def imagenet_heads(logits, loss="loss", prefix=""):
    """The loss (both phases) and top-1/top-5 accuracy (TEST only)."""
    return [
        softmax_loss(f"{prefix}{loss}", logits),
        accuracy(f"{prefix}accuracy", logits),
        accuracy(f"{prefix}accuracy_top5", logits, top_k=5),
    ]


# --- nets ------------------------------------------------------------------

def wrap(text, width=78):
    """Refill prose to width; indented lines stay as they are."""
    out, prose = [], []

    def flush():
        if prose:
            out.extend(textwrap.wrap(" ".join(prose), width,
                                     break_on_hyphens=False))
            prose.clear()

    for line in text.split("\n"):
        if not line.strip():
            flush()
            out.append("")
        elif line.startswith(" "):
            flush()
            out.append(line)
        else:
            prose.append(line.strip())
    flush()
    return out


class Net:
    def __init__(self, file_stem, name, header):
        self.file_stem = file_stem
        self.name = name
        # comment lines without "# "; a string is refilled by wrap()
        self.header = wrap(header) if isinstance(header, str) else header
        self.items = []

    def add(self, *items):
        for item in items:
            if isinstance(item, (list, tuple)):
                self.add(*item)
            else:
                self.items.append(item)
        return self

    def comment(self, text, blank_before=True):
        self.items.append(Comment(text, blank_before))
        return self

    def text(self):
        out = [("# " + line).rstrip() for line in self.header]
        out.append("")
        out.append(f'name: "{self.name}"')
        for item in self.items:
            if isinstance(item, Comment):
                if item.blank_before:
                    out.append("")
                out += [("# " + line).rstrip() for line in item.text.split("\n")]
                continue
            out.append("layer {")
            out += render_fields(item.fields(), 1)
            out.append("}")
        return "\n".join(out) + "\n"

    def path(self):
        return PROTOTXT_DIR / f"{self.file_stem}.prototxt"

    def write(self, check=False):
        """Write the file (or, with check, report whether it is up to date)."""
        text = self.text()
        path = self.path()
        if check:
            current = path.read_text() if path.exists() else None
            if current != text:
                print(f"{path.name}: out of date", file=sys.stderr)
                return False
            return True
        with open(path, "w", newline="\n") as f:
            f.write(text)
        return True


def main(nets):
    """Entry point of a family script: write every net, or --check them."""
    check = "--check" in sys.argv[1:]
    ok = all([net.write(check=check) for net in nets])
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    pass
