"""Analysis passes over an ir.Graph, run in order by pipeline.compile:

  verify           static checks: layer types, blob counts, parameters, unused tops, dead layers
  shapes           Value.meta["shape"], Node.meta["blobs"/"params"/"stat_params"]
  receptive_field  Value.meta["rf"]
  cost             Node.meta["cost"]
"""
from __future__ import annotations

from . import cost, receptive_field, shapes, verify

PIPELINE = (verify, shapes, receptive_field, cost)


def run_all(graph) -> None:
    for p in PIPELINE:
        p.run(graph)
