"""The output size of Caffe's convolutions, with a kernel larger than its padded input: shared by
the convolution layers of conv.py (BVLC and the forks) and their NumPy reference and export."""
from __future__ import annotations

from .. import codes
from .base import bad, fmt_shape

# --- Caffe's output size: C++ int division, which truncates toward zero ----------------------
# BVLC/caffe src/caffe/layers/conv_layer.cpp (ConvolutionLayer::compute_output_shape) computes
# output_dim = (input_dim + 2 * pad - kernel_extent) / stride + 1 in int arithmetic, and nothing
# compares the kernel with the input: a kernel larger than the padded input gives (e.g. input 3,
# kernel 4, stride 2) (3 - 4) / 2 + 1 = 0 + 1 = 1 window, which im2col_cpu (src/caffe/util/
# im2col.cpp) fills with zeros where it reads past the input. Blob::Reshape (src/caffe/blob.cpp)
# refuses only a negative size (CHECK_GE(shape[i], 0)). A size of 0 passes Reshape, but a Blob
# of 0 elements never gets memory, so Blob::mutable_cpu_data's CHECK(data_) aborts the first code
# that writes it: BaseConvolutionLayer::Reshape (base_conv_layer.cpp) fills the bias multiplier
# (out_spatial_dim_ elements) while setting the layer up when bias_term is set, so Caffe refuses
# to load the net; without a bias the net loads and the forward aborts on the empty top
# (checked with brocolli-caffe 9.0.2: tests/data/conformance/ssd_fork/conv_*).

def caffe_div(a: int, b: int) -> int:
    """C++'s a / b for b > 0: truncated toward zero, where Python's // rounds down."""
    return a // b if a >= 0 else -(-a // b)


def conv_size(padded: int, extent: int, stride: int) -> int:
    """Caffe's number of windows on one axis (compute_output_shape)."""
    return caffe_div(padded - extent, stride) + 1


def end_pad(size: int, pad: int, pad_end: int, extent: int, stride: int, out: int) -> int:
    """The padding after an axis that Caffe's windows read: `pad_end`, or more where the kernel is
    larger than the padded input and the last window reads zeros past it. For out = 0, what one
    window needs (an exporter computes one and drops it)."""
    return max(pad_end, (max(out, 1) - 1) * stride + extent - size - pad)


def rule(size: int, padding: str, extent: int, stride: int) -> str:
    return f"({size} + {padding} - {extent}) / {stride} + 1, the division truncating toward zero"


def too_small(node, axis: str, o: int, formula: str, blob: str, shape, field, empty_aborts: str | None):
    """E402 for a negative size, and for 0 where Caffe aborts setting the layer up (`empty_aborts`
    names the buffer of out_size elements it fills then); a positive size, or 0 that Caffe loads,
    is left to kernel_larger."""
    if o < 0:
        bad(node, f"the output {axis} would be {o} = {formula}, for '{blob}' {fmt_shape(shape)}", field,
            code=codes.BAD_GEOMETRY,
            notes=["the input is too small for this layer: Caffe's Blob::Reshape refuses a negative size; "
                   "use a larger input or a smaller kernel"])
    if o == 0 and empty_aborts:
        bad(node, f"the output {axis} would be 0 = {formula}, for '{blob}' {fmt_shape(shape)}", field,
            code=codes.BAD_GEOMETRY,
            notes=[f"Caffe aborts setting the layer up: it fills {empty_aborts}, a buffer of 0 elements "
                   "(Blob::mutable_cpu_data's CHECK(data_))", "use a larger input or a smaller kernel"])


def kernel_larger(node, diags, small, out_sizes, span):
    """W416 when a kernel is larger than its padded input on some axes; `small` holds (axis name,
    kernel text, input size, padding text) for them."""
    if not small:
        return
    detail = "; ".join(f"{axis}: {k} on {size} + {padding}" for axis, k, size, padding in small)
    windows = " x ".join(str(o) for o in out_sizes) + " windows"
    notes = ["a deploy file often gives a placeholder input size; pass the real one with --input NAME=N,C,H,W"]
    if 0 in out_sizes:
        windows += ", an empty top"
        notes.insert(0, "Caffe loads the net, but its forward aborts on the empty top (Blob::mutable_cpu_data's "
                        "CHECK(data_) on a blob of 0 elements)")
    else:
        windows += ", reading zeros past the input"
    diags.add(codes.CONV_KERNEL_LARGER.at(span, layer=node.name, detail=f"({detail})", windows=windows, notes=notes))


def onnx_conv(g, ins, y, kernel, stride, pad, pad_end, extents, in_sizes, out_sizes, **attrs):
    """ONNX Conv with Caffe's windows: ONNX refuses a kernel larger than the padded input and
    rounds the window count down, so the end padding is grown to what Caffe's last window reads
    (zeros past the input). An axis with 0 windows (Caffe loads such a net when the layer has no
    bias) gets one window, which a Slice then drops: the top is empty, as Caffe's."""
    ends = [end_pad(in_sizes[i], pad[i], pad_end[i], extents[i], stride[i], out_sizes[i]) for i in range(len(kernel))]
    empty = [i for i, o in enumerate(out_sizes) if o == 0]
    conv_y = g.tmp("conv") if empty else y
    g.op("Conv", ins, conv_y, kernel_shape=list(kernel), strides=list(stride), pads=list(pad) + ends, **attrs)
    if empty:
        axes = [2 + i for i in empty]
        g.op("Slice", [conv_y, g.ints([0] * len(axes), "empty_starts"), g.ints([0] * len(axes), "empty_ends"),
                       g.ints(axes, "empty_axes")], y)
