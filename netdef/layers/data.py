"""Layers that bring data into a net, and the Parameter and Python layers.

A data layer's top shape follows from its parameters where Caffe's setup does not need the data
itself: Input and DummyData give shapes, MemoryData gives all four sizes, ImageData gives the
channels (is_color) and, with new_height/new_width or a crop, the spatial size. Data reads its
channel count from the database, HDF5Data everything but the batch from its files: netdef says
so, and `--input NAME=N,C,H,W` supplies the shape. Labels are (batch_size,) as in Caffe master.
"""
from __future__ import annotations

from .. import codes
from .base import Layer, bad, fmt_shape, register


def _shape(blob_shape) -> tuple:
    return tuple(int(d) for d in blob_shape.dim)


class Source(Layer):
    source = True
    bottoms = (0, 0)
    tops = (1, 2)

    def receptive_field(self, node, in_rfs):
        return [None] * len(node.outputs)

    def cost(self, node, in_shapes, out_shapes):
        return {"macs": 0, "flops": 0}


def _with_label(node, data, batch):
    return [data, (batch,)][:len(node.outputs)]


@register("Input")
class Input(Source):
    param = "input_param"
    tops = (1, None)

    def check(self, node, diags):
        n, k = len(node.param.top), len(node.param.input_param.shape)
        if k not in (0, 1, n):
            diags.add(codes.BAD_PARAM.at(node.field_span("input_param"),
                                         notes=["give 'shape' once (shared by every top) or once per top"],
                                         message=f"layer '{node.name}': {k} shapes for {n} tops"))

    def source_shapes(self, node):
        shapes = node.param.input_param.shape
        if not shapes:
            return ["the Input layer gives no shape"] * len(node.outputs)
        out = []
        for i in range(len(node.outputs)):
            s = _shape(shapes[0 if len(shapes) == 1 else i])
            if any(d < 0 for d in s):
                bad(node, f"input shape {fmt_shape(s)} has a negative dimension",
                    node.field_span("input_param", "shape", 0 if len(shapes) == 1 else i))
            out.append(s)
        return out


@register("DummyData")
class DummyData(Source):
    param = "dummy_data_param"
    tops = (1, None)

    def source_shapes(self, node):
        dp = node.param.dummy_data_param
        n = len(node.outputs)
        legacy = [list(dp.num), list(dp.channels), list(dp.height), list(dp.width)]
        span = node.field_span("dummy_data_param")
        if any(legacy):
            if dp.shape:
                bad(node, "both shape and the legacy num/channels/height/width are given", span)
            for name, vals in zip(("num", "channels", "height", "width"), legacy):
                if len(vals) not in (1, n):
                    bad(node, f"{name} is given {len(vals)} times for {n} tops", span,
                        notes=["give each legacy dimension once, or once per top"])
            return [tuple(v[0 if len(v) == 1 else i] for v in legacy) for i in range(n)]
        if len(dp.shape) not in (1, n):
            bad(node, f"shape is given {len(dp.shape)} times for {n} tops", span,
                notes=["give shape once (shared) or once per top"])
        return [_shape(dp.shape[0 if len(dp.shape) == 1 else i]) for i in range(n)]


@register("MemoryData")
class MemoryData(Source):
    param = "memory_data_param"
    tops = (2, 2)

    def source_shapes(self, node):
        mp = node.param.memory_data_param
        dims = (mp.batch_size, mp.channels, mp.height, mp.width)
        if 0 in dims:
            missing = [f for f, d in zip(("batch_size", "channels", "height", "width"), dims) if not d]
            bad(node, f"memory_data_param needs positive batch_size, channels, height and width; "
                      f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not set",
                node.field_span("memory_data_param"))
        return _with_label(node, dims, mp.batch_size)


def _crop(node) -> int:
    return node.param.transform_param.crop_size


@register("ImageData")
class ImageData(Source):
    param = "image_data_param"

    def source_shapes(self, node):
        ip = node.param.image_data_param
        tp = node.param.transform_param
        batch = ip.batch_size
        channels = 3 if (ip.is_color or tp.force_color) and not tp.force_gray else 1
        crop = _crop(node)
        if crop:
            data = (batch, channels, crop, crop)
        elif ip.new_height and ip.new_width:
            data = (batch, channels, ip.new_height, ip.new_width)
        else:
            data = "the image size comes from the first image file (no new_height/new_width or crop_size)"
        return _with_label(node, data, batch)


@register("Data")
class Data(Source):
    param = "data_param"

    def source_shapes(self, node):
        batch = node.param.data_param.batch_size
        crop = _crop(node)
        size = f"{crop}x{crop} crops of " if crop else ""
        why = f"the channel count{'' if crop else ' and image size'} of {size}the database '{node.param.data_param.source}' " \
              f"are read from the data"
        return _with_label(node, why, batch)


@register("WindowData")
class WindowData(Source):
    param = "window_data_param"

    def source_shapes(self, node):
        batch = node.param.window_data_param.batch_size
        return _with_label(node, "the channel count is read from the window file", batch)


@register("HDF5Data")
class HDF5Data(Source):
    param = "hdf5_data_param"
    tops = (1, None)

    def source_shapes(self, node):
        return [f"every dimension but the batch comes from the HDF5 files listed in "
                f"'{node.param.hdf5_data_param.source}'"] * len(node.outputs)


@register("Parameter")
class Parameter(Layer):
    """Exposes one learnable blob of the given shape as its top."""

    param = "parameter_param"
    bottoms = (0, 0)
    tops = (1, 1)

    def infer_shapes(self, node, in_shapes):
        return [_shape(node.param.parameter_param.shape)]

    def param_shapes(self, node, in_shapes):
        return [_shape(node.param.parameter_param.shape)]

    def filler_params(self, node):
        return [None]  # ParameterLayer leaves the blob unfilled (zeros)

    def receptive_field(self, node, in_rfs):
        return [None]


@register("Python")
class Python(Layer):
    """A layer implemented in a Python module: netdef describes it and never imports it."""

    param = "python_param"
    bottoms = (0, None)
    tops = (0, None)

    @property
    def opaque(self):
        return "a Python layer runs user code, which netdef never imports"

    def describe(self, node) -> str:
        pp = node.param.python_param
        return f"{pp.module}.{pp.layer}" if pp.module or pp.layer else "an unnamed module"


@register("Filter")
class Filter(Layer):
    bottoms = (2, None)
    tops = (1, None)
    opaque = "its output batch size depends on the selector values"
