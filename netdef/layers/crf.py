"""CRF-as-RNN's mean-field inference layer (torrvision/caffe, the submodule of torrvision/crfasrnn).

torrvision/caffe (master) src/caffe/layers/multi_stage_meanfield.cpp, meanfield_iteration.cpp
and src/caffe/util/modified_permutohedral.cpp: bottoms (unary, Q0, image); each of
num_iterations stages takes the softmax of the previous stage's output (of Q0 first), filters it
with a spatial Gaussian (features x / theta_gamma, y / theta_gamma) and a bilateral one
(x / theta_alpha, y / theta_alpha, the image's first three channels / theta_beta), both through
a permutohedral lattice and normalised by the filtered ones, mixes the two with blobs 0 and 1
(C x C), applies the compatibility blob 2 (C x C), and subtracts the result from the unary.
"""
from __future__ import annotations

from .. import codes
from ..forks import CRFASRNN
from .base import Layer, bad, fmt_shape, prod, register
from .fork import ForkParams, _int

# torrvision/caffe (master) caffe.proto MultiStageMeanfieldParameter: compatibility_mode = 1
# [POTTS], threshold = 2, theta_alpha = 3 [10], theta_beta = 4 [10], theta_gamma = 5 [10],
# num_iterations = 6 [1], spatial_filter_weight = 7 [1], bilateral_filter_weight = 8 [1],
# forced_spatial_filter_weight = 9, forced_bilateral_filter_weight = 10.
MEANFIELD_DEFAULTS = {"compatibility_mode": "POTTS", "theta_alpha": 10.0, "theta_beta": 10.0, "theta_gamma": 10.0,
                      "num_iterations": 1, "spatial_filter_weight": 1.0, "bilateral_filter_weight": 1.0}
# The lattice's feature dimensions: 2 for the spatial kernel, 5 for the bilateral one.
SPATIAL_D, BILATERAL_D = 2, 5


def meanfield_params(node) -> ForkParams:
    return ForkParams(node, "multi_stage_meanfield_param", MEANFIELD_DEFAULTS)


def num_iterations(node) -> int:
    p = meanfield_params(node)
    raw = p.get("num_iterations")
    if isinstance(raw, bool) or not isinstance(raw, int):
        bad(node, f"multi_stage_meanfield_param.num_iterations must be an integer, got {raw!r}", p.span(),
            notes=["the fork's caffe.proto declares it uint32"])
    n = _int(node, p, "num_iterations")
    if n <= 1:
        # MultiStageMeanfieldLayer::LayerSetUp: CHECK_GT(num_iterations_, 1).
        bad(node, f"num_iterations must be greater than 1, got {n}", p.span(),
            notes=["MultiStageMeanfieldLayer::LayerSetUp checks \"Number of iterations must be greater than 1.\""])
    for name in ("theta_alpha", "theta_beta", "theta_gamma"):
        try:
            v = float(p.get(name))
        except (TypeError, ValueError):
            bad(node, f"multi_stage_meanfield_param.{name} must be a number, got {p.get(name)!r}", p.span())
        if v == 0:
            bad(node, f"multi_stage_meanfield_param.{name} must not be 0 (the lattice features divide by it)", p.span())
    if str(p.get("compatibility_mode")) != "POTTS":
        bad(node, f"compatibility_mode {p.get('compatibility_mode')!s}: the fork's Mode has POTTS only", p.span())
    return n


@register("MultiStageMeanfield")
class MultiStageMeanfield(Layer):
    """CRF-as-RNN's mean-field iterations: top (N, C, H, W) of the unary; blobs (1, 1, C, C)
    x 3 (spatial weights, bilateral weights, compatibility). The NumPy reference rebuilds the
    fork's permutohedral lattices (netdef/reference/crf.py); ONNX has no lowering for them
    (their vertices depend on the image): export the net up to the CRF's unary with --outputs,
    or as a custom-domain node with --custom-ops."""

    family = "recurrent"  # CRF as RNN: the same update applied num_iterations times
    bottoms = (3, 3)
    fork_defaults = MEANFIELD_DEFAULTS
    origin = CRFASRNN
    checked_against = ("torrvision/caffe (master) src/caffe/layers/multi_stage_meanfield.cpp (LayerSetUp, "
                       "Forward_cpu, compute_bilateral_kernel), meanfield_iteration.cpp (Forward_cpu) and caffe.proto "
                       "(MultiStageMeanfieldParameter)")

    def infer_shapes(self, node, in_shapes):
        unary, q0, image = in_shapes
        num_iterations(node)
        if len(unary) != 4:
            bad(node, f"the unary '{node.inputs[0].label}' must be 4-D (N, C, H, W), got {fmt_shape(unary)}",
                node.bottom_span(0), code=codes.BAD_RANK)
        if q0 != unary:
            # The first stage's softmax reads Q0 into a blob of the unary's shape.
            bad(node, f"'{node.inputs[1].label}' {fmt_shape(q0)} must have the unary's shape {fmt_shape(unary)}",
                node.bottom_span(1), code=codes.SHAPE_MISMATCH)
        n, _, h, w = unary
        if len(image) < 2 or image[0] != n or prod(image[1:]) < 3 * h * w:
            # compute_bilateral_kernel reads 3 planes of H x W values (the unary's H and W) per image.
            bad(node, f"the image '{node.inputs[2].label}' {fmt_shape(image)} must hold 3 planes of {h} x {w} "
                      f"values for each of the {n} images", node.bottom_span(2), code=codes.SHAPE_MISMATCH,
                notes=["give the (N, 3, H, W) image the unary was computed from"])
        return [tuple(unary)]

    def param_shapes(self, node, in_shapes):
        c = in_shapes[0][1]
        return [(1, 1, c, c)] * 3

    def receptive_field(self, node, in_rfs):
        # Every output pixel depends on every input pixel (the Gaussians have unbounded support).
        rf = in_rfs[0]
        if rf is None:
            return [None]
        from .base import whole_rf
        shape = node.inputs[0].meta["shape"]
        return [whole_rf(rf, shape[2:])]

    def cost(self, node, in_shapes, out_shapes):
        """Per stage and pixel: softmax over C (about 3 C), three C x C products (weights of the
        two filters, compatibility), and the two lattice filterings of C channels (splat, blur
        along d + 1 axes with a 3-tap kernel, slice: about (d + 1) x 5 per channel value, d = 2
        and 5), plus the per-pixel normalisations and the unary subtraction. The lattices'
        construction (once per image) is not counted."""
        n, c, h, w = in_shapes[0]
        px = n * h * w
        stages = num_iterations(node)
        macs = stages * px * 3 * c * c
        filtering = stages * px * c * ((SPATIAL_D + 1) * 5 + (BILATERAL_D + 1) * 5 + 2)
        return {"macs": macs, "flops": 2 * macs + filtering + stages * px * c * 4}
