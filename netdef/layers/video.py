"""video-caffe's N-D convolution and pooling (chuckcho/video-caffe): NdConvolution and NdPooling,
cuDNN-only layers whose geometry comes from the fork's BlobShape fields kernel_shape,
stride_shape and pad_shape (one dim per spatial axis) inside convolution_param / pooling_param,
kept by the parser in those blocks' extra. C3D's Convolution3D / Pooling3D are in conv.py and
pool.py.
"""
from __future__ import annotations

from .. import codes
from ..forks import VIDEO_CAFFE
from ..proto import pb
from .base import Layer, bad, prod, register, weight_bias_fillers, window_rf
from .convsize import conv_size

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
