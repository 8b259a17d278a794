"""V0/V1 network definitions and old solvers → the current format, as Caffe upgrades them.

Caffe (src/caffe/util/upgrade_proto.cpp, UpgradeNetAsNeeded) runs these steps in this order,
each only when its NetNeeds*Upgrade test says so, and netdef does the same:

  1. V0 → V1      `layers { layer { type: "conv" ... } bottom: ... }`: padding layers folded
                  into the conv/pool they feed, the flat V0 fields moved into *_param blocks.
  2. data fields  scale/mean_file/crop_size/mirror of V1 Data/ImageData/WindowData params
                  moved into transform_param.
  3. V1 → V2      `layers { type: CONVOLUTION }` → `layer { type: "Convolution" }`; blobs_lr,
                  weight_decay, param names and blob_share_mode → `param { ... }` blocks.
  4. input        top-level input + input_dim/input_shape → an Input layer named "input",
                  placed first.
  5. BatchNorm    a BatchNorm layer with exactly three `param` blocks gets lr_mult 0 and
                  decay_mult 0 in each (its statistics are not learned).
  6. hole         not Caffe's: deeplab-public's convolution_param hole (or hole_h + hole_w)
                  becomes BVLC's dilation, which means the same (the field has no span).

Solvers: an old `solver_type: ENUM` becomes `type: "Name"`. As in Caffe's
upgrade_solver_proto_text, a net given inline in a solver (net_param) is left as written.

Locations. The upgraded message gets a new Loc tree shaped like it, made of the user's text:
  - an upgraded layer's Loc spans the old `layers {` block; its name/type/bottom/top/include/
    exclude/blobs/loss_weight and every *_param block keep their own spans (a V1 enum type's
    span is the enum name);
  - `param` i of an upgraded layer is a Loc whose lr_mult/decay_mult/name/share_mode entries
    are the spans of blobs_lr[i]/weight_decay[i]/param[i]/blob_share_mode[i]; the Loc's own
    span is the first of these. (name_span() of a renamed field is only approximate.)
  - a V0 layer's flat fields keep their spans inside the new *_param Locs (kernel_size points
    at `kernelsize: 5`); those *_param Locs span the inner `layer {` head. A pad taken from a
    padding layer points at that layer's `pad:`.
  - moved transformation fields keep their spans inside transform_param.
  - the Input layer made from legacy input fields spans the first `input:`; its tops are the
    `input:` values, and each input_param.shape is the `input_shape { }` block or a Loc over
    that input's four `input_dim:` values. Its name and type were never written: use
    field_or_self().
  - BatchNorm lr_mult/decay_mult forced to 0 have no span of their own.
  - a solver's `type` points at the `solver_type` value.
Fields netdef does not know (Loc.extra) stay with the block they were written in.
Caffe's tables these steps read (types, fields, enums) are in upgrade_tables.py.
"""
from __future__ import annotations

import dataclasses
import difflib

from . import codes
from .diagnostics import Span
from .forks import V1_FORK_TYPES
from .proto import pb
from .loc import Loc
from .upgrade_tables import (DATA_PARAMS, SOLVER_TYPE_NAMES, SOLVER_TYPES, TRANSFORM_FIELDS, V0_DROPPED, V0_FIELDS,
                             V0_TYPES, V1_PARAMS, V1_SAME, V1_TYPE_NAMES, V1_TYPES)


# --- the upgrade ----------------------------------------------------------------------


class _Upgrade:
    def __init__(self, parsed):
        self.parsed = parsed
        self.source = parsed.source
        self.diags = parsed.diagnostics
        self.formats: list[str] = []     # what was old, for W213
        self.first_old: list[Span] = []  # where each old format shows first
        self.notes: list[str] = []
        self.failed = False

    def old(self, what: str, span: Span, note: str | None = None) -> None:
        self.formats.append(what)
        self.first_old.append(span)
        if note:
            self.notes.append(note)

    def error(self, code, span, **kw) -> None:
        self.diags.add(code.at(span, **kw))
        self.failed = True

    # -- nets ----------------------------------------------------------------------------
    def net(self, msg, loc: Loc):
        if msg.layer and msg.layers:
            # Caffe refuses outright (UpgradeV1Net: "Refusing to upgrade inconsistent
            # NetParameter input"): the two lists cannot be ordered against each other.
            self.error(codes.MIXED_LAYER_FORMATS, (loc.msg("layers") or loc).span,
                       related=[((loc.msg("layer") or loc).span, "a current-format 'layer' block")],
                       notes=["write every layer as 'layer { type: \"Name\" ... }' ('netdef upgrade' "
                              "converts a file written entirely in the old format)"])
            return msg, loc
        first = loc.msg("layers") or loc
        if any(l.HasField("layer") for l in msg.layers):
            self.old("V0 ('layers { layer { type: \"conv\" ... } }')", first.span,
                     "V0 layers become 'layer { type: \"Convolution\" ... }' blocks; a padding layer "
                     "becomes the pad of the layer it feeds")
        elif msg.layers:
            self.old("V1 ('layers { type: ENUM }')", first.span,
                     "'layers { type: CONVOLUTION }' becomes 'layer { type: \"Convolution\" }'; blobs_lr "
                     "and weight_decay become param { lr_mult decay_mult }")
        changed = False
        if any(l.HasField("layer") for l in msg.layers):
            msg, loc = self.v0_to_v1(msg, loc)
            changed = True
        if self.needs_data_upgrade(msg):
            if not changed:
                msg, loc = _clone(msg), loc.copy()
            self.data_upgrade(msg, loc)
            changed = True
        if msg.layers:
            msg, loc = self.v1_to_v2(msg, loc)
            changed = True
        if msg.input:
            if not changed:
                msg, loc = _clone(msg), loc.copy()
            msg, loc = self.input_upgrade(msg, loc)
            changed = True
        if any(l.type == "BatchNorm" and len(l.param) == 3 for l in msg.layer):
            if not changed:
                msg, loc = _clone(msg), loc.copy()
            self.batch_norm_upgrade(msg, loc)
            changed = True
        holes = _hole_layers(loc)
        if holes:
            if not changed:
                msg, loc = _clone(msg), loc.copy()
            self.hole_upgrade(msg, loc, holes)
        return msg, loc

    # 1. V0 → V1
    def v0_to_v1(self, msg, loc: Loc):
        layers, locs = self.fold_padding(msg, loc)
        out = pb.NetParameter()
        out_loc = Loc(self.source, 0, 0)
        out_loc.end = loc.end
        out_loc.extra = dict(loc.extra)
        # UpgradeV0Net keeps only these net-level fields.
        if msg.HasField("name"):
            out.name = msg.name
        for name in ("input", "input_dim"):
            getattr(out, name).extend(getattr(msg, name))
        if msg.HasField("force_backward"):
            out.force_backward = msg.force_backward
        for name in ("name", "input", "input_dim", "force_backward"):
            if name in loc.fields:
                out_loc.fields[name] = loc.fields[name]
        dropped = [n for n in ("input_shape", "state", "debug_info") if n in loc.fields]
        for name in dropped:
            self.diags.add(codes.DROPPED_BY_UPGRADE.at(
                loc.name_span(name), field=name,
                why="Caffe's V0 upgrade keeps only the net's name, input, input_dim, force_backward and layers"))
        out_locs = []
        for v0, v0_loc in zip(layers, locs):
            v1, v1_loc = self.v0_layer(v0, v0_loc)
            out.layers.add().CopyFrom(v1)
            out_locs.append(v1_loc)
        if out_locs:
            out_loc.fields["layers"] = out_locs
        return out, out_loc

    def fold_padding(self, msg, loc: Loc):
        """UpgradeV0PaddingLayers: drop padding layers, giving their pad to the conv/pool they feed."""
        produced: dict[str, int] = {name: -1 for name in msg.input}
        kept, kept_locs = [], []
        layer_locs = loc.locs("layers", len(msg.layers))
        for i, conn in enumerate(msg.layers):
            conn_loc = layer_locs[i]
            v0 = conn.layer
            is_padding = v0.type == "padding"
            if not is_padding:
                conn = _clone(conn)
                conn_loc = conn_loc.copy()
                kept.append(conn)
                kept_locs.append(conn_loc)
            for j, blob in enumerate(conn.bottom):
                if blob not in produced:
                    # Caffe: LOG(FATAL) "Unknown blob input".
                    self.error(codes.UPGRADE_FAILED, conn_loc.field_or_self("bottom", j),
                               message=f"bottom '{blob}' of a V0 layer is not an input and no earlier "
                                       "layer produces it",
                               notes=["in a V0 net every bottom must be a net input or the top of an "
                                      "earlier layer"])
                    continue
                src = produced[blob]
                if src < 0 or msg.layers[src].layer.type != "padding":
                    continue
                pad_layer, pad_loc = msg.layers[src], layer_locs[src]
                if v0.type not in ("conv", "pool") or len(conn.bottom) != 1 or \
                        len(pad_layer.bottom) != 1 or len(pad_layer.top) != 1:
                    why = (f"a padding layer feeds a '{v0.type}' layer; only conv and pool layers can "
                           "take its padding" if v0.type not in ("conv", "pool") else
                           "a padding layer and the layer it feeds must each have one bottom and one top")
                    self.error(codes.UPGRADE_FAILED, conn_loc.field_or_self("bottom", j), message=why,
                               related=[(pad_loc.span, "the padding layer")])
                    continue
                inner = conn_loc.sub("layer", conn_loc).copy()
                conn_loc.fields["layer"] = [inner]
                conn.layer.pad = pad_layer.layer.pad
                pad_entry = (pad_loc.msg("layer") or pad_loc).entry("pad")
                if pad_entry is not None:
                    inner.fields["pad"] = [pad_entry]
                else:
                    inner.fields.pop("pad", None)
                conn.bottom[j] = pad_layer.bottom[0]
            for blob in conn.top:
                produced[blob] = i
        return kept, kept_locs

    def v0_layer(self, conn, conn_loc: Loc):
        """UpgradeV0LayerParameter: one V0 connection → a V1 layer."""
        out = pb.V1LayerParameter()
        out.bottom.extend(conn.bottom)
        out.top.extend(conn.top)
        out_loc = conn_loc.copy({})
        for name in ("bottom", "top"):
            if name in conn_loc.fields:
                out_loc.fields[name] = conn_loc.fields[name]
        lost = [n for n in conn_loc.fields if n not in ("bottom", "top", "layer")]
        if not conn.HasField("layer"):
            self.error(codes.UPGRADE_FAILED, conn_loc.span,
                       message="this 'layers' block has no V0 'layer { ... }' inside, in a V0 file",
                       notes=["Caffe's V0 upgrade keeps only the bottom and top of such a block"])
            return out, out_loc
        for name in lost:  # Caffe accepts the file and loses these
            self.diags.add(codes.DROPPED_BY_UPGRADE.at(
                conn_loc.name_span(name) or conn_loc.span, field=name,
                why="from a V0 'layers' block Caffe's upgrade keeps only 'layer { ... }', bottom and top"))
        v0 = conn.layer
        v0_loc = conn_loc.msg("layer") or conn_loc
        out_loc.extra.update(v0_loc.extra)
        if v0.HasField("name"):
            out.name = v0.name
            _move(v0_loc, "name", out_loc, "name")
        t = v0.type
        if v0.HasField("type"):
            if t not in V0_TYPES:
                close = difflib.get_close_matches(t, list(V0_TYPES), n=1) or \
                    [k for k in V0_TYPES if t.startswith(k) or k.startswith(t)][:1]
                notes = ([f"did you mean '{close[0]}'?"] if close else []) + \
                    ["V0 layer types: " + ", ".join(sorted(V0_TYPES))]
                self.error(codes.UPGRADE_FAILED, v0_loc.field_or_self("type"), notes=notes,
                           message=f"'{t}' is not a V0 layer type")
                return out, out_loc
            out.type = pb.V1LayerParameter.LayerType.Value(V0_TYPES[t])
            _move(v0_loc, "type", out_loc, "type")
        for name in ("blobs", "blobs_lr", "weight_decay"):
            getattr(out, name).extend(getattr(v0, name))
            _move(v0_loc, name, out_loc, name)
        for fd, value in v0.ListFields():
            name = fd.name
            if name in V0_DROPPED:
                self.diags.add(codes.DROPPED_BY_UPGRADE.at(
                    v0_loc.name_span(name) or v0_loc.span, field=name,
                    why="the current format has nothing like it (Caffe drops it without a word)"))
                continue
            targets = V0_FIELDS.get(name)
            if targets is None:
                continue
            target = targets.get(t) or targets.get(None)
            if target is None:
                self.error(codes.UNKNOWN_LAYER_FIELD_V0, v0_loc.name_span(name) or v0_loc.span, field=name, type=t,
                           notes=[f"'{name}' is upgraded only for the layer types: " + ", ".join(sorted(targets))])
                continue
            param_name, field = target
            param = getattr(out, param_name)
            if field is None:  # the whole message, of the same type in both formats
                param.CopyFrom(value)
                _move(v0_loc, name, out_loc, param_name)
                continue
            param_loc = out_loc.sub(param_name, v0_loc)
            if name == "pool":
                value = pb.PoolingParameter.PoolMethod.Value(pb.V0LayerParameter.PoolMethod.Name(value))
            target_fd = param.DESCRIPTOR.fields_by_name[field]
            if target_fd.message_type is not None:
                getattr(param, field).CopyFrom(value)
            elif target_fd.is_repeated:
                getattr(param, field).append(value)
            else:
                setattr(param, field, value)
            _move(v0_loc, name, param_loc, field)
        return out, out_loc

    # 2. data transformation fields
    @staticmethod
    def needs_data_upgrade(msg) -> bool:
        for l in msg.layers:
            param_name = DATA_PARAMS.get(V1_TYPE_NAMES.get(l.type))
            if param_name and l.HasField(param_name):
                p = getattr(l, param_name)
                if any(p.HasField(f) for f in TRANSFORM_FIELDS):
                    return True
        return False

    def data_upgrade(self, msg, loc: Loc):
        loc.fields["layers"] = layer_locs = [l.copy() for l in loc.locs("layers", len(msg.layers))]
        noted = False
        for l, l_loc in zip(msg.layers, layer_locs):
            param_name = DATA_PARAMS.get(V1_TYPE_NAMES.get(l.type))
            if not param_name or not l.HasField(param_name):
                continue
            p = getattr(l, param_name)
            moved = [f for f in TRANSFORM_FIELDS if p.HasField(f)]
            if not moved:
                continue
            p_loc = l_loc.msg(param_name)
            if p_loc is not None:
                p_loc = p_loc.copy()
                l_loc.fields[param_name] = [p_loc]
            if not noted:
                noted = True
                self.old("data-layer transformation fields", p_loc.span if p_loc else l_loc.span,
                         f"{', '.join(moved)} move from {param_name} into transform_param")
            t = l.transform_param
            t_loc = None
            if p_loc is not None:
                t_loc = l_loc.msg("transform_param")
                t_loc = t_loc.copy() if t_loc is not None else p_loc.blank()
                l_loc.fields["transform_param"] = [t_loc]
            for f in moved:
                setattr(t, f, getattr(p, f))
                p.ClearField(f)
                if t_loc is not None:
                    _move(p_loc, f, t_loc, f)

    # 3. V1 → V2
    def v1_to_v2(self, msg, loc: Loc):
        out = pb.NetParameter()
        out.CopyFrom(msg)
        out.ClearField("layers")
        out.ClearField("layer")
        out_loc = loc.copy()
        out_loc.fields.pop("layers", None)
        layer_locs = loc.locs("layers", len(msg.layers))
        new_locs = []
        for v1, v1_loc in zip(msg.layers, layer_locs):
            layer = out.layer.add()
            new_locs.append(self.v1_layer(v1, v1_loc, layer))
        if new_locs:
            out_loc.fields["layer"] = new_locs
        return out, out_loc

    def v1_layer(self, v1, v1_loc: Loc, layer) -> Loc:
        """UpgradeV1LayerParameter."""
        new_loc = v1_loc.copy({})
        for name in V1_SAME:
            src = getattr(v1, name)
            if name == "name":
                if v1.HasField("name"):
                    layer.name = v1.name
            else:
                getattr(layer, name).extend(src)
            if name in v1_loc.fields:
                new_loc.fields[name] = v1_loc.fields[name]
        if v1.HasField("type"):
            layer.type = V1_TYPES[V1_TYPE_NAMES[v1.type]]
            if "type" in v1_loc.fields:
                new_loc.fields["type"] = v1_loc.fields["type"]
        elif v1_loc.extra.get("type"):
            # A fork's V1 enum value (transform kept its V2 name; forks.V1_FORK_TYPES).
            name = str(v1_loc.extra["type"][-1])
            layer.type = V1_FORK_TYPES[name][0] if name in V1_FORK_TYPES else name
            new_loc.extra.pop("type", None)
        # param i collects the i-th name, share mode, lr and decay: each list may be shorter.
        n = max(len(v1.param), len(v1.blob_share_mode), len(v1.blobs_lr), len(v1.weight_decay))
        param_locs = []
        for i in range(n):
            spec = layer.param.add()
            if i < len(v1.param):
                spec.name = v1.param[i]
            if i < len(v1.blob_share_mode):
                spec.share_mode = v1.blob_share_mode[i]  # STRICT/PERMISSIVE: the same numbers
            if i < len(v1.blobs_lr):
                spec.lr_mult = v1.blobs_lr[i]
            if i < len(v1.weight_decay):
                spec.decay_mult = v1.weight_decay[i]
            fields = {new: [v1_loc.entry(old, i)] if v1_loc.entry(old, i) is not None else []
                      for old, new in (("param", "name"), ("blob_share_mode", "share_mode"),
                                       ("blobs_lr", "lr_mult"), ("weight_decay", "decay_mult"))}
            entries = [e[0] for e in fields.values() if e]
            param_locs.append(v1_loc.around(entries, fields))
        if param_locs:
            new_loc.fields["param"] = param_locs
        for name in V1_PARAMS:
            if v1.HasField(name):
                getattr(layer, name).CopyFrom(getattr(v1, name))
                if name in v1_loc.fields:
                    new_loc.fields[name] = v1_loc.fields[name]
        if v1.HasField("layer"):  # only possible if the V0 step failed
            self.error(codes.UPGRADE_FAILED, v1_loc.field_or_self("layer"),
                       message="a V0 'layer { ... }' block inside a V1 layer is ignored")
        return new_loc

    # 4. legacy input fields
    def input_upgrade(self, msg, loc: Loc):
        first = loc.field("input") or loc.span
        has_shape, has_dim = len(msg.input_shape) > 0, len(msg.input_dim) > 0
        n = len(msg.input)
        if has_shape or has_dim:
            self.old("top-level 'input' fields", first,
                     "the 'input' fields become an Input layer named 'input', placed first")
            count, need = (len(msg.input_shape), n) if has_shape else (len(msg.input_dim), 4 * n)
            if count != need:
                # Caffe indexes past the end (a crash); before Input layers existed, Net::Init
                # checked these counts and refused the file.
                what = "input_shape" if has_shape else "input_dim"
                span = loc.field(what, need if count > need else count - 1) or first
                self.error(codes.UPGRADE_FAILED, span,
                           message=f"{n} input(s) need {need} '{what}' {'entries' if has_shape else 'values'}, "
                                   f"but {count} are given",
                           notes=["each 'input' needs one input_shape { dim: ... } or four input_dim values "
                                  "(N, C, H, W)"])
                return msg, loc
            out = pb.NetParameter()
            out.CopyFrom(msg)
            del out.layer[:]
            layer = out.layer.add()
            layer.name = "input"
            layer.type = "Input"
            layer.top.extend(msg.input)
            in_loc = loc.around(list(loc.fields.get("input", [])),
                                {"top": list(loc.fields.get("input", []))})
            shape_locs = []
            for i in range(n):
                if has_shape:
                    layer.input_param.shape.add().CopyFrom(msg.input_shape[i])
                    given = loc.fields.get("input_shape", [])
                    shape_locs.append(given[i] if i < len(given) else in_loc.blank())
                else:
                    layer.input_param.shape.add().dim.extend(msg.input_dim[4 * i:4 * i + 4])
                    dims = loc.fields.get("input_dim", [])[4 * i:4 * i + 4]
                    shape_locs.append(in_loc.around(dims, {"dim": dims}))
            param_loc = in_loc.copy({"shape": shape_locs})
            in_loc.fields["input_param"] = [param_loc]
            out.layer.extend(msg.layer)
            msg = out
            loc = loc.copy()
            loc.fields["layer"] = [in_loc] + list(loc.fields.get("layer", []))
        else:
            # A bare `input` is how old binary models named their inputs; Caffe just drops it.
            msg = _clone(msg)
            loc = loc.copy()
        for name in ("input", "input_shape", "input_dim"):
            msg.ClearField(name)
            loc.fields.pop(name, None)
        return msg, loc

    # 5. BatchNorm with three param blocks
    def batch_norm_upgrade(self, msg, loc: Loc):
        layer_locs = loc.fields.get("layer", [])
        for i, l in enumerate(msg.layer):
            if l.type != "BatchNorm" or len(l.param) != 3:
                continue
            if any(not p.HasField("lr_mult") or p.lr_mult != 0 for p in l.param) and \
                    not any(f.startswith("BatchNorm") for f in self.formats):
                where = layer_locs[i].span if i < len(layer_locs) else loc.span
                self.old("BatchNorm layers with three 'param' blocks", where,
                         "a BatchNorm layer's mean, variance and scale factor are not learned: Caffe sets "
                         "lr_mult and decay_mult to 0 in its three param blocks")
            for p in l.param:
                p.lr_mult = 0
                p.decay_mult = 0

    # 6. deeplab-public's a trous convolution (not a Caffe upgrade step: a fork's field written as
    # BVLC's). TheLegendAli/DeepLab-Context (deeplab-public) src/caffe/layers/conv_layer.cpp: hole
    # alone, or hole_h and hole_w together ("hole is hole OR hole_h and hole_w are required"); the
    # effective kernel is kernel + (kernel - 1) * (hole - 1) and src/caffe/util/im2col.cpp reads the
    # input `hole` apart, which is BVLC's dilation.
    def hole_upgrade(self, msg, loc: Loc, which: list[int]) -> None:
        layer_locs = loc.fields["layer"] = list(loc.fields["layer"])
        for i in which:
            l_loc = layer_locs[i] = layer_locs[i].copy()
            written = l_loc.msg("convolution_param")
            given = {}
            for hole_field in ("hole", "hole_h", "hole_w"):
                if written.extra.get(hole_field):
                    given[hole_field] = written.extra.get(hole_field)[-1]
            c_loc = written.copy()
            l_loc.fields["convolution_param"] = [c_loc]
            for name in given:
                c_loc.extra.pop(name)
            if not any(f.startswith("deeplab") for f in self.formats):
                self.old("deeplab-public's 'hole' (a trous convolution)", c_loc.span,
                         "hole (or hole_h and hole_w) becomes BVLC's dilation, which means the same")
            bad = [f for f, v in given.items() if isinstance(v, bool) or not isinstance(v, int) or v < 1]
            if bad:
                self.error(codes.UPGRADE_FAILED, c_loc.span,
                           message=f"'{bad[0]}' is {given[bad[0]]!r}: deeplab-public's hole is a whole number >= 1")
                continue
            if "hole" in given and len(given) > 1 or "hole" not in given and len(given) != 2:
                self.error(codes.UPGRADE_FAILED, c_loc.span,
                           message="give 'hole' alone, or 'hole_h' and 'hole_w' together (got "
                                   + ", ".join(sorted(given)) + ")",
                           notes=["deeplab-public's ConvolutionLayer CHECKs this: \"hole is hole OR hole_h "
                                  "and hole_w are required\""])
                continue
            param = msg.layer[i].convolution_param
            if len(param.dilation):
                self.error(codes.UPGRADE_FAILED, c_loc.field_or_self("dilation"),
                           message="both deeplab-public's 'hole' and BVLC's 'dilation' are given",
                           notes=["keep one: 'hole: N' is 'dilation: N'"])
                continue
            param.dilation.extend([given["hole"]] if "hole" in given else [given["hole_h"], given["hole_w"]])

    # -- solvers -------------------------------------------------------------------------
    def solver(self, msg, loc: Loc):
        if not msg.HasField("solver_type"):
            return msg, loc
        span = loc.field("solver_type") or loc.span
        if msg.HasField("type"):
            # Caffe: CHECK failure in UpgradeSolverType.
            self.error(codes.UPGRADE_FAILED, span,
                       related=[(loc.field("type") or loc.span, "'type' is given here")],
                       message="both 'solver_type' (old enum) and 'type' (string) are given",
                       notes=["keep only 'type', e.g. type: \"SGD\""])
            return msg, loc
        name = SOLVER_TYPE_NAMES[msg.solver_type]
        self.old("'solver_type' enum", span, f"solver_type: {name} becomes type: \"{SOLVER_TYPES[name]}\"")
        msg = _clone(msg)
        msg.type = SOLVER_TYPES[name]
        msg.ClearField("solver_type")
        loc = loc.copy()
        if "solver_type" in loc.fields:
            loc.fields["type"] = loc.fields.pop("solver_type")
        return msg, loc


_HOLE = ("hole", "hole_h", "hole_w")


def _hole_layers(loc: Loc) -> list[int]:
    """The indices of the layers whose convolution_param has deeplab-public's hole fields."""
    out = []
    for i, l_loc in enumerate(loc.fields.get("layer", [])):
        c_loc = l_loc.msg("convolution_param") if isinstance(l_loc, Loc) else None
        if c_loc is not None and any(f in c_loc.extra for f in _HOLE):
            out.append(i)
    return out


def _clone(msg):
    out = type(msg)()
    out.CopyFrom(msg)
    return out


def _move(src: Loc, src_name: str, dst: Loc, dst_name: str) -> None:
    entries = src.fields.get(src_name)
    if entries:
        dst.fields[dst_name] = list(entries)


def upgrade_parsed(parsed):
    """Return `parsed` with its message in the current format, as Caffe would upgrade it.

    A file already in the current format is returned as it is. Otherwise a new Parsed holds
    the upgraded message and a Loc tree over the user's text (see the module docstring), and
    the diagnostics gain one W213 naming the old formats, plus E210/E211/E212 for what cannot
    be upgraded. A file whose syntax is broken is left alone.
    """
    if not parsed.syntax_ok:
        return parsed
    if parsed.loc is None:  # a message made by hand: upgrade it all the same
        parsed = dataclasses.replace(parsed, loc=Loc(parsed.source, 0, 0))
    msg = parsed.message
    if parsed.kind == "solver":
        if not msg.HasField("solver_type"):
            return parsed
    elif not (msg.layers or msg.input or any(l.type == "BatchNorm" and len(l.param) == 3 for l in msg.layer)
              or _hole_layers(parsed.loc)):
        return parsed
    up = _Upgrade(parsed)
    if parsed.kind == "solver":
        new_msg, new_loc = up.solver(msg, parsed.loc)
        what = "this solver"
    else:
        new_msg, new_loc = up.net(msg, parsed.loc)
        what = "this network"
    if up.formats and not up.failed:  # after "cannot upgrade", "upgraded" would mislead
        formats = list(dict.fromkeys(up.formats))
        old = formats[0] if len(formats) == 1 else ", ".join(formats[:-1]) + " and " + formats[-1]
        first = min(up.first_old, key=lambda s: s.start)
        up.diags.add(codes.UPGRADED.at(first, notes=up.notes, what=what, old=old))
    if new_msg is msg:
        return parsed
    return dataclasses.replace(parsed, message=new_msg, loc=new_loc)
