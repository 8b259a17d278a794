"""video-caffe's N-D convolution and pooling (chuckcho/video-caffe): NdConvolution and NdPooling,
cuDNN-only layers whose geometry comes from the fork's BlobShape fields kernel_shape,
stride_shape and pad_shape (one dim per spatial axis) inside convolution_param / pooling_param,
kept by the parser in those blocks' extra. C3D's Convolution3D / Pooling3D are in conv.py and
pool.py; their C3D-v1.1 variants (convolution3d_param / pooling3d_param) and C3D-v1.0's and TSN's
VideoData (variants of the type) are here.
"""
from __future__ import annotations

from .. import codes, forks
from ..forks import VIDEO_CAFFE
from ..proto import pb
from .base import Layer, bad, fork_filler, prod, register, register_variant, weight_bias_fillers, window_rf
from .convsize import conv_size
from .pool import Pooling3D

P = pb.PoolingParameter


def _list(vals) -> str:
    return " x ".join(str(v) for v in vals)


def nd_geometry(node, message: str, rank: int):
    """(kernel, stride, pad) of video-caffe's NdConvolution / NdPooling, one value per spatial
    axis. chuckcho/video-caffe src/caffe/layers/cudnn_ndconv_layer.cpp and cudnn_ndpooling_layer.cpp
    (LayerSetUp): kernel_shape is required, every dim positive; pad_shape and stride_shape, when
    given, have as many dims as kernel_shape; else pads 0 and strides 1. compute_output_shape
    reads one kernel dim per axis after (N, C), so the bottom has 2 + len(kernel_shape) axes."""
    sub = node.loc.msg(message) if node.loc is not None else None
    extra = sub.extra if sub is not None else {}

    def dims(name):
        blocks = extra.get(name)
        if not blocks:
            return None
        block = blocks[-1]
        vals = block.get("dim", []) if isinstance(block, dict) else None
        if vals is None or any(isinstance(v, bool) or not isinstance(v, int) or v < 0 for v in vals):
            bad(node, f"{message}.{name} must be a BlobShape of non-negative dims, e.g. {name} {{ dim: 3 dim: 3 "
                      f"dim: 3 }}", (message,))
        return list(vals)

    kernel = dims("kernel_shape")
    if kernel is None:
        bad(node, f"{message}.kernel_shape is not set", (message,),
            notes=[f"{node.type} reads kernel_shape {{ dim: ... }}, one dim per spatial axis (\"Kernel shape is "
                   "required.\")"])
    if any(k <= 0 for k in kernel):
        bad(node, f"kernel_shape dims must be positive, got {_list(kernel)}", (message,))
    out = [kernel]
    for name, default in (("stride_shape", 1), ("pad_shape", 0)):
        v = dims(name)
        if v is not None and len(v) != len(kernel):
            bad(node, f"{name} has {len(v)} dims but kernel_shape has {len(kernel)}", (message,),
                notes=["give one dim per spatial axis in each"])
        if name == "stride_shape" and v is not None and any(s <= 0 for s in v):
            bad(node, f"stride_shape dims must be positive, got {_list(v)}", (message,))
        out.append(v if v is not None else [default] * len(kernel))
    if rank != 2 + len(kernel):
        bad(node, f"kernel_shape has {len(kernel)} dims, so the bottom must have {2 + len(kernel)} axes "
                  f"(N, C and one per dim), but it has {rank}", (message,))
    return out[0], out[1], out[2]


@register("NdConvolution")
class NdConvolution(Layer):
    """video-caffe's cuDNN N-D convolution (cudnn_ndconv_layer.cpp): weight (num_output,
    C / group, *kernel_shape), bias (num_output) when bias_term; out = (size + 2 pad - kernel) /
    stride + 1 per spatial axis. compute_output_shape keeps an axis only when that size is > 1,
    which makes the top's rank disagree with the cuDNN descriptors its forward uses: netdef
    refuses such a layer instead of running it."""

    param = "convolution_param"
    family = "convolution"
    origin = VIDEO_CAFFE
    checked_against = ("chuckcho/video-caffe src/caffe/layers/cudnn_ndconv_layer.cpp (LayerSetUp, Reshape, "
                       "compute_output_shape) and caffe.proto (kernel_shape = 7778, stride_shape = 7779, "
                       "pad_shape = 7777)")

    def geometry(self, node, shape):
        return nd_geometry(node, "convolution_param", len(shape))

    def infer_shapes(self, node, in_shapes):
        shape = in_shapes[0]
        kernel, stride, pad = self.geometry(node, shape)
        cp = node.param.convolution_param
        if not cp.num_output:
            bad(node, "num_output must be positive", ("convolution_param",))
        if cp.group == 0 or shape[1] % cp.group or cp.num_output % cp.group:
            bad(node, f"group {cp.group} must divide the {shape[1]} input channels and num_output {cp.num_output}",
                ("convolution_param", "group"), code=codes.BAD_GROUP)
        out = [shape[0], cp.num_output]
        for i, k in enumerate(kernel):
            o = conv_size(shape[2 + i] + 2 * pad[i], k, stride[i])  # C++ int division, as Caffe's (convsize.py)
            if o <= 1:
                bad(node, f"the output would be {o} on spatial axis {i} (input {shape[2 + i]}, kernel {k}, pad "
                          f"{pad[i]}, stride {stride[i]}): compute_output_shape drops such an axis, and the "
                          f"forward's cuDNN descriptors then disagree with the top",
                    ("convolution_param",), code=codes.BAD_GEOMETRY, notes=["use a larger input"])
            out.append(o)
        return [tuple(out)] * len(node.outputs)

    def param_shapes(self, node, in_shapes):
        kernel, _, _ = self.geometry(node, in_shapes[0])
        cp = node.param.convolution_param
        w = (cp.num_output, in_shapes[0][1] // cp.group, *kernel)
        return [w, (cp.num_output,)] if cp.bias_term else [w]

    def filler_params(self, node):
        return weight_bias_fillers(node.param.convolution_param)

    def receptive_field(self, node, in_rfs):
        rf = in_rfs[0]
        if rf is None or rf.whole:
            return [rf] * len(node.outputs)
        kernel, stride, pad = self.geometry(node, node.inputs[0].meta["shape"])
        n = len(rf.size)
        return [window_rf(rf, kernel[-n:], stride[-n:], pad[-n:])] * len(node.outputs)

    def cost(self, node, in_shapes, out_shapes):
        kernel, _, _ = self.geometry(node, in_shapes[0])
        cp = node.param.convolution_param
        macs = sum(prod(s) for s in out_shapes) * (in_shapes[0][1] // cp.group) * prod(kernel)
        bias = sum(prod(s) for s in out_shapes) if cp.bias_term else 0
        return {"macs": macs, "flops": 2 * macs + bias}

    def to_onnx(self, node, g):
        """ONNX Conv (cuDNN's cross-correlation), N-D kernel, symmetric pads, groups."""
        kernel, stride, pad = self.geometry(node, g.in_shape(0))
        cp = node.param.convolution_param
        w = g.param(0, "weight")
        b = g.param(1, "bias") if g.n_blobs > 1 else None
        for i in range(g.n_in):
            g.op("Conv", [g.x(i), w] + ([b] if b else []), g.y(i), kernel_shape=list(kernel), strides=list(stride),
                 pads=list(pad) * 2, group=cp.group)


@register("NdPooling")
class NdPooling(Layer):
    """video-caffe's cuDNN N-D pooling (cudnn_ndpooling_layer.cpp): kernel_shape / stride_shape
    / pad_shape per spatial axis (global_pooling: the whole extent); out = ceil((size + 2 pad -
    kernel) / stride) + 1, less one when padded and the last window would start in the padding
    (Caffe's rule). The forward is cuDNN's (cudnn.hpp createNdPoolingDesc): MAX over each window
    clipped to the input (as BVLC Caffe's cuDNN pooling on its rounded-up shapes), AVE as
    CUDNN_POOLING_AVERAGE_COUNT_INCLUDE_PADDING (the kernel volume divides); any other method
    is "Unknown pooling method"."""

    param = "pooling_param"
    family = "pooling"
    origin = VIDEO_CAFFE
    checked_against = ("chuckcho/video-caffe src/caffe/layers/cudnn_ndpooling_layer.cpp (LayerSetUp, "
                       "compute_output_shape), include/caffe/util/cudnn.hpp (createNdPoolingDesc) and caffe.proto")

    def geometry(self, node, shape):
        pp = node.param.pooling_param
        if pp.pool not in (P.MAX, P.AVE):
            bad(node, f"{P.PoolMethod.Name(pp.pool)} pooling is not supported by NdPooling (\"Unknown pooling "
                      f"method\")", ("pooling_param", "pool"))
        kernel, stride, pad = nd_geometry(node, "pooling_param", len(shape))
        if pp.global_pooling:
            kernel = list(shape[2:])
        return kernel, stride, pad

    def infer_shapes(self, node, in_shapes):
        shape = in_shapes[0]
        kernel, stride, pad = self.geometry(node, shape)
        out = [shape[0], shape[1]]
        for i, k in enumerate(kernel):
            span = shape[2 + i] + 2 * pad[i] - k
            o = -(-span // stride[i]) + 1
            if pad[i] and (o - 1) * stride[i] >= shape[2 + i] + pad[i]:
                o -= 1
            if o < 1:
                bad(node, f"kernel {k} is larger than the padded input {shape[2 + i] + 2 * pad[i]} on spatial axis "
                          f"{i}: compute_output_shape would drop the axis", ("pooling_param",), code=codes.BAD_GEOMETRY)
            out.append(o)
        return [tuple(out)]

    def receptive_field(self, node, in_rfs):
        rf = in_rfs[0]
        if rf is None or rf.whole:
            return [rf]
        kernel, stride, pad = self.geometry(node, node.inputs[0].meta["shape"])
        n = len(rf.size)
        return [window_rf(rf, kernel[-n:], stride[-n:], pad[-n:])]

    def cost(self, node, in_shapes, out_shapes):
        kernel, _, _ = self.geometry(node, in_shapes[0])
        return {"macs": 0, "flops": prod(out_shapes[0]) * prod(kernel)}

    def to_onnx(self, node, g):
        """ONNX MaxPool / AveragePool (count_include_pad), N-D; the rounded-up overhang as end
        padding, which MaxPool ignores."""
        shape, out = g.in_shape(0), g.out_shape(0)
        kernel, stride, pad = self.geometry(node, shape)
        ends = [(out[2 + i] - 1) * stride[i] + kernel[i] - shape[2 + i] - pad[i] for i in range(len(kernel))]
        if any(e >= k for e, k in zip(ends, kernel)):
            g.fail("a window lies wholly past the input; ONNX pools refuse padding as large as the kernel")
        if any(e < 0 for e in ends):
            g.fail("the last window ends before the input does by more than the padding (stride > kernel): "
                   "ONNX pads cannot be negative")
        if node.param.pooling_param.pool == P.MAX:
            g.op("MaxPool", [g.x(0)], g.y(0), kernel_shape=list(kernel), strides=list(stride), pads=list(pad) + ends)
        else:
            # The last window ends at size + ends: within the padded input, the kernel volume divides.
            if any(e > q for e, q in zip(ends, pad)):
                g.fail("an average window reaches past the padded input: cuDNN's divisor for it is not known")
            g.op("AveragePool", [g.x(0)], g.y(0), kernel_shape=list(kernel), strides=list(stride),
                 pads=list(pad) + ends, count_include_pad=1)


# --- C3D-v1.0's VIDEO_DATA ------------------------------------------------------------------

def is_c3d_video_data(layer_param, loc, net_param) -> bool:
    """C3D-v1.0's V1 VIDEO_DATA reads image_data_param; SSD's and TSN's VideoData read
    video_data_param (a message netdef's schema lacks)."""
    return layer_param.HasField("image_data_param")


def _image_data_extra(node, name: str):
    """A C3D field of image_data_param (kept in that block's extra), or None."""
    sub = node.loc.msg("image_data_param") if node.loc is not None else None
    vals = sub.extra.get(name) if sub is not None else None
    return vals[-1] if vals else None


@register_variant("VideoData", is_c3d_video_data)
class C3DVideoData(Layer):
    """C3D-v1.0's clip reader. facebook/C3D C3D-v1.0/src/caffe/layers/video_data_layer.cpp
    (SetUp): one or two tops; new_length > 0 (CHECK); new_height and new_width set together;
    the clip is read in colour (util/image_io.cpp: datum channels 3), so the data top is
    (batch_size, 3, new_length, crop_size, crop_size) with a crop_size, else (batch_size, 3,
    new_length, new_height, new_width); the label top is (batch_size, 1, 1, 1, 1). The frame
    size must exceed crop_size (CHECK_GT). ImageDataParameter (C3D's caffe.proto): new_length =
    11 [default 0], batch_size = 4, crop_size = 5 [0], new_height = 9, new_width = 10 [0]."""

    family = "data"
    source = True
    bottoms = (0, 0)
    tops = (1, 2)
    variant = "with image_data_param (C3D-v1.0's V1 VIDEO_DATA)"
    origin = forks.C3D
    checked_against = "facebook/C3D C3D-v1.0/src/caffe/layers/video_data_layer.cpp and caffe.proto (ImageDataParameter)"

    def source_shapes(self, node):
        ip = node.param.image_data_param
        length = _image_data_extra(node, "new_length")
        if length is None or isinstance(length, bool) or not isinstance(length, int) or length <= 0:
            bad(node, f"image_data_param.new_length must be a positive integer, got {length!r}",
                node.field_span("image_data_param"), notes=["C3D's VideoDataLayer CHECKs new_length > 0"])
        if bool(ip.new_height) != bool(ip.new_width):
            bad(node, "new_height and new_width must be set together", node.field_span("image_data_param"))
        if ip.batch_size == 0:
            bad(node, "image_data_param.batch_size must be positive", node.field_span("image_data_param"))
        if ip.crop_size and ip.new_height and ip.crop_size >= min(ip.new_height, ip.new_width):
            bad(node, f"crop_size {ip.crop_size} must be smaller than the {ip.new_height}x{ip.new_width} frames",
                node.field_span("image_data_param", "crop_size"), notes=["C3D CHECKs the frame size > crop_size"])
        if ip.crop_size:
            data = (ip.batch_size, 3, length, ip.crop_size, ip.crop_size)
        elif ip.new_height:
            data = (ip.batch_size, 3, length, ip.new_height, ip.new_width)
        else:
            data = "the frame size comes from the first clip (no crop_size or new_height/new_width)"
        return [data, (ip.batch_size, 1, 1, 1, 1)][:len(node.outputs)]

    def receptive_field(self, node, in_rfs):
        return [None] * len(node.outputs)


# --- TSN's VideoData (yjxiong/caffe) ---------------------------------------------------------------

# yjxiong/caffe src/caffe/proto/caffe.proto VideoDataParameter: batch_size = 4, new_height = 9,
# new_width = 10 [0], new_length = 11 [1], num_segments = 12 [1], modality = 13 [FLOW] (RGB = 0,
# FLOW = 1), name_pattern = 14, encoded = 15, grayscale = 16 [false]. SSD's VideoDataParameter
# (video_type, device_id, video_file, skip_frames) has none of the fields that tell TSN's apart.
TSN_VIDEO_DEFAULTS = {"batch_size": 0, "new_height": 0, "new_width": 0, "new_length": 1, "num_segments": 1,
                      "modality": "FLOW", "grayscale": False}
_TSN_ONLY = ("num_segments", "modality", "name_pattern", "grayscale", "encoded")


def is_tsn_video_data(layer_param, loc, net_param) -> bool:
    """A VideoData whose video_data_param has a field only TSN's (yjxiong/caffe) declares."""
    blocks = loc.extra.get("video_data_param") if loc is not None else None
    return bool(blocks) and isinstance(blocks[-1], dict) and any(k in blocks[-1] for k in _TSN_ONLY)


@register_variant("VideoData", is_tsn_video_data)
class TSNVideoData(Layer):
    """TSN's segment sampler. yjxiong/caffe src/caffe/layers/video_data_layer.cpp
    (DataLayerSetUp) reads num_segments snippets of new_length frames and stacks them on the
    channel axis (util/io.cpp ReadSegmentRGBToDatum: 3 channels a frame, 1 with grayscale;
    ReadSegmentFlowToDatum: 2, the x and y flow), resized to new_height x new_width when set;
    tops (batch_size, channels * new_length * num_segments, crop_size, crop_size) with a
    transform_param crop_size, else the frame size, and (batch_size, 1, 1, 1)."""

    family = "data"
    source = True
    bottoms = (0, 0)
    tops = (1, 2)
    fork_defaults = TSN_VIDEO_DEFAULTS
    variant = "with TSN's video_data_param fields (num_segments, modality, name_pattern, ...)"
    origin = forks.TSN
    checked_against = ("yjxiong/caffe src/caffe/layers/video_data_layer.cpp, src/caffe/util/io.cpp and caffe.proto "
                       "(VideoDataParameter)")

    def source_shapes(self, node):
        from .fork import ForkParams, _int
        p = ForkParams(node, "video_data_param", TSN_VIDEO_DEFAULTS)
        batch, length, segments = (_int(node, p, f) for f in ("batch_size", "new_length", "num_segments"))
        height, width = _int(node, p, "new_height"), _int(node, p, "new_width")
        modality = str(p.get("modality"))
        if modality not in ("RGB", "FLOW", "0", "1"):
            bad(node, f"video_data_param.modality must be RGB or FLOW, got {modality}", node.span)
        if batch <= 0 or length <= 0 or segments <= 0:
            bad(node, "video_data_param needs a positive batch_size, new_length and num_segments", node.span)
        per_frame = 2 if modality in ("FLOW", "1") else (1 if forks.as_bool(p.get("grayscale")) else 3)
        channels = per_frame * length * segments
        crop = node.param.transform_param.crop_size
        if crop:
            data = (batch, channels, crop, crop)
        elif height and width:
            data = (batch, channels, height, width)
        else:
            data = "the frame size comes from the first video (no crop_size or new_height/new_width)"
        return [data, (batch, 1, 1, 1)][:len(node.outputs)]

    def receptive_field(self, node, in_rfs):
        return [None] * len(node.outputs)


# --- C3D-v1.1's Convolution3D and Pooling3D (convolution3d_param / pooling3d_param) ----------------

# facebook/C3D C3D-v1.1/src/caffe/proto/caffe.proto: LayerParameter convolution3d_param = 6661,
# pooling3d_param = 6662. Convolution3DParameter: num_output = 1, bias_term = 2 [true], pad = 3 [0],
# kernel_size = 4, group = 5 [1], kernel_depth = 6, stride = 7 [1], temporal_stride = 8 [1],
# weight_filler = 9, bias_filler = 10, filter_group = 11 [1], temporal_pad = 12 [0].
# Pooling3DParameter: pool = 1 [MAX] (MAX, AVE, STOCHASTIC), kernel_size = 2, stride = 3 [1],
# pad = 4 [0], kernel_depth = 5, temporal_stride = 6 [1]. The layers (convolution3d_layer.cpp,
# pool3d_layer.cpp) compute what C3D-v1.0's do from convolution_param / pooling_param (conv.py,
# pool.py): the same output sizes, blobs and forward, so these variants only read the other message.
C3D11_CONV_DEFAULTS = {"bias_term": True, "pad": 0, "group": 1, "stride": 1, "temporal_stride": 1,
                       "filter_group": 1, "temporal_pad": 0}
C3D11_POOL_DEFAULTS = {"pool": "MAX", "pad": 0, "stride": 1, "temporal_stride": 1}


def is_c3d11_conv(layer_param, loc, net_param) -> bool:
    return loc is not None and bool(loc.extra.get("convolution3d_param"))


def is_c3d11_pool(layer_param, loc, net_param) -> bool:
    return loc is not None and bool(loc.extra.get("pooling3d_param"))


def c3d11_geometry(node, message: str):
    """(kernel, stride, pad) as (length, height, width) from C3D-v1.1's convolution3d_param or
    pooling3d_param: kernel_size and kernel_depth are required (no defaults), the rest default
    as the fork's caffe.proto says; the length is padded by temporal_pad (convolution only)."""
    from .fork import ForkParams, _int
    defaults = C3D11_CONV_DEFAULTS if message == "convolution3d_param" else C3D11_POOL_DEFAULTS
    p = ForkParams(node, message, defaults)
    for name in ("kernel_size", "kernel_depth"):
        if not p.has(name):
            bad(node, f"{message} has no {name}", node.span, notes=[f"C3D-v1.1's {message} needs {name}"])
    k, kd = _int(node, p, "kernel_size"), _int(node, p, "kernel_depth")
    s, ts, pd = _int(node, p, "stride"), _int(node, p, "temporal_stride"), _int(node, p, "pad")
    tp = _int(node, p, "temporal_pad") if message == "convolution3d_param" else 0
    if min(k, kd, s, ts) <= 0 or min(pd, tp) < 0:
        bad(node, f"{message}: kernel_size, kernel_depth, stride and temporal_stride must be positive, pads >= 0",
            node.span)
    return (kd, k, k), (ts, s, s), (tp, pd, pd)


def _c3d11_conv(node):
    """(num_output, bias_term, filter_group) of convolution3d_param."""
    from .fork import ForkParams, _int
    p = ForkParams(node, "convolution3d_param", C3D11_CONV_DEFAULTS)
    if not p.has("num_output"):
        bad(node, "convolution3d_param has no num_output", node.span)
    return _int(node, p, "num_output"), forks.as_bool(p.get("bias_term")) is not False, _int(node, p, "filter_group")


@register_variant("Convolution3D", is_c3d11_conv)
class Convolution3DV11(Layer):
    """C3D-v1.1's 3-D convolution (facebook/C3D C3D-v1.1/src/caffe/layers/convolution3d_layer.cpp,
    Reshape): out = (size + 2 pad - kernel) / stride + 1 per axis (length: kernel_depth,
    temporal_pad, temporal_stride); CHECK num_output > 0 and num_output % filter_group == 0;
    weight (num_output, C, kernel_depth, k, k), bias (1, 1, 1, 1, num_output); each filter group
    reads all C channels, so the output is one 3-D convolution."""

    family = "convolution"
    variant = "with convolution3d_param (C3D-v1.1)"
    origin = forks.C3D
    checked_against = "facebook/C3D C3D-v1.1/src/caffe/layers/convolution3d_layer.cpp and caffe.proto"

    def infer_shapes(self, node, in_shapes):
        shape = in_shapes[0]
        if len(shape) != 5:
            bad(node, f"Convolution3D needs a 5-D bottom (N, C, L, H, W), got {len(shape)} axes", node.span)
        kernel, stride, pad = c3d11_geometry(node, "convolution3d_param")
        num_output, _, groups = _c3d11_conv(node)
        if num_output <= 0 or groups <= 0 or num_output % groups:
            bad(node, f"num_output {num_output} must be positive and a multiple of filter_group {groups}",
                node.span, code=codes.BAD_GROUP)
        out = [shape[0], num_output]
        for i, name in enumerate(("length", "height", "width")):
            size = shape[2 + i] + 2 * pad[i]
            if kernel[i] > size:
                bad(node, f"kernel {kernel[i]} is larger than the padded input {name} {size}", node.span,
                    code=codes.BAD_GEOMETRY)
            out.append((size - kernel[i]) // stride[i] + 1)
        return [tuple(out)]

    def param_shapes(self, node, in_shapes):
        kernel, _, _ = c3d11_geometry(node, "convolution3d_param")
        num_output, bias, _ = _c3d11_conv(node)
        w = (num_output, in_shapes[0][1], *kernel)
        return [w, (1, 1, 1, 1, num_output)] if bias else [w]

    def filler_params(self, node):
        fillers = [fork_filler(node, "convolution3d_param", "weight_filler")]
        if _c3d11_conv(node)[1]:
            fillers.append(fork_filler(node, "convolution3d_param", "bias_filler"))
        return fillers

    def receptive_field(self, node, in_rfs):
        rf = in_rfs[0]
        if rf is None or rf.whole:
            return [rf]
        kernel, stride, pad = c3d11_geometry(node, "convolution3d_param")
        n = len(rf.size)
        return [window_rf(rf, kernel[-n:], stride[-n:], pad[-n:])]

    def cost(self, node, in_shapes, out_shapes):
        kernel, _, _ = c3d11_geometry(node, "convolution3d_param")
        macs = prod(out_shapes[0]) * in_shapes[0][1] * prod(kernel)
        return {"macs": macs, "flops": 2 * macs + (prod(out_shapes[0]) if _c3d11_conv(node)[1] else 0)}

    def to_onnx(self, node, g):
        """ONNX Conv with a 3-D kernel; the (1, 1, 1, 1, num_output) bias as a vector."""
        kernel, stride, pad = c3d11_geometry(node, "convolution3d_param")
        num_output, bias, _ = _c3d11_conv(node)
        ins = [g.x(0), g.param(0, "weight")]
        if bias:
            ins.append(g.param(1, "bias", (num_output,)))
        g.op("Conv", ins, g.y(0), kernel_shape=list(kernel), strides=list(stride), pads=list(pad) * 2)


@register_variant("Pooling3D", is_c3d11_pool)
class Pooling3DV11(Pooling3D):
    """C3D-v1.1's 3-D pooling (facebook/C3D C3D-v1.1/src/caffe/layers/pool3d_layer.cpp): out =
    ceil((size + 2 pad - kernel) / stride) + 1 for height and width, ceil((L - kernel_depth) /
    temporal_stride) + 1 for the length, no clip of the last window; pad only for AVE (CHECK);
    MAX over each window clipped to the input, AVE the clipped sum over the window clipped to the
    padded frame. STOCHASTIC is not implemented there. The shape rule, RF, cost and lowering are
    C3D-v1.0's (pool.Pooling3D); only where the parameters come from differs."""

    param = None
    fork_defaults = {}
    variant = "with pooling3d_param (C3D-v1.1)"
    origin = forks.C3D
    checked_against = "facebook/C3D C3D-v1.1/src/caffe/layers/pool3d_layer.cpp and caffe.proto"

    def method(self, node) -> str:
        from .fork import ForkParams
        m = str(ForkParams(node, "pooling3d_param", C3D11_POOL_DEFAULTS).get("pool"))
        m = {"0": "MAX", "1": "AVE", "2": "STOCHASTIC"}.get(m, m)
        if m not in ("MAX", "AVE"):
            bad(node, f"pooling3d_param.pool must be MAX or AVE, got {m}", node.span,
                notes=["C3D-v1.1's Pooling3D implements MAX and AVE only"])
        return m

    def geometry(self, node):
        kernel, stride, pad = c3d11_geometry(node, "pooling3d_param")
        if pad[1] and self.method(node) != "AVE":
            bad(node, "C3D pads only average pooling", node.span)
        return kernel, stride, pad

    def infer_shapes(self, node, in_shapes):
        shape = in_shapes[0]
        if len(shape) != 5:
            bad(node, f"Pooling3D needs a 5-D bottom (N, C, L, H, W), got {len(shape)} axes", node.span)
        return super().infer_shapes(node, in_shapes)


# C3D-v1.1's VideoDataParameter (its caffe.proto, 841-): batch_size = 4 [1], new_height = 9,
# new_width = 10 [0], new_length = 13, root_folder = 12, show_data = 14, use_image = 15,
# use_temporal_jitter = 16, sampling_rate = 17, max_sampling_rate = 18, use_sampling_rate_jitter = 19,
# use_multiple_label = 20 [false], num_of_labels = 21 [1]: the fields after 11 tell it from TSN's and SSD's.
C3D11_VIDEO_DEFAULTS = {"batch_size": 1, "new_height": 0, "new_width": 0, "use_multiple_label": False,
                        "num_of_labels": 1}
_C3D11_ONLY = ("root_folder", "show_data", "use_image", "use_temporal_jitter", "sampling_rate", "max_sampling_rate",
               "use_sampling_rate_jitter", "use_multiple_label", "num_of_labels")


def is_c3d11_video_data(layer_param, loc, net_param) -> bool:
    blocks = loc.extra.get("video_data_param") if loc is not None else None
    return bool(blocks) and isinstance(blocks[-1], dict) and any(k in blocks[-1] for k in _C3D11_ONLY)


@register_variant("VideoData", is_c3d11_video_data)
class C3D11VideoData(Layer):
    """C3D-v1.1's clip reader (facebook/C3D C3D-v1.1/src/caffe/layers/video_data_layer.cpp,
    DataLayerSetUp; data_transformer.cpp InferBlobShape(VolumeDatum)): clips read in colour
    (util/image_io.cpp: 3 channels), data (batch_size, 3, new_length, crop_size, crop_size) with a
    transform_param crop_size, else (batch_size, 3, new_length, new_height, new_width); the label
    (batch_size), or (batch_size, num_of_labels) with use_multiple_label."""

    family = "data"
    source = True
    bottoms = (0, 0)
    tops = (1, 2)
    fork_defaults = C3D11_VIDEO_DEFAULTS
    variant = "with C3D-v1.1's video_data_param fields (use_image, show_data, sampling_rate, ...)"
    origin = forks.C3D
    checked_against = ("facebook/C3D C3D-v1.1/src/caffe/layers/video_data_layer.cpp, data_transformer.cpp and "
                       "caffe.proto (VideoDataParameter)")

    def source_shapes(self, node):
        from .fork import ForkParams, _int
        p = ForkParams(node, "video_data_param", C3D11_VIDEO_DEFAULTS)
        if not p.has("new_length"):
            bad(node, "video_data_param has no new_length", node.span, notes=["C3D-v1.1's VideoData needs new_length"])
        batch, length = _int(node, p, "batch_size"), _int(node, p, "new_length")
        height, width = _int(node, p, "new_height"), _int(node, p, "new_width")
        if batch <= 0 or length <= 0:
            bad(node, "video_data_param needs a positive batch_size and new_length", node.span)
        crop = node.param.transform_param.crop_size
        if crop:
            data = (batch, 3, length, crop, crop)
        elif height and width:
            data = (batch, 3, length, height, width)
        else:
            data = "the frame size comes from the first clip (no crop_size or new_height/new_width)"
        label = (batch, _int(node, p, "num_of_labels")) if forks.as_bool(p.get("use_multiple_label")) else (batch,)
        return [data, label][:len(node.outputs)]

    def receptive_field(self, node, in_rfs):
        return [None] * len(node.outputs)
