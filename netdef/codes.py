"""Every diagnostic code netdef emits, with its message template, in one place.

Ranges: E1xx text and syntax; E2xx schema (fields, values, enums); E3xx graph building
(phases, bottoms and tops); E4xx shapes and layer geometry; E5xx weights and export;
E6xx solvers; E7xx files and command line. Warnings use the same numbers with a W.
Each stage owns a range; add new codes in its section, never reuse a retired one.
"""
from __future__ import annotations

from dataclasses import dataclass

from .diagnostics import ERROR, WARNING, Diagnostic, Span

_ALL: dict[str, "Code"] = {}


@dataclass(frozen=True)
class Code:
    id: str
    template: str
    severity: str = ERROR

    def __post_init__(self):
        if self.id in _ALL:
            raise ValueError(f"diagnostic code {self.id} defined twice")
        _ALL[self.id] = self

    def at(self, span: Span | None, notes=(), related=(), **fields) -> Diagnostic:
        return Diagnostic(self.id, self.severity, self.template.format(**fields), span,
                          list(notes), list(related))


def all_codes() -> dict[str, Code]:
    return dict(_ALL)


def _w(id, template):
    return Code(id, template, WARNING)


# --- E1xx: text and syntax -------------------------------------------------------------
UNREADABLE = Code("E100", "{message}")
SYNTAX = Code("E101", "{message}")
UNTERMINATED_STRING = Code("E102", "string is not terminated before the end of the line")
BAD_ESCAPE = Code("E103", "invalid escape sequence '{escape}' in string")
MISMATCHED_CLOSE = Code("E104", "'{close}' closes a block opened with '{open}'")
UNEXPECTED_EOF = Code("E105", "the file ends inside {what}")
TOO_DEEP = Code("E106", "messages are nested more than {limit} levels deep")
BAD_CHARACTER = Code("E107", "unexpected character {char}")

# --- E2xx: schema ---------------------------------------------------------------------
UNKNOWN_FIELD = Code("E201", "unknown field '{field}' in {message}")
FORK_FIELD = _w("W202", "'{field}' is not a BVLC Caffe field of {message}: it comes from {fork}; netdef ignores its value here")
WRONG_TYPE = Code("E203", "field '{field}' expects {expected}, got {got}")
UNKNOWN_ENUM = Code("E204", "'{value}' is not a value of {enum} (field '{field}')")
OUT_OF_RANGE = Code("E205", "{value} is out of range for field '{field}' ({type}: {lo} to {hi})")
DUPLICATE_FIELD = Code("E206", "field '{field}' of {message} is not repeated but is given more than once")
MESSAGE_FOR_SCALAR = Code("E207", "field '{field}' expects {expected}, but a {{ ... }} block is given")
SCALAR_FOR_MESSAGE = Code("E208", "field '{field}' is a message ({message}); write it as '{field} {{ ... }}'")
NOT_A_DEFINITION = Code("E209", "{path} is not a Caffe network or solver definition: {why}")
MIXED_LAYER_FORMATS = Code("E210", "the file mixes 'layer' (current) and 'layers' (V1) definitions")
UNKNOWN_LAYER_FIELD_V0 = Code("E211", "V0 layer field '{field}' cannot be upgraded for layer type '{type}'")
UPGRADE_FAILED = Code("E212", "cannot upgrade: {message}")
UPGRADED = _w("W213", "{what} uses the deprecated {old} format; upgraded ('netdef upgrade' rewrites the file)")

# --- E5xx: weights and export -----------------------------------------------------------
WEIGHTS_UNREADABLE = Code("E501", "cannot read weights {path}: {why}")
WEIGHTS_CORRUPT = Code("E502", "{path} is not a readable .caffemodel: {why}")
WEIGHTS_BLOB_COUNT = Code("E503", "layer '{layer}' needs {expected} parameter blob(s) {expected_shapes}, but {path} holds {got} {got_shapes}")
WEIGHTS_BLOB_SHAPE = Code("E504", "parameter blob {index} of layer '{layer}' has shape {got} in {path}, but the net needs {expected}")
WEIGHTS_MISSING = _w("W505", "layer '{layer}' has no weights in {path}; its fillers are used instead")
WEIGHTS_EXTRA = _w("W506", "{path} holds {count} blob(s) for layer '{layer}' ({type}), which the net does not have; they are ignored")
FILLER_UNKNOWN = Code("E507", "unknown filler type '{type}'")
FILLER_INVALID = Code("E508", "the {type} filler cannot fill parameter blob {index} of layer '{layer}' (shape {shape}): {why}")
EXPORT_UNSUPPORTED = Code("E510", "layer '{layer}' ({type}) cannot be exported to ONNX: {why}")
EXPORT_DROPPED = _w("W511", "layer '{layer}' ({type}) is for training only; it is left out of the exported graph")
EXPORT_DROPPED_INPUT = _w("W518", "layer '{layer}' ({type}) is left out of the exported graph: its input '{blob}' comes from {source}")
EXPORT_EMPTY = Code("E512", "{net} has no layer left to export")
EXPORT_BATCH = Code("E513", "cannot set the batch: {why}")
VERIFY_MISMATCH = Code("E514", "layer '{layer}' ({type}): onnxruntime and the NumPy reference differ on top '{top}' by {error} (relative), more than the tolerance {tolerance}")
VERIFY_INCOMPLETE = _w("W515", "the comparison is incomplete: {why}")
SHAPES_UNKNOWN = Code("E516", "the shape of '{blob}' is unknown, so the net cannot be {what}")
EXPORT_CUSTOM = _w("W530", "layer '{layer}' ({type}) is exported as a node of the custom domain '{domain}', which standard ONNX runtimes cannot run without a plugin")

# --- upgrade (netdef/upgrade.py; E210-E213 above are upgrade codes too) ------------------
DROPPED_BY_UPGRADE = _w("W214", "the upgrade drops '{field}': {why}")
FORK_V1_TYPE = _w("W215", "'{value}' is not a BVLC Caffe V1 layer type: it comes from {fork}; upgraded to type \"{v2}\"")
FORK_FIELD_READ = _w("W216", "'{field}' is not a BVLC Caffe field of {message}: it comes from {fork}; {reading}")
FORK_ENUM = _w("W217", "'{value}' is not a BVLC Caffe value of {enum} (field '{field}'): it comes from {fork}")
FORK_SEMANTICS = _w("W218", "layer '{layer}' ({type}): {forks} give this definition different meanings; netdef computes {chosen}'s, because {why}")

# --- E6xx: solvers ------------------------------------------------------------------------
NO_LR_POLICY = Code("E601", "the solver has no lr_policy")
UNKNOWN_LR_POLICY = Code("E602", "unknown lr_policy '{value}'")
POLICY_NEEDS = Code("E603", "lr_policy '{policy}' needs '{field}'")
POLICY_VALUE = Code("E604", "{field} must be {rule} for lr_policy '{policy}', got {value}")
POLICY_IGNORES = _w("W605", "'{field}' has no effect with lr_policy '{policy}'")
POLICY_DEGENERATE = _w("W606", "{message}")
STEPVALUE_ORDER = _w("W607", "stepvalue {value} is not greater than the previous stepvalue ({prev}): Caffe advances at most one step per iteration, so this step happens at iteration {at}")
UNKNOWN_SOLVER_TYPE = Code("E608", "unknown solver type '{value}'")
SOLVER_CONSTRAINT = Code("E610", "{field} must be {rule} for the {type} solver, got {value}")
SOLVER_IGNORES = _w("W611", "'{field}' has no effect with the {type} solver")
SOLVER_SUSPICIOUS = _w("W612", "{field} = {value} with the {type} solver: {why}")
BAD_REGULARIZATION = Code("E613", "unknown regularization_type '{value}'; Caffe knows 'L1' and 'L2'")
NOT_A_SOLVER = Code("E630", "{path} is a network definition, not a solver")
SOLVER_VALUE = Code("E614", "{field} must be {rule}, got {value}")
SOLVER_VALUE_WARN = _w("W615", "{field} = {value}: {why}")
NO_TRAIN_NET = Code("E616", "the solver names no training net")
MANY_TRAIN_NETS = Code("E617", "the solver names {count} training nets; exactly one of net, net_param, train_net, train_net_param is allowed")
TEST_ITER_COUNT = Code("E618", "test_iter is given {got} time(s) for {nets}; {rule}")
TEST_STATE_COUNT = Code("E619", "test_state is given {got} time(s) for {instances} test net(s); give it once per test net or not at all")
NO_TEST_INTERVAL = Code("E620", "test nets are defined but test_interval is {value}; it must be positive")
TEST_INTERVAL_UNUSED = _w("W621", "test_interval is set but the solver has no test nets (each test_iter defines one)")
NET_FILE_MISSING = Code("E622", "cannot read the {role} net '{path}': {why}")
NET_FILE_ELSEWHERE = _w("W623", "the {role} net '{path}' is not in the solver's directory; using '{found}' found there")
SNAPSHOT_NO_PREFIX = Code("E624", "snapshot is {value} but snapshot_prefix is not set")

# --- E3xx: graph building (NetState filtering, bottoms and tops, inputs) -----------------
NOT_A_NET = Code("E300", "{path} is a solver definition; this command needs a network")
UNDEFINED_BOTTOM = Code("E301", "bottom '{blob}' of layer '{layer}' is not produced by any earlier layer")
DUPLICATE_TOP = Code("E302", "top '{blob}' of layer '{layer}' is already produced by layer '{other}'")
INCLUDE_AND_EXCLUDE = Code("E303", "layer '{layer}' has both include and exclude rules; Caffe allows one kind or the other")
MISSING_TYPE = Code("E304", "layer '{layer}' has no type")
UNKNOWN_LAYER_TYPE = Code("E305", "unknown layer type '{type}' (layer '{layer}'); shape inference stops here")
UNSUPPORTED_LAYER = _w("W306", "netdef cannot infer shapes through layer '{layer}' (type '{type}', {why}); the analysis after it is incomplete")
LEGACY_INPUT = Code("E307", "{message}")
INPUT_SHAPE_NEEDED = _w("W308", "the shape of '{blob}' is not fixed by the definition ({why}); give it with --input {blob}=N,C,H,W")
UNKNOWN_INPUT_OPTION = Code("E309", "--input names '{blob}', which is not an input or data-layer top of this net")
DUPLICATE_LAYER_NAME = _w("W310", "layer name '{layer}' is used more than once; weights are matched to layers by name")
UNUSED_TOP = _w("W311", "top '{blob}' of layer '{layer}' is never used; it becomes a net output")
DEAD_LAYER = _w("W312", "the results of layer '{layer}' reach no net output{why}")
SHARED_PARAM_MISMATCH = Code("E313", "shared parameter '{param}' has shape {shape} in layer '{layer}' but {owner_shape} in layer '{owner}'")
TOO_MANY_PARAM_SPECS = Code("E314", "layer '{layer}' gives {given} param {{ }} blocks but a {type} layer has {count} parameter blob(s)")
BLOB_COUNT = Code("E315", "a {type} layer takes {expected} {what}, but layer '{layer}' has {got}")
SHARED_PARAM_SETTING = Code("E316", "shared parameter '{param}' has {field} {value} in layer '{layer}' but {owner_value} in layer '{owner}'")
NO_LAYERS = _w("W317", "no layers are left in {state}")
PROPAGATE_DOWN_COUNT = Code("E319", "layer '{layer}' gives {got} propagate_down values for {bottoms} bottom(s); give one per bottom or none")

# --- E4xx: shapes and layer geometry -----------------------------------------------------
SHAPE_MISMATCH = Code("E401", "{message}")
BAD_GEOMETRY = Code("E402", "{message}")
MISSING_PARAM = Code("E403", "{what} of layer '{layer}' is not set; a {type} layer needs it")
BAD_PARAM = Code("E404", "{message}")
BAD_GROUP = Code("E405", "{message}")
BAD_SLICE = Code("E406", "{message}")
CROP_OUT_OF_BOUNDS = Code("E407", "{message}")
BAD_AXIS = Code("E408", "{message}")
COUNT_MISMATCH = Code("E409", "{message}")
BAD_RANK = Code("E410", "layer '{layer}' ({type}) needs a {need} bottom, but '{blob}' has shape {shape}")
POOL_OVERHANG = _w("W411", "the last window of pooling layer '{layer}' runs past the input edge {where} ({detail}); Caffe clips it")
RF_DISAGREE = _w("W412", "the inputs of layer '{layer}' disagree on the receptive field's {what} ({detail})")

# --- analysis follow-ups (netdef/layers, netdef/passes) ---------------------------------
PARAM_IGNORED = _w("W413", "{message}")
POOL_KERNEL_LARGER = _w("W414", "the kernel of pooling layer '{layer}' is larger than its padded input {detail}; Caffe computes {windows}")
CONV_KERNEL_LARGER = _w("W416", "the kernel of convolution layer '{layer}' is larger than its padded input {detail}; Caffe computes {windows}")
ANALYSIS_INCOMPLETE = Code("E415", "the totals are incomplete: {n} layer(s) could not be analysed, starting at layer '{layer}'")

# --- export follow-ups: running models (netdef/export/runtime.py, verify.py) ---------------
WEIGHTS_MISSING_STRICT = Code("E505", "layer '{layer}' has parameters, but {path} has no weights for it")
OUTSIDE_OUTPUTS = _w("W529", "layer '{layer}' ({type}) is outside the sub-graph that computes {outputs} and is left out; its problem does not stop the export: {message}")
OUTPUT_NOT_FINITE = _w("W517", "output '{output}' holds {detail} of its {total} values")

# --- robustness follow-ups (hostile input found by tests/robustness, benchmarks/fuzz.py) -------
SAME_NAME_PARAMS = Code("E520", "layer '{layer}' ({type}) has the name of another layer with parameters ({other}, line {line}); weights are matched to layers by name, so netdef cannot give each its own")


# Warnings that explain a gap in a result (a layer netdef cannot analyse, an input whose shape
# must be given): every command that reports on a net shows them, not only `netdef check`.
EXPLAINS_A_GAP = frozenset({UNSUPPORTED_LAYER.id, INPUT_SHAPE_NEEDED.id})
# The warnings that say a definition uses a fork's field or value (summed up by fmt).
FORK_NOTES = frozenset({FORK_FIELD.id, FORK_V1_TYPE.id, FORK_FIELD_READ.id, FORK_ENUM.id})


def explains_a_gap(diag) -> bool:
    """An error, or a warning that explains a gap in a result: what a report on a net shows
    outside `netdef check` (netdef.cli.select holds the table of what each command shows)."""
    return diag.is_error or diag.code in EXPLAINS_A_GAP
