"""NetParameter messages → ir.Graph: NetState filtering, inputs, bottoms and tops.

This follows Caffe's Net::Init: FilterNet keeps the layers whose include/exclude rules the
NetState meets (StateMeetsRule below); then layers are connected in file order. A bottom must
name a blob some earlier layer (or a net input) produced. A top that repeats bottom i at the same
index i is an in-place write and makes a new version of that blob; any other top whose name
already exists is an error ("Duplicate blobs produced by multiple sources"). Net outputs are the
blob versions nobody consumes. A loss layer written without a top gets an anonymous one
("(automatic)", Value.meta["automatic"]), as Caffe's AutoTopBlobs does: it is in node.outputs
but neither readable by name nor a net output.
"""
from __future__ import annotations

import difflib

from . import codes, layers
from .diagnostics import Diagnostics
from .forks import fork_of_layer_type
from .ir import Graph, NetState, Node, Value
from .proto import pb

_PHASE_NAMES = {pb.TRAIN: "TRAIN", pb.TEST: "TEST"}
# The name Net::AppendTop gives a top the layer did not write (AutoTopBlobs).
AUTOMATIC_TOP = "(automatic)"


def state_meets_rule(state: NetState, rule) -> bool:
    """Caffe's Net::StateMeetsRule: every condition the rule sets must hold."""
    if rule.HasField("phase") and _PHASE_NAMES.get(rule.phase) != state.phase:
        return False
    if rule.HasField("min_level") and state.level < rule.min_level:
        return False
    if rule.HasField("max_level") and state.level > rule.max_level:
        return False
    # The state must have all of the rule's stages and none of its not_stages.
    if any(s not in state.stages for s in rule.stage):
        return False
    if any(s in state.stages for s in rule.not_stage):
        return False
    return True


def layer_included(state: NetState, layer) -> bool:
    """Caffe's Net::FilterNet for one layer: no include rules means included unless an exclude
    rule matches; otherwise included when any include rule matches."""
    if not layer.include:
        return not any(state_meets_rule(state, r) for r in layer.exclude)
    return any(state_meets_rule(state, r) for r in layer.include)


def net_state(message, phase: str = "TEST", stages=(), level: int = 0) -> NetState:
    """The state Caffe's Net(file, phase, level, stages) builds: the phase and level given,
    the file's own `state { stage }` entries plus the stages given."""
    file_stages = tuple(message.state.stage) if message.HasField("state") else ()
    return NetState(phase.upper(), int(level), tuple(dict.fromkeys(file_stages + tuple(stages))))


def _layer_locs(parsed, n: int) -> list:
    locs = parsed.loc.fields.get("layer", []) if parsed is not None and parsed.loc is not None else []
    if len(locs) == n and all(hasattr(loc, "span") for loc in locs):
        return locs
    return [None] * n


def build(parsed, phase: str = "TEST", stages=(), level: int = 0, inputs: dict | None = None,
          diagnostics: Diagnostics | None = None) -> Graph:
    """Build the IR of a parsed (and upgraded) net. Problems go to graph.diagnostics.

    `inputs` maps blob names to shapes that replace or supply a net input's shape (--input);
    the shapes pass applies them.
    """
    msg = parsed.message
    diags = diagnostics if diagnostics is not None else Diagnostics()
    state = net_state(msg, phase, stages, level)
    g = Graph(msg.name, parsed, state, diags)
    g.overrides = dict(inputs or {})

    if len(msg.layers) and not len(msg.layer):
        diags.add(codes.UPGRADE_FAILED.at(parsed.loc.field("layers") if parsed.loc else None,
                                          message="the net still has V1 'layers' blocks after upgrading"))
        return g

    _legacy_inputs(g, msg, parsed, diags)

    locs = _layer_locs(parsed, len(msg.layer))
    # Where each blob name is written anywhere in the file, to explain undefined bottoms.
    writers: dict[str, list[tuple[int, object]]] = {}
    for i, lp in enumerate(msg.layer):
        for t in lp.top:
            writers.setdefault(t, []).append((i, lp))

    latest = g._latest
    whole = getattr(parsed, "whole", None)
    whole = whole if whole is not None and len(whole.layer) else msg     # the net forks are told by
    seen_names: dict[str, Node] = {}
    for i, lp in enumerate(msg.layer):
        loc = locs[i]
        if lp.include and lp.exclude:
            diags.add(codes.INCLUDE_AND_EXCLUDE.at(loc.span if loc else None, layer=lp.name,
                                                   notes=["Caffe keeps a layer with include rules only when one "
                                                          "matches; netdef applies the include rules"]))
        if not layer_included(state, lp):
            continue
        node = Node(lp.name, lp.type, i, lp, loc, layers.resolve(lp.type, lp, loc, whole))
        if not lp.type:
            diags.add(codes.MISSING_TYPE.at(node.span, layer=lp.name, notes=['write e.g. type: "Convolution"']))
        if lp.name in seen_names and lp.name:
            first = seen_names[lp.name]
            diags.add(codes.DUPLICATE_LAYER_NAME.at(node.span, layer=lp.name,
                                                    related=[(first.span, "first used here")] if first.span else []))
        seen_names.setdefault(lp.name, node)

        for j, b in enumerate(lp.bottom):
            v = latest.get(b)
            if v is None:
                diags.add(_undefined_bottom(node, j, b, i, latest, writers, locs, state))
                v = Value(b, 0, None, 0)
                v.meta["undefined"] = True
            v.consumers.append(node)
            node.inputs.append(v)

        in_place = []
        for j, t in enumerate(lp.top):
            prev = latest.get(t)
            if j < len(lp.bottom) and lp.bottom[j] == t and not node.inputs[j].meta.get("undefined"):
                v = Value(t, node.inputs[j].version + 1, node, j)
                in_place.append(True)
            else:
                if prev is not None:
                    other = prev.producer
                    notes = []
                    if t in lp.bottom:
                        notes.append(f"in-place computation needs top {j} to repeat bottom {j}; here '{t}' is "
                                     f"bottom {list(lp.bottom).index(t)}")
                    else:
                        notes.append("each blob is written once; give this top a new name (or write it in place: "
                                     "the same name as bottom and top at the same position)")
                    related = [(other.span, f"'{t}' is first produced here")] if other is not None and other.span else []
                    diags.add(codes.DUPLICATE_TOP.at(node.top_span(j), notes=notes, related=related, blob=t,
                                                     layer=lp.name,
                                                     other=other.name if other is not None else "(net input)"))
                v = Value(t, prev.version + 1 if prev is not None else 0, node, j)
                in_place.append(False)
            latest[t] = v
            g.values.append(v)
            node.outputs.append(v)
        impl = node.impl
        if impl is not None and impl.auto_tops:
            # Net::Init: max(MinTopBlobs, ExactNumTopBlobs) tops, the missing ones appended
            # without a name map, so no later layer can read them and they are no net output.
            for j in range(len(lp.top), impl.count_limits(node)[1][0]):
                v = Value(AUTOMATIC_TOP, 0, node, j)
                v.meta["automatic"] = True
                node.outputs.append(v)
                in_place.append(False)
        node.meta["in_place"] = in_place
        g.nodes.append(node)
        if impl is not None and (impl.source or (impl.opaque and not lp.bottom)):
            g.inputs.extend(node.outputs)

    g.outputs = [v for v in g.values if not v.consumers]  # automatic tops are not in g.values
    if not g.nodes and len(msg.layer):
        diags.add(codes.NO_LAYERS.at(None, state=str(state),
                                     notes=["every layer's include/exclude rules exclude it; check --phase, "
                                            "--stage and --level"]))
    return g


def _legacy_inputs(g: Graph, msg, parsed, diags) -> None:
    """NetParameter's `input` with `input_dim` (4 per input) or `input_shape` (one per input)."""
    names = list(msg.input)
    if not names:
        return
    loc = parsed.loc
    span = lambda f: loc.field(f) if loc is not None else None  # noqa: E731
    dims, shapes = list(msg.input_dim), list(msg.input_shape)
    shape_of: list = [None] * len(names)
    if dims and shapes:
        diags.add(codes.LEGACY_INPUT.at(span("input_dim"), message="give input_shape or the deprecated input_dim, "
                                                                   "not both"))
    elif dims:
        if len(dims) != 4 * len(names):
            diags.add(codes.LEGACY_INPUT.at(span("input_dim"), notes=["input_dim takes 4 values (N, C, H, W) per input"],
                                            message=f"{len(dims)} input_dim values for {len(names)} input(s)"))
        else:
            shape_of = [tuple(dims[4 * k:4 * k + 4]) for k in range(len(names))]
    elif shapes:
        if len(shapes) != len(names):
            diags.add(codes.LEGACY_INPUT.at(span("input_shape"), notes=["give one input_shape per input"],
                                            message=f"{len(shapes)} input_shape blocks for {len(names)} input(s)"))
        else:
            shape_of = [tuple(int(d) for d in s.dim) for s in shapes]
    for k, name in enumerate(names):
        if name in g._latest:
            diags.add(codes.DUPLICATE_TOP.at(loc.field("input", k) if loc else None, blob=name, layer="(net input)",
                                             other="(net input)"))
        v = Value(name, 0, None, 0)
        v.meta["input_span"] = loc.field("input", k) if loc is not None else None
        if shape_of[k] is not None:
            v.meta["declared_shape"] = shape_of[k]
        g._latest[name] = v
        g.values.append(v)
        g.inputs.append(v)


def _undefined_bottom(node, j, name, index, latest, writers, locs, state):
    notes = []
    later = [(i, lp) for i, lp in writers.get(name, []) if i > index]
    earlier = [(i, lp) for i, lp in writers.get(name, []) if i < index]
    related = []
    if earlier:
        i, lp = earlier[-1]
        notes.append(f"'{name}' is produced by layer '{lp.name}', which is not part of the net in {state} "
                     "(its include/exclude rules leave it out)")
        if locs[i] is not None:
            related.append((locs[i].span, f"layer '{lp.name}' is excluded"))
    elif later:
        i, lp = later[0]
        notes.append(f"'{name}' is produced later, by layer '{lp.name}'; Caffe connects layers in file order, "
                     "so move that layer before this one")
        if locs[i] is not None:
            related.append((locs[i].span, f"'{name}' is produced here"))
    close = difflib.get_close_matches(name, list(latest), n=3, cutoff=0.6)
    if close:
        notes.append("did you mean " + " or ".join(f"'{c}'" for c in close) + "?")
    elif latest and not earlier and not later:
        known = list(latest)
        notes.append("blobs available here: " + ", ".join(known[-8:]) + (" ..." if len(known) > 8 else ""))
    return codes.UNDEFINED_BOTTOM.at(node.bottom_span(j), notes=notes, related=related, blob=name, layer=node.name)


def unknown_type_note(type_name: str) -> tuple[str | None, list[str]]:
    """(fork, notes) for a layer type netdef does not implement."""
    fork = fork_of_layer_type(type_name)
    notes = []
    if fork is None:
        close = layers.close_types(type_name)
        if close:
            notes.append("did you mean " + " or ".join(f"'{c}'" for c in close) + "?")
    return fork, notes
