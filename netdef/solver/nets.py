"""Reading a solver, and the nets it trains and tests: which files (or inline nets) Caffe's
Solver::InitTrainNet/InitTestNets build, in which NetState, and compiling each of them."""
from __future__ import annotations

import os
from dataclasses import dataclass

from .. import codes
from ..diagnostics import DiagnosticError, Diagnostics, Span
from ..library import resolve
from ..parse import NET, SOLVER, _NET_KEYS, Parsed, parse_text, sniff_kind
from ..proto import pb
from ..source import Source, SourceError
from ..upgrade import upgrade_parsed


@dataclass
class NetUse:
    """One net instance Caffe's Solver builds: the training net or one test net."""
    role: str                 # "train" or "test #i"
    phase: str                # "TRAIN" / "TEST"
    field: str                # the solver field it comes from
    span: Span
    path: str | None          # the file read (None for inline net_param/test_net_param)
    parsed: object | None     # parse.Parsed, None when unreadable
    state: object             # pb.NetState after Caffe's merge (solver default < net's own < solver's)
    test_iter: int | None = None
    graph: object | None = None


def resolve_net_path(name: str, solver_dir: str) -> tuple[str | None, str, str | None]:
    """(found path or None, the path tried first, why not found).

    Caffe opens these paths relative to the directory it runs in; netdef reads them relative to
    the solver file. Definitions copied out of a Caffe checkout name nets as seen from its root
    ("examples/mnist/lenet_train_test.prototxt" beside the solver), so when the full path is not
    there, the shorter tails of the same path are tried in the solver's directory."""
    first = name if os.path.isabs(name) else os.path.normpath(os.path.join(solver_dir, name))
    if os.path.isfile(first):
        return first, first, None
    if os.path.isdir(first):
        return None, first, "it is a directory"
    if not os.path.isabs(name):
        parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".")]
        for i in range(1, len(parts)):
            if ".." in parts[i:]:
                continue
            cand = os.path.join(solver_dir, *parts[i:])
            if os.path.isfile(cand):
                return cand, first, None
    return None, first, "no such file"


def display_path(path: str) -> str:
    rel = os.path.relpath(path)
    return rel if not rel.startswith("../../") else path


def plan_nets(parsed, diags: Diagnostics) -> list[NetUse]:
    """The training net and the test nets, as Solver::InitTrainNet/InitTestNets choose them,
    with each file read (relative to the solver) and parsed; problems go to `diags`."""
    # Imported here, not above: `netdef lr` reads a solver and no net, and the pipeline (layers,
    # passes) would add a tenth to its start-up.
    from ..pipeline import load
    msg, loc = parsed.message, parsed.loc
    solver_dir = os.path.dirname(os.path.abspath(parsed.source.path))
    cache: dict[str, object] = {}

    def read(fname: str, index: int, role: str):
        span = loc.field(fname, index)
        name = getattr(msg, fname)[index] if fname == "test_net" else getattr(msg, fname)
        found, tried, why = resolve_net_path(name, solver_dir)
        if found is None:
            diags.add(codes.NET_FILE_MISSING.at(span, role=role, path=name, why=f"{why} ({display_path(tried)})",
                                                notes=["netdef reads net files relative to the solver file's directory"]))
            return None, None
        if os.path.abspath(found) != os.path.abspath(tried):
            diags.add(codes.NET_FILE_ELSEWHERE.at(span, role=role, path=name, found=os.path.relpath(found, solver_dir),
                                                  notes=["Caffe opens the path relative to the directory it runs in; "
                                                         "netdef reads it relative to the solver file and, failing "
                                                         "that, tries the path's shorter tails there"]))
        if found not in cache:
            try:
                cache[found] = load(found, kind=NET, max_errors=diags.limit)
            except SourceError as e:
                diags.add(codes.NET_FILE_MISSING.at(span, role=role, path=name, why=e.message))
                cache[found] = None
            else:
                diags.extend(d for d in cache[found].diagnostics if codes.explains_a_gap(d))
        return found, cache[found]

    def inline(fname: str, index: int):
        sub = getattr(msg, fname)[index] if fname == "test_net_param" else getattr(msg, fname)
        sub_loc = loc.msg(fname, index)
        key = f"{fname}#{index}"
        if key not in cache:
            p = upgrade_parsed(Parsed(NET, sub, sub_loc, parsed.source, Diagnostics(limit=diags.limit)))
            diags.extend(p.diagnostics)
            cache[key] = p
        return cache[key]

    def state(phase: int, net, override):
        # NetState: the solver's default phase, then the net's own state, then train_state/test_state.
        s = pb.NetState(phase=phase)
        if net is not None:
            s.MergeFrom(net.message.state)
        if override is not None:
            s.MergeFrom(override)
        return s

    uses: list[NetUse] = []
    train_fields = [f for f in ("net", "net_param", "train_net", "train_net_param") if msg.HasField(f)]
    if not train_fields:
        diags.add(codes.NO_TRAIN_NET.at(loc.span, notes=["name it with net: \"train_val.prototxt\" (train and test "
                                                         "nets in one file) or train_net: \"...\""]))
    elif len(train_fields) > 1:
        spans = [loc.field(f) for f in train_fields]
        diags.add(codes.MANY_TRAIN_NETS.at(spans[0], count=len(train_fields),
                                           related=[(s, f"'{f}' given here") for s, f in zip(spans[1:], train_fields[1:])]))
    else:
        f = train_fields[0]
        path, net = read(f, 0, "training") if f in ("net", "train_net") else (None, inline(f, 0))
        train_state = msg.train_state if msg.HasField("train_state") else None
        uses.append(NetUse("train", "TRAIN", f, loc.field(f), path, net, state(pb.TRAIN, net, train_state)))

    # InitTestNets: test_net_param blocks, then test_net files, then as many instances of the
    # generic net (net / net_param) as test_iter entries remain.
    generic = [f for f in ("net", "net_param") if msg.HasField(f)]
    n_explicit = len(msg.test_net_param) + len(msg.test_net)
    n_iter = len(msg.test_iter)
    if generic:
        if n_iter < n_explicit:
            diags.add(codes.TEST_ITER_COUNT.at(loc.field("test_iter") or loc.span, got=n_iter,
                                               nets=f"{n_explicit} test_net/test_net_param net(s)",
                                               rule="give one test_iter per test net (each further test_iter tests "
                                               f"the '{generic[0]}' net once more)"))
    elif n_iter != n_explicit:
        diags.add(codes.TEST_ITER_COUNT.at(loc.field("test_iter", n_explicit if n_iter > n_explicit else 0) or loc.span,
                                           got=n_iter, nets=f"{n_explicit} test net(s)",
                                           rule="give exactly one test_iter per test_net/test_net_param "
                                           "(without a 'net' or 'net_param' there is nothing else to test)"))
    n_instances = max(n_iter, n_explicit) if generic else n_explicit
    if msg.test_state and len(msg.test_state) != n_instances:
        diags.add(codes.TEST_STATE_COUNT.at(loc.field("test_state"), got=len(msg.test_state), instances=n_instances))
    if n_instances and msg.test_interval <= 0:
        diags.add(codes.NO_TEST_INTERVAL.at(loc.field_or_self("test_interval") if msg.HasField("test_interval")
                                            else loc.field("test_iter") or loc.span, value=msg.test_interval,
                                            notes=["Caffe checks test_interval > 0 when there are test nets"]))
    elif not n_instances and msg.test_interval > 0 and not n_iter:  # (a stray test_iter: E618 says it)
        diags.add(codes.TEST_INTERVAL_UNUSED.at(loc.field("test_interval")))

    sources: list[tuple[str, int]] = [("test_net_param", i) for i in range(len(msg.test_net_param))]
    sources += [("test_net", i) for i in range(len(msg.test_net))]
    if generic and n_iter > n_explicit:
        sources += [(generic[0], 0)] * (n_iter - n_explicit)
    for k, (f, i) in enumerate(sources):
        if f in ("test_net", "net"):
            path, net = read(f, i, f"test #{k}") if f == "test_net" or not uses or uses[0].field != "net" \
                else (uses[0].path, uses[0].parsed)
        else:
            path, net = None, inline(f, i)
        ts = msg.test_state[k] if len(msg.test_state) == n_instances and k < len(msg.test_state) else None
        uses.append(NetUse(f"test #{k}", "TEST", f, loc.field(f, i), path, net, state(pb.TEST, net, ts),
                           test_iter=msg.test_iter[k] if k < n_iter else None))
    return uses


def load_solver(path: str, max_errors: int = 100):
    """Parse (and upgrade) a solver; raises DiagnosticError when it cannot be read as one."""
    source = Source.from_path(resolve(path))
    if sniff_kind(source.text) == NET:
        # Parsed as a solver, a net would be a hundred 'unknown field' errors: say what it is
        # (after its syntax errors, if it has any: those are what to fix first).
        as_net = parse_text(source, NET, max_errors)
        if not as_net.syntax_ok:
            raise DiagnosticError(list(as_net.diagnostics))
        m = _NET_KEYS.search(source.text)
        at = m.start(1) if m.group(1) else m.start()
        word = m.group(1) or "name"
        raise DiagnosticError([codes.NOT_A_SOLVER.at(
            Span(source, at, at + len(word)), path=source.path,
            notes=[f"it has '{word}', which solvers do not; a solver sets base_lr, lr_policy, net, ...",
                   "'netdef check' and 'netdef summary' analyse networks; 'netdef lr' and 'netdef solver' "
                   "take the solver that trains one (the library's are listed by 'netdef list')"])])
    parsed = upgrade_parsed(parse_text(source, SOLVER, max_errors))
    if not parsed.syntax_ok:
        raise DiagnosticError(list(parsed.diagnostics))
    return parsed


def compile_nets(uses: list[NetUse], diags: Diagnostics, inputs=None) -> None:
    """Compile each net instance in its NetState (phase, level, stages after Caffe's merge);
    the graphs' diagnostics join `diags`, each reported once even when a file serves twice."""
    from ..pipeline import compile as compile_net   # (see plan_nets)

    seen = {(d.code, d.span.source.path if d.span else None, d.span.start if d.span else None, d.message)
            for d in diags}
    for use in uses:
        if use.parsed is None or not use.parsed.syntax_ok:
            continue
        st = use.state
        kw = dict(phase=pb.Phase.Name(st.phase), stages=tuple(st.stage), level=st.level, max_errors=diags.limit)
        use.graph = compile_net(use.parsed, inputs=inputs, **kw)
        if inputs and use.phase == "TEST":
            # --input gives the training net's shapes; a test net reads its own batch size
            own = {v.name: batch for n in use.graph.nodes if (batch := param_batch(n)) for v in n.outputs}
            if any(k in own and own[k] != v[0] for k, v in inputs.items()):
                use.graph = compile_net(use.parsed, inputs={k: ((own[k],) + tuple(v[1:]) if k in own else v)
                                                            for k, v in inputs.items()}, **kw)
        for d in use.graph.diagnostics:
            key = (d.code, d.span.source.path if d.span else None, d.span.start if d.span else None, d.message)
            if key not in seen and codes.explains_a_gap(d):
                seen.add(key)
                diags.add(d)


# Data layers whose batch size is a parameter (their other dimensions may live in a database).
_BATCH_FIELDS = {"Data": "data_param", "ImageData": "image_data_param", "WindowData": "window_data_param",
                 "HDF5Data": "hdf5_data_param", "MemoryData": "memory_data_param"}


def param_batch(node) -> int | None:
    field_name = _BATCH_FIELDS.get(node.type)
    return (getattr(node.param, field_name).batch_size or None) if field_name else None


def batch_size(graph) -> int | None:
    """Samples per forward pass: the first data layer's batch_size, else the first input's N."""
    if graph is None:
        return None
    for node in graph.nodes:
        if param_batch(node):
            return param_batch(node)
    return graph.batch_size
