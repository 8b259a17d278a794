"""The lowering context: what a layer's `to_onnx(node, g)` writes into, and the lowering
helpers several layer families share.

Each layer family lowers itself beside its shape rule (netdef/layers/<family>.py, method
`to_onnx(node, g)` with g a Lowering); the exporter (export/onnx.py) makes one Lowering per
layer. Layers reach everything through `g` and never import netdef.export: names and shapes
(g.x, g.y, g.in_shape), weights (g.param, g.blob), node builders (g.op, g.const, g.ints,
g.reduce, g.reshape), ONNX element types for Cast (g.FLOAT, g.INT64, ...), and the shared
pieces of Caffe semantics in ONNX terms: pooling geometry (g.pool, g.fit_end, g.crop_hw, used
by Pooling, SPP and Upsample's mask), x * scale + shift (g.affine), routing a result to the
layer's top (g.finish).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from .. import codes
from ..proto import pb
from .model import CUSTOM_DOMAIN
from .onnx_proto import TensorProto, make_node

NO_LOWERING_NOTE = ("export the layers before it with --outputs BLOB[,BLOB...], or emit it as a node of the "
                    f"custom domain '{CUSTOM_DOMAIN}' with --custom-ops (for a runtime plugin)")


def lowered_types() -> set[str]:
    """Layer types whose class has a to_onnx method."""
    from ..layers import base
    return {t for t in base.known_types() if getattr(base.get(t), "to_onnx", None) is not None}


class LowerError(Exception):
    def __init__(self, diagnostic):
        super().__init__(diagnostic.message)
        self.diagnostic = diagnostic


@dataclass
class Init:
    """An initializer whose data is computed only when written (weights stay lazy)."""
    name: str
    shape: tuple
    dtype: np.dtype
    make: Callable[[], np.ndarray]

    @property
    def nbytes(self) -> int:
        return int(math.prod(self.shape)) * np.dtype(self.dtype).itemsize


# --- per-layer lowering context ---------------------------------------------------------------

class Lowering:
    """What a layer's `to_onnx(node, g)` works with: ONNX names of its inputs and outputs,
    shapes, its weights (lazy), and node/constant builders that name things after the layer."""

    # ONNX tensor element types, for Cast's `to` (layers do not import the ONNX messages).
    FLOAT = TensorProto.FLOAT
    FLOAT16 = TensorProto.FLOAT16
    DOUBLE = TensorProto.DOUBLE
    INT64 = TensorProto.INT64
    # The note of a layer netdef cannot lower: what the user can do instead.
    NO_LOWERING_NOTE = NO_LOWERING_NOTE

    def __init__(self, ex, node):
        self.ex = ex
        self.node = node
        self.opset = ex.opset
        self.fp16 = ex.fp16
        self.phase = ex.graph.state.phase       # "TEST" or "TRAIN"

    # -- names and shapes -------------------------------------------------------------------
    def x(self, i: int = 0) -> str:
        return self.ex.name_of(self.node.inputs[i])

    def y(self, i: int = 0) -> str:
        return self.ex.name_of(self.node.outputs[i])

    def in_shape(self, i: int = 0) -> tuple:
        return tuple(self.node.inputs[i].meta["shape"])

    def out_shape(self, i: int = 0) -> tuple:
        return tuple(self.node.outputs[i].meta["shape"])

    def in_dyn(self, i: int = 0) -> tuple:
        return self.ex.dyn_of(self.node.inputs[i])

    def out_dyn(self, i: int = 0) -> tuple:
        return self.ex.dyn_of(self.node.outputs[i])

    @property
    def n_in(self) -> int:
        return len(self.node.inputs)

    @property
    def n_out(self) -> int:
        return len(self.node.outputs)

    def free_dim(self, i: int, axis: int, name: str) -> None:
        """Axis `axis` of output i has a length known only at run time (detections): the
        model declares it symbolic, `name`."""
        self.ex.free_dims.setdefault(id(self.node.outputs[i]), {})[axis] = name

    def alias(self, i: int, name: str) -> None:
        """Output i is `name` itself: the layer computes nothing in ONNX (Dropout, Split)."""
        self.ex.set_alias(self.node.outputs[i], name)

    # -- weights ----------------------------------------------------------------------------
    @property
    def n_blobs(self) -> int:
        return len(self.ex.blobs_of(self.node))

    def blob(self, i: int) -> np.ndarray:
        """Parameter blob i, materialised (float32)."""
        return np.asarray(self.ex.blobs_of(self.node)[i]())

    def blob_shape(self, i: int) -> tuple:
        return tuple(self.ex.blob_shapes_of(self.node)[i])

    def param(self, i: int, suffix: str, shape=None) -> str:
        """Parameter blob i as an initializer (lazy), optionally reshaped."""
        make = self.ex.blobs_of(self.node)[i]
        shape = tuple(shape) if shape is not None else self.blob_shape(i)
        dt = self.ex.float_dtype
        return self.ex.add_init(f"{self.node.name}.{suffix}", shape, dt,
                                lambda: np.asarray(make(), dtype=np.float32).reshape(shape).astype(dt, copy=False))

    # -- building ---------------------------------------------------------------------------
    def const(self, value, suffix: str, float32: bool = False) -> str:
        """A float constant in the compute type (float16 with --fp16), or float32 whatever it is."""
        arr = np.asarray(value, dtype=np.float32)
        dt = np.dtype(np.float32) if float32 else self.ex.float_dtype
        return self.ex.add_init(f"{self.node.name}.{suffix}", arr.shape, dt, lambda: arr.astype(dt))

    def ints(self, values, suffix: str) -> str:
        arr = np.asarray(values, dtype=np.int64)
        return self.ex.add_init(f"{self.node.name}.{suffix}", arr.shape, np.int64, lambda: arr)

    def tmp(self, suffix: str) -> str:
        return self.ex.unique(f"{self.node.name}/{suffix}")

    def op(self, op_type: str, inputs, outputs=None, name: str | None = None, **attrs):
        """Add one node; returns its output name (or the list, for several outputs). The first
        node a layer adds is named after the layer, the others `layer/op`."""
        if outputs is None:
            outputs = [self.tmp(op_type.lower())]
        elif isinstance(outputs, str):
            outputs = [outputs]
        if name is None:
            name = self.ex.unique(self.node.name if self.node.name not in self.ex.node_names else
                                  f"{self.node.name}/{op_type.lower()}", self.ex.node_names)
        else:
            name = self.ex.unique(name, self.ex.node_names)
        attrs = {k: v for k, v in attrs.items() if v is not None}
        self.ex.nodes.append(make_node(op_type, list(inputs), list(outputs), name=name, **attrs))
        return outputs[0] if len(outputs) == 1 else outputs

    def reduce(self, op_type: str, x: str, axes, keepdims: int, out=None) -> str:
        """ReduceX over `axes`: an input from opset 18 (13 for ReduceSum), an attribute before."""
        axes = [int(a) for a in axes]
        as_input = self.opset >= 18 or (op_type == "ReduceSum" and self.opset >= 13)
        if as_input:
            return self.op(op_type, [x, self.ints(axes, f"{op_type.lower()}_axes")], out, keepdims=keepdims)
        return self.op(op_type, [x], out, axes=axes, keepdims=keepdims)

    def mean(self, x: str, axes, out=None) -> str:
        """ReduceMean over `axes` (kept), in two steps where it spans more than one axis: first
        over the last axis, then over the others. onnxruntime's ReduceMean adds one value after
        another in float32, and over a large plane (172,800 values at 360 x 480) that loses up to
        ~7e-5 of the mean (measured, 1.31); two means of a few hundred values each lose ~100 times
        less (benchmarks/RESULTS.md, "argmax ties"). The counts are equal, so the mean of the
        means is the mean."""
        axes = sorted(int(a) for a in axes)
        if len(axes) < 2:
            return self.reduce("ReduceMean", x, axes, 1, out)
        rows = self.reduce("ReduceMean", x, axes[-1:], 1, self.tmp("mean_last"))
        return self.reduce("ReduceMean", rows, axes[:-1], 1, out)

    def reshape_target(self, shape, dyn=None) -> list[int]:
        """A Reshape target for `shape`: dims that follow the batch become -1 (at most one)."""
        dyn = dyn or (False,) * len(shape)
        target = [(-1 if d else int(s)) for s, d in zip(shape, dyn)]
        if target.count(-1) > 1:
            self.fail(f"the {self.node.type} output {tuple(shape)} has several axes that follow the batch; "
                      "it cannot be reshaped with a dynamic batch",
                      notes=["export with a fixed --batch"])
        return target

    def reshape(self, x: str, shape, dyn=None, out=None) -> str:
        return self.op("Reshape", [x, self.ints(self.reshape_target(shape, dyn), "shape")], out)

    def cast_float(self, x: str, out=None) -> str:
        return self.op("Cast", [x], out, to=self.FLOAT16 if self.fp16 else self.FLOAT)

    # -- shared lowerings ---------------------------------------------------------------------
    def affine(self, x: str, scale, shift, tag: str) -> str:
        """x * scale + shift, skipping the identity steps."""
        if scale != 1:
            x = self.op("Mul", [x, self.const(scale, f"{tag}_scale")], self.tmp(f"{tag}_scaled"))
        if shift != 0:
            x = self.op("Add", [x, self.const(shift, f"{tag}_shift")], self.tmp(f"{tag}_shifted"))
        return x

    def finish(self, x: str) -> None:
        """Route the last value to the layer's output (an Identity only when nothing was computed)."""
        if x == self.x(0):
            self.op("Identity", [x], self.y(0))
        else:
            self.ex.rename_output(x, self.y(0))

    @staticmethod
    def fit_end(size: int, begin: int, out: int, k: int, s: int) -> tuple[int, int | None]:
        """ONNX pools with floor((size + begin + end - k) / s) + 1 windows. Returns (end padding,
        cropped size or None) that give exactly Caffe's `out` windows from the same starts."""
        end = (out - 1) * s + k - size - begin
        if end >= 0:
            return end, None
        # Caffe stops before the last input rows: drop them instead of padding negatively.
        return 0, (out - 1) * s + k - begin

    def crop_hw(self, x: str, crops, tag: str) -> str:
        """Keep the first crops[i] rows (i = 0) / columns (i = 1) of (N, C, H, W); None keeps all."""
        axes = [i + 2 for i in range(2) if crops[i] is not None]
        ends = [crops[i] for i in range(2) if crops[i] is not None]
        return self.op("Slice", [x, self.ints([0] * len(axes), f"{tag}_starts"), self.ints(ends, f"{tag}_ends"),
                                 self.ints(axes, f"{tag}_axes")], self.tmp(tag))

    def pool(self, x: str, y: str, method: int, kernel, stride, pad, in_hw, out_hw, tag: str = "pool") -> str:
        """Caffe's pooling on (N, C, H, W) with output size out_hw (already Caffe's: rounded up,
        then clipped so the last window starts inside the image or its leading padding)."""
        P = pb.PoolingParameter
        if method == P.STOCHASTIC:
            self.fail("STOCHASTIC pooling is random at training time and has no CPU forward in Caffe; "
                      "ONNX has no equivalent")
        ends, crops = [], []
        for i in range(2):
            e, c = self.fit_end(in_hw[i], pad[i], out_hw[i], kernel[i], stride[i])
            ends.append(e)
            crops.append(c)
        if any(c is not None for c in crops):
            x = self.crop_hw(x, crops, f"{tag}_crop")
        common = dict(kernel_shape=list(kernel), strides=list(stride))
        if any(e >= k for e, k in zip(ends, kernel)):
            return self._pool_explicit(x, y, method, kernel, stride, pad, ends, in_hw, out_hw, tag)
        if method == P.MAX:
            # MaxPool ignores padding as Caffe does; the end padding only adds Caffe's overhang.
            return self.op("MaxPool", [x], y, pads=[pad[0], pad[1], ends[0], ends[1]], **common)
        # AVE: Caffe divides by the window clipped to the *padded* image: padding counts, the
        # round-up overhang past it does not. count_include_pad=1 gets the overhang wrong and 0
        # gets the padding wrong, so the padding becomes real zeros first.
        if list(ends) == list(pad):
            return self.op("AveragePool", [x], y, pads=[pad[0], pad[1], pad[0], pad[1]], count_include_pad=1,
                           **common)
        if any(pad):
            padded = self.op("Pad", [x, self.ints([0, 0, pad[0], pad[1], 0, 0, pad[0], pad[1]], f"{tag}_pads")],
                             self.tmp(f"{tag}_pad"), mode="constant")
            hw = [in_hw[i] + 2 * pad[i] if crops[i] is None else crops[i] + pad[i] for i in range(2)]
            ends2, crops2 = [], []
            for i in range(2):
                e, c = self.fit_end(hw[i], 0, out_hw[i], kernel[i], stride[i])
                ends2.append(e)
                crops2.append(c)
            if any(c is not None for c in crops2):
                padded = self.crop_hw(padded, crops2, f"{tag}_crop2")
            return self.op("AveragePool", [padded], y, pads=[0, 0, ends2[0], ends2[1]], count_include_pad=0,
                           **common)
        return self.op("AveragePool", [x], y, pads=[0, 0, ends[0], ends[1]], count_include_pad=0, **common)

    def _pool_explicit(self, x, y, method, kernel, stride, pad, ends, in_hw, out_hw, tag):
        """Windows that lie wholly past the input (stride larger than the kernel, with the
        round-up): ONNX pools refuse padding as large as the kernel. Caffe's MAX of an empty
        window is -FLT_MAX, its initial value: the padding is made explicit with that value. Its
        AVE divides a zero sum by min(start + k, H + pad) - start, negative or zero past the input
        (so -0, +0 or NaN): the windows that meet the input are pooled as usual, and the empty ones
        appended as zeros times 0 / that size. (A zero-filled Pad before the pool, as for MAX,
        would be fused into the pool by onnxruntime's optimizer, which then refuses the model.)"""
        P = pb.PoolingParameter
        common = dict(kernel_shape=list(kernel), strides=list(stride))
        if method == P.MAX:
            pads = self.ints([0, 0, pad[0], pad[1], 0, 0, ends[0], ends[1]], f"{tag}_pads")
            fill = float(-np.finfo(np.float32).max)
            padded = self.op("Pad", [x, pads, self.const(fill, f"{tag}_fill")], self.tmp(f"{tag}_pad"),
                             mode="constant")
            return self.op("MaxPool", [padded], y, **common)
        valid = [sum(1 for o in range(out_hw[i]) if o * stride[i] - pad[i] < in_hw[i]) for i in range(2)]
        inner = self.pool(x, self.tmp(f"{tag}_meets_input"), method, kernel, stride, pad, in_hw, valid, f"{tag}_in")
        tail = self.ints([0, 0, 0, 0, 0, 0, out_hw[0] - valid[0], out_hw[1] - valid[1]], f"{tag}_empty_pads")
        padded = self.op("Pad", [inner, tail], self.tmp(f"{tag}_with_empty"), mode="constant")
        sizes = []
        for i in range(2):
            start = np.arange(out_hw[i]) * stride[i] - pad[i]
            sizes.append(np.minimum(start + kernel[i], in_hw[i] + pad[i]) - start)
        with np.errstate(divide="ignore", invalid="ignore"):
            empty = 0.0 / np.outer(sizes[0], sizes[1]).astype(np.float64)
        factor = np.where(np.outer(np.arange(out_hw[0]) < valid[0], np.arange(out_hw[1]) < valid[1]), 1.0, empty)
        return self.op("Mul", [padded, self.const(factor, f"{tag}_empty_values")], y)

    def fail(self, why: str, span=None, notes=()):
        raise LowerError(codes.EXPORT_UNSUPPORTED.at(span or self.node.span, layer=self.node.name,
                                                     type=self.node.type, why=why, notes=list(notes)))
