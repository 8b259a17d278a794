"""shapes: Caffe's Reshape for every layer, in file order.

Writes Value.meta["shape"], Node.meta["blobs"/"params"/"stat_params"]. A layer whose inputs have
no shape (an earlier layer failed or could not be analysed) is skipped silently; the layer that
stopped inference has said why. Shared parameters (param { name: ... }) are checked the way
Net::AppendParam does: the first layer to use a name owns the blob, later ones must match it.
`graph.overrides` (--input NAME=shape) supplies or replaces the shapes of net inputs, data-layer
tops and the tops of layers netdef cannot look into (Python, ...).
"""
from __future__ import annotations

from .. import codes
from ..build import unknown_type_note
from ..layers import LayerError
from ..layers.base import fmt_shape, prod
from ..proto import pb


def _batch_size(node):
    """The batch_size a data layer's parameters give (data_param, image_data_param, a fork's
    video_data_param, ...), or None."""
    for fd, value in node.param.ListFields():
        if fd.message_type is not None and not fd.is_repeated and \
                "batch_size" in fd.message_type.fields_by_name and value.batch_size > 0:
            return int(value.batch_size)
    for value in (node.extra or {}).values():
        raw = value[-1] if isinstance(value, list) and value else value
        if isinstance(raw, dict) and raw.get("batch_size"):
            try:
                return int(raw["batch_size"][-1] if isinstance(raw["batch_size"], list) else raw["batch_size"])
            except (TypeError, ValueError):
                return None
    return None


def _follow_batch(node, declared: list, supplied: list) -> list:
    """A data layer's tops share its batch_size (Caffe's Data/ImageData: data (B, C, H, W), label
    (B,)). When --input gives some of its tops another batch N, the tops whose shapes the layer
    fixes at B take N too, the shapes Caffe gives them with batch_size N: the user need not
    repeat the label. Only where every fixed top starts with the layer's batch_size B."""
    fixed = [s for s in declared if not isinstance(s, str) and len(s)]
    given = {tuple(o)[0] for o in supplied if o is not None and len(o)}
    if len(given) != 1 or not fixed or {s[0] for s in fixed} != {_batch_size(node)} or given == {fixed[0][0]}:
        return declared
    (n,) = given
    return [s if isinstance(s, str) or not len(s) else (n,) + tuple(s[1:]) for s in declared]


def run(graph) -> None:
    diags = graph.diagnostics
    overrides = dict(graph.overrides)
    used: set[str] = set()
    owners: dict[str, dict] = {}

    for v in graph.inputs:
        if v.producer is None:
            shape = overrides.get(v.name, v.meta.get("declared_shape"))
            if v.name in overrides:
                used.add(v.name)
            if shape is None:
                diags.add(codes.INPUT_SHAPE_NEEDED.at(v.meta.get("input_span"), blob=v.name,
                                                      why="the net input has no input_shape or input_dim"))
            else:
                v.meta["shape"] = tuple(shape)

    for node in graph.nodes:
        if node.meta.get("invalid"):
            continue
        if any("shape" not in v.meta for v in node.inputs):
            continue
        in_shapes = [v.meta["shape"] for v in node.inputs]
        impl = node.impl
        supplied = [overrides.get(v.name) for v in node.outputs]
        can_override = impl is None or impl.source or impl.opaque
        if node.outputs and can_override and all(s is not None for s in supplied):
            used.update(v.name for v in node.outputs)
            for v, s in zip(node.outputs, supplied):
                v.meta["shape"] = tuple(s)
            node.meta["shapes_from_options"] = True
            if impl is None or impl.opaque:
                node.meta["unknown"] = True
            else:
                _params(node, impl, in_shapes, diags, owners)
            continue
        if impl is None:
            node.meta["unknown"] = True
            fork, _ = unknown_type_note(node.type)
            if fork is not None:
                diags.add(codes.UNSUPPORTED_LAYER.at(
                    node.field_span(None, "type"), layer=node.name, type=node.type, why=f"from {fork}",
                    notes=[_override_note(node)]))
            continue
        if impl.opaque:
            node.meta["unknown"] = True
            why = impl.opaque
            if node.type == "Python":
                why += f": {impl.describe(node)}"
            diags.add(codes.UNSUPPORTED_LAYER.at(node.field_span(None, "type"), layer=node.name, type=node.type,
                                                 why=why, notes=[_override_note(node)]))
            continue
        try:
            if impl.source:
                shapes = _follow_batch(node, impl.source_shapes(node), supplied)
                for v, s, o in zip(node.outputs, shapes, supplied):
                    if o is not None:
                        used.add(v.name)
                        v.meta["shape"] = tuple(o)
                    elif isinstance(s, str):
                        diags.add(codes.INPUT_SHAPE_NEEDED.at(node.top_span(v.top_index), blob=v.name, why=s))
                    else:
                        err = _count_error(node, f"top '{v.name}'", s)
                        if err:
                            raise err
                        v.meta["shape"] = tuple(s)
                _params(node, impl, in_shapes, diags, owners)
                continue
            out = impl.infer_shapes(node, in_shapes)
            if len(out) != len(node.outputs):  # pragma: no cover - a layer class bug
                raise AssertionError(f"{node.type} returned {len(out)} shapes for {len(node.outputs)} tops")
            for v, s in zip(node.outputs, out):
                if any(d < 0 for d in s):
                    raise LayerError(codes.BAD_GEOMETRY.at(node.span, message=f"layer '{node.name}': the output "
                                                                              f"shape {fmt_shape(s)} is negative"))
                err = _count_error(node, f"top '{v.name}'", s)
                if err:
                    raise err
            _params(node, impl, in_shapes, diags, owners)
            for v, s in zip(node.outputs, out):
                v.meta["shape"] = tuple(s)
            impl.lint(node, in_shapes, out, diags)
        except LayerError as e:
            diags.add(e.diagnostic)
            for v in node.outputs:
                v.meta.pop("shape", None)
        except (ArithmeticError, ValueError, TypeError, IndexError, KeyError, AttributeError) as e:
            # A layer rule that did not anticipate these values: say so at the layer instead of
            # failing the whole analysis (compile never raises for bad input).
            diags.add(codes.BAD_PARAM.at(node.span, notes=["this is a gap in netdef's checks; please report it"],
                                         message=f"layer '{node.name}' ({node.type}) cannot be set up with these "
                                                 f"parameters: {type(e).__name__}: {e}"))
            for v in node.outputs:
                v.meta.pop("shape", None)

    for name in overrides:
        if name not in used:
            sources = [v.name for v in graph.inputs] + [v.name for n in graph.nodes
                                                       if n.impl is None or n.impl.opaque for v in n.outputs]
            notes = [("blobs --input can set: " + ", ".join(dict.fromkeys(sources))) if sources else
                     "this net has no inputs or data layers whose shape --input could set"]
            if graph.blob(name) is not None:
                notes.insert(0, f"'{name}' is computed by the net, so its shape follows from the layers before it")
            diags.add(codes.UNKNOWN_INPUT_OPTION.at(None, blob=name, notes=notes))


# Blob::Reshape: `CHECK_LE(shape[i], INT_MAX / count_) << "blob size exceeds INT_MAX"`. Caffe's
# blobs count elements in an int, so no blob (data or parameter) holds more than this.
INT_MAX = 2**31 - 1


def _count_error(node, what: str, shape) -> "LayerError | None":
    if any(d < 0 for d in shape):  # a DummyData shape, say: Blob::Reshape CHECK_GE(shape[i], 0)
        return LayerError(codes.BAD_GEOMETRY.at(
            node.span, message=f"layer '{node.name}': {what} would have shape {fmt_shape(shape)}, "
                               "with a negative dimension"))
    n = prod(shape)
    if n <= INT_MAX:
        return None
    return LayerError(codes.BAD_GEOMETRY.at(
        node.span, notes=["Caffe's Blob::Reshape refuses it: 'blob size exceeds INT_MAX'"],
        message=f"layer '{node.name}': {what} would have shape {fmt_shape(shape)}, {n:,} elements; "
                f"a Caffe blob holds at most {INT_MAX:,}"))


def _override_note(node) -> str:
    tops = ", ".join(f"--input {v.name}=..." for v in node.outputs)
    return f"to analyse past it, give its tops' shapes: {tops}" if node.outputs else \
        "it produces no tops, so nothing after it depends on it"


def _params(node, impl, in_shapes, diags, owners) -> None:
    blobs = [tuple(s) for s in impl.param_shapes(node, in_shapes)]
    for i, b in enumerate(blobs):
        err = _count_error(node, f"parameter blob {i}", b)
        if err:
            raise err
    stats = impl.stat_blobs(node)
    node.meta["blobs"] = blobs
    node.meta["params"] = [s for i, s in enumerate(blobs) if i not in stats]
    node.meta["stat_params"] = [s for i, s in enumerate(blobs) if i in stats]
    specs = node.param.param
    if len(specs) > len(blobs):
        diags.add(codes.TOO_MANY_PARAM_SPECS.at(node.field_span(None, "param", len(blobs)), layer=node.name,
                                                given=len(specs), type=node.type, count=len(blobs)))
    for i, spec in enumerate(specs[:len(blobs)]):
        if not spec.name:
            continue
        owner = owners.get(spec.name)
        if owner is None:
            owners[spec.name] = {"node": node, "shape": blobs[i],
                                 "lr_mult": spec.lr_mult if spec.HasField("lr_mult") else None,
                                 "decay_mult": spec.decay_mult if spec.HasField("decay_mult") else None}
            continue
        shared = owner["shape"]
        permissive = spec.share_mode == pb.ParamSpec.PERMISSIVE
        if (prod(shared) != prod(blobs[i])) if permissive else (shared != blobs[i]):
            o = owner["node"]
            diags.add(codes.SHARED_PARAM_MISMATCH.at(
                node.field_span(None, "param", i), related=[(o.span, f"'{spec.name}' is first used here")] if o.span else [],
                notes=["shared blobs must have the same element count (share_mode PERMISSIVE)" if permissive else
                       "shared blobs must have identical shapes (share_mode STRICT, the default)"],
                param=spec.name, shape=fmt_shape(blobs[i]), layer=node.name, owner_shape=fmt_shape(shared),
                owner=o.name))
        for field in ("lr_mult", "decay_mult"):
            if not spec.HasField(field):
                continue
            mine = getattr(spec, field)
            if owner[field] is None:
                owner[field] = mine
            elif owner[field] != mine:
                diags.add(codes.SHARED_PARAM_SETTING.at(node.field_span(None, "param", i), param=spec.name,
                                                        field=field, value=f"{mine:g}", layer=node.name,
                                                        owner_value=f"{owner[field]:g}", owner=owner["node"].name))
