"""Every zoo definition parses to the messages protobuf's own text_format gives under the same
schema, or gets a targeted diagnostic for the fork-only names BVLC Caffe lacks."""
import re

import pytest
from google.protobuf import text_format

from conftest import ZOO
from netdef.parse import NET, SOLVER, parse_file
from netdef.proto import pb

FILES = sorted(p for p in ZOO.glob("*/*") if p.suffix in (".prototxt", ".pt", ".proto", ".txt"))

# What text_format says about a name the schema lacks.
_TF_UNKNOWN = re.compile(r'has no field named "(\w+)"')


def _reference(path, kind):
    """text_format's message, with the fields the schema lacks skipped, and their names."""
    msg = (pb.NetParameter if kind == NET else pb.SolverParameter)()
    text = path.read_text(encoding="utf-8")
    try:
        text_format.Parse(text, msg)
        return msg, set()
    except text_format.ParseError as e:
        first = _TF_UNKNOWN.search(str(e))
        assert first, f"text_format rejects {path} for a reason other than an unknown field: {e}"
    msg = (pb.NetParameter if kind == NET else pb.SolverParameter)()
    text_format.Parse(text, msg, allow_unknown_field=True)
    return msg, {first.group(1)}


def test_zoo_has_files():
    assert len(FILES) > 150


@pytest.mark.parametrize("path", FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_zoo_file_parses_like_text_format(path):
    parsed = parse_file(path)
    errors = [d for d in parsed.diagnostics if d.is_error]
    if path.name == "labelmap_voc.prototxt":
        assert [d.code for d in errors] == ["E209"], "a label map is reported as not a definition"
        return
    assert parsed.kind in (NET, SOLVER)
    ref, unknown = _reference(path, parsed.kind)
    assert parsed.message == ref, f"{path}: netdef's message differs from text_format's"
    reported = {d.message.split("'")[1] for d in parsed.diagnostics if d.code in ("E201", "W202", "W216")}
    # text_format stops at the first unknown name; netdef must report that one (and may report more).
    assert unknown <= reported
    for d in parsed.diagnostics:
        assert d.span is not None and d.span.line >= 1
        if d.code == "E201":
            # Only names that really are not BVLC's: typos in the zoo file or never-released fields.
            assert d.message.split("'")[1] in {"stepearly"}, d.render()


def test_fork_fields_keep_their_values():
    parsed = parse_file(ZOO / "ssd300_vgg16_voc" / "deploy.prototxt")
    permutes = [(l, parsed.loc.msg("layer", i)) for i, l in enumerate(parsed.message.layer) if l.type == "Permute"]
    assert permutes
    layer, loc = permutes[0]
    assert loc.extra["permute_param"] == [{"order": [0, 2, 3, 1]}]
    codes = {d.code for d in parsed.diagnostics}
    # Every SSD field of the file is one netdef reads (W216), none is ignored (W202).
    assert codes == {"W216"}
    assert all("netdef reads it" in d.message for d in parsed.diagnostics)
    first = next(d for d in parsed.diagnostics)
    assert "SSD fork" in first.message
