"""Weights: reading and writing .caffemodel files, matching them to a net, and Caffe's fillers.

    ws = read_caffemodel("bvlc_alexnet.caffemodel")      # WeightSet; raises DiagnosticError
    arrays = bind(specs, ws, diags)                       # name -> arrays, shape-checked
    blobs = resolve_weights(specs, ws, seed, diags)       # the file's blobs, fillers for the rest

One module per job: caffemodel (the streaming wire read and write), bind (ParamSpec, matching
blobs to layers by name), fillers (Caffe's fillers, the per-blob generators, init_layer). The
`netdef init` command is in netdef/cli/weights.py.
"""
from __future__ import annotations

from .bind import ParamSpec, bind, fmt_shape
from .caffemodel import LayerWeights, WeightSet, parse_caffemodel, read_caffemodel, write_caffemodel
from .fillers import FILLERS, FillerError, Lazy, blob_rng, check_filler, fill, init_layer, resolve_weights

__all__ = ["LayerWeights", "WeightSet", "parse_caffemodel", "read_caffemodel", "write_caffemodel", "ParamSpec",
           "bind", "fmt_shape", "FILLERS", "FillerError", "Lazy", "blob_rng", "check_filler", "fill", "init_layer",
           "resolve_weights"]
