"""Layers that bring data into a net, and the Parameter and Python layers.

A data layer's top shape follows from its parameters where Caffe's setup does not need the data
itself: Input and DummyData give shapes, MemoryData gives all four sizes, ImageData gives the
channels (is_color alone: force_color/force_gray are for a Data layer's encoded entries) and,
with new_height/new_width or a crop, the spatial size. The setup CHECKs Caffe would fail on are
errors here (new_height without new_width, a crop larger than the resized image, WindowData
without a crop_size, mean_file with mean_value). Data reads its
channel count from the database, HDF5Data everything but the batch from its files: netdef says
so, and `--input NAME=N,C,H,W` supplies the shape. Labels are (batch_size,) as in Caffe master.
"""
from __future__ import annotations

from .. import codes
from .base import Layer, bad, fmt_shape, register


def _shape(blob_shape) -> tuple:
    return tuple(int(d) for d in blob_shape.dim)


class Source(Layer):
    family = "data"
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
        if len(dp.data_filler) not in (0, 1, n):
            bad(node, f"{len(dp.data_filler)} data_filler blocks for {n} tops", ("dummy_data_param", "data_filler"),
                notes=["give no data_filler (zeros), one shared by every top, or one per top"])
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


class BaseData(Source):
    """Caffe's BaseDataLayer: its LayerSetUp builds a DataTransformer from transform_param."""

    def check(self, node, diags):
        tp = node.param.transform_param
        if tp.HasField("mean_file") and tp.mean_value:
            # DataTransformer's constructor: CHECK_EQ(mean_value_size(), 0) with a mean_file.
            diags.add(codes.BAD_PARAM.at(node.field_span("transform_param", "mean_value"),
                                         notes=["give the mean as a file or as values, not both"],
                                         message=f"layer '{node.name}': transform_param sets both mean_file and "
                                                 "mean_value"))


@register("MemoryData")
class MemoryData(BaseData):
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
class ImageData(BaseData):
    param = "image_data_param"
    tops = (2, 2)  # ExactNumTopBlobs 2: the images and their labels

    @staticmethod
    def channels(node) -> int:
        # ReadImageToCVMat(path, new_height, new_width, is_color) decodes in colour or in grey;
        # transform_param's force_color/force_gray only reach encoded Datum entries (Data).
        return 3 if node.param.image_data_param.is_color else 1

    def check(self, node, diags):
        super().check(node, diags)
        ip = node.param.image_data_param
        tp = node.param.transform_param
        name = node.name
        if bool(ip.new_height) != bool(ip.new_width):
            given, missing = ("new_height", "new_width") if ip.new_height else ("new_width", "new_height")
            diags.add(codes.BAD_PARAM.at(node.field_span("image_data_param", given),
                                         notes=[f"set {missing} too (resize to new_height x new_width), or neither "
                                                "(keep each image's size)"],
                                         message=f"layer '{name}': {given} is set without {missing}; Caffe needs "
                                                 "new_height and new_width set together"))
        if ip.batch_size == 0:
            diags.add(codes.BAD_PARAM.at(node.field_span("image_data_param", "batch_size"),
                                         message=f"layer '{name}': batch_size must be positive, got 0"))
        size = (ip.new_height, ip.new_width) if ip.new_height and ip.new_width else None
        crop = tp.crop_size
        if crop and size and crop > min(size):
            # DataTransformer::InferBlobShape: CHECK_GE(img_height, crop_size), same for the width.
            diags.add(codes.BAD_PARAM.at(node.field_span("transform_param", "crop_size"),
                                         notes=[f"crop_size can be at most {min(size)} here"],
                                         message=f"layer '{name}': crop_size {crop} is larger than the "
                                                 f"{size[0]}x{size[1]} image new_height/new_width resize to"))
        channels = self.channels(node)
        if len(tp.mean_value) not in (0, 1, channels):
            first_extra = channels if len(tp.mean_value) > channels else 0
            diags.add(codes.BAD_PARAM.at(node.field_span("transform_param", "mean_value", first_extra),
                                         notes=["give one mean_value for every channel, or one shared by all"],
                                         message=f"layer '{name}': {len(tp.mean_value)} mean_value(s) for {channels} "
                                                 f"channels (is_color: {'true' if ip.is_color else 'false'})"))
        for flag in ("force_color", "force_gray"):
            if getattr(tp, flag):
                diags.add(codes.PARAM_IGNORED.at(
                    node.field_span("transform_param", flag),
                    notes=["force_color/force_gray apply to encoded entries of a Data layer's database"],
                    message=f"layer '{name}': {flag} has no effect on ImageData; image_data_param's is_color "
                            f"decides the channels ({channels} here)"))

    def source_shapes(self, node):
        ip = node.param.image_data_param
        batch = ip.batch_size
        crop = _crop(node)
        if crop:
            data = (batch, self.channels(node), crop, crop)
        elif ip.new_height and ip.new_width:
            data = (batch, self.channels(node), ip.new_height, ip.new_width)
        else:
            data = "the image size comes from the first image file (no new_height/new_width or crop_size)"
        return _with_label(node, data, batch)


@register("Data")
class Data(BaseData):
    param = "data_param"

    def check(self, node, diags):
        super().check(node, diags)
        if not node.param.data_param.batch_size:
            # DataParameter.batch_size has no default; load_batch's CHECK(batch->data_.count())
            # fails on the empty batch.
            diags.add(codes.MISSING_PARAM.at(node.field_span("data_param"), what="batch_size", layer=node.name,
                                             type=node.type, notes=["batch_size is the number of items per batch"]))
        tp = node.param.transform_param
        if tp.force_color and tp.force_gray:
            diags.add(codes.PARAM_IGNORED.at(
                node.field_span("transform_param", "force_gray"),
                notes=["Caffe refuses encoded entries with both set and ignores both for raw ones"],
                message=f"layer '{node.name}': force_color and force_gray are both set; keep one"))

    def source_shapes(self, node):
        batch = node.param.data_param.batch_size
        crop = _crop(node)
        size = f"{crop}x{crop} crops of " if crop else ""
        why = f"the channel count{'' if crop else ' and image size'} of {size}the database '{node.param.data_param.source}' " \
              f"are read from the data"
        return _with_label(node, why, batch)


@register("WindowData")
class WindowData(BaseData):
    param = "window_data_param"
    tops = (2, 2)  # ExactNumTopBlobs 2: the warped windows and their labels

    def check(self, node, diags):
        super().check(node, diags)
        if not _crop(node):
            # WindowDataLayer::DataLayerSetUp: CHECK_GT(crop_size, 0): every window is warped
            # to crop_size x crop_size.
            diags.add(codes.MISSING_PARAM.at(node.field_span("transform_param", "crop_size"), what="crop_size",
                                             layer=node.name, type=node.type,
                                             notes=["write transform_param { crop_size: N }, the size every window "
                                                    "is warped to"]))

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

    family = "data"
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
    family = "shape"
    bottoms = (2, None)
    tops = (1, None)
    opaque = "its output batch size depends on the selector values"


# --- data layers of Caffe forks ----------------------------------------------------------------

@register("ImageLabelmapData")
class ImageLabelmapData(ImageData):
    """HED's image + edge-map pairs. s9xie/hed src/caffe/layers/image_labelmap_data_layer.cpp
    reads image_data_param (BVLC's message): each source line names an image and its ground-truth
    map, read in grey (one channel) at the image's size, and both go through the
    DataTransformer; tops (batch_size, 3 or 1, H, W) and (batch_size, 1, H, W). H and W are
    known when new_height/new_width or crop_size fix them, as for ImageData."""

    origin = "the HED fork of Caffe (s9xie/hed)"
    checked_against = "s9xie/hed src/caffe/layers/image_labelmap_data_layer.cpp"

    def source_shapes(self, node):
        data = super().source_shapes(node)[0]
        if isinstance(data, str):
            return [data] * len(node.outputs)
        return [data, (data[0], 1) + tuple(data[2:])][:len(node.outputs)]


@register("ImageSegData")
class ImageSegData(ImageLabelmapData):
    """DeepLab's image + label-map pairs (hszhao/PSPNet src/caffe/layers/image_seg_data_layer.cpp,
    DeepLab): like ImageLabelmapData, (batch, C, H, W) images and (batch, 1, H, W) labels; a
    third top holds each image's (height, width) as (batch, 1, 1, 2) (DataLayerSetUp's
    top[2]->Reshape in TheLegendAli/DeepLab-Context, deeplab-public v1, and
    talent518/deeplab-public-ver2). Sizes from new_height/new_width or crop_size; DeepLab v2's
    transform_param crop_height and crop_width (its TransformationParameter 10 and 9) crop to
    crop_height x crop_width, and must come together, without crop_size ("Must either specify
    crop_size or both crop_height and crop_width")."""

    origin = "the DeepLab fork of Caffe (deeplab-public; also hszhao/PSPNet)"
    checked_against = ("hszhao/PSPNet src/caffe/layers/image_seg_data_layer.cpp; talent518/deeplab-public-ver2 "
                       "and TheLegendAli/DeepLab-Context (deeplab-public) src/caffe/layers/image_seg_data_layer.cpp")
    tops = (1, 3)

    @staticmethod
    def crop_hw(node):
        """DeepLab v2's (crop_height, crop_width) from transform_param, or None."""
        sub = node.loc.msg("transform_param") if node.loc is not None else None
        extra = sub.extra if sub is not None else {}
        given = {crop_field: extra[crop_field][-1] for crop_field in ("crop_height", "crop_width")
                 if extra.get(crop_field)}
        if not given:
            return None
        if len(given) == 1 or node.param.transform_param.HasField("crop_size"):
            bad(node, "give crop_size, or crop_height and crop_width together", node.field_span("transform_param"),
                notes=["DeepLab's ImageSegDataLayer: \"Must either specify crop_size or both crop_height and "
                       "crop_width\""])
        for name, v in given.items():
            if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
                bad(node, f"transform_param.{name} must be a positive integer, got {v!r}",
                    node.field_span("transform_param"))
        return given["crop_height"], given["crop_width"]

    def source_shapes(self, node):
        hw = self.crop_hw(node)
        if hw is not None:
            batch = node.param.image_data_param.batch_size
            shapes = [(batch, self.channels(node)) + hw, (batch, 1) + hw]
        else:
            shapes = list(super().source_shapes(node))
            batch = node.param.image_data_param.batch_size
        if len(node.outputs) == 3:
            shapes = list(shapes[:2]) + [(batch, 1, 1, 2)]
        return shapes[:len(node.outputs)]
