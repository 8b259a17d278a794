"""docs/layers.md is generated from the layer registry (python3 -m netdef.layer_table) and must
be current: every registered type has a row with its origin and the source it was checked against."""
from conftest import REPO

from netdef import layers
from netdef.forks import fork_of_layer_type
from netdef import layer_table as doc


def test_committed_table_is_current(capsys):
    assert doc.main(["--check", str(REPO / "docs" / "layers.md")]) == 0, capsys.readouterr().err


def test_every_type_has_a_row_with_its_origin():
    every = doc.rows()
    rows = {r[0].strip("`"): r for r in every if r[0].endswith("`")}
    assert set(rows) == set(layers.known_types())
    # A fork's variant of a type has a row of its own: "`Normalize` with normalize_param".
    variants = [r for r in every if not r[0].endswith("`")]
    assert sorted(r[0].split("`")[1] for r in variants) == sorted(t for t, _ in layers.base.variants())
    assert all(r[1] != "BVLC Caffe" and r[7] for r in variants)
    for t, row in rows.items():
        fork = fork_of_layer_type(t)
        if fork is not None:
            assert row[1] != "BVLC Caffe", t          # a fork's type never claims BVLC as its origin
        assert row[7], t
    assert rows["Convolution"][7] == "BVLC/caffe src/caffe/layers/conv_layer.cpp"
    assert rows["Reorg"][1] == "YOLO ports of Caffe" and "gklz1982/caffe-yolov2" in rows["Reorg"][7]
    assert rows["CenterLoss"][5] == "dropped" and rows["CenterLoss"][6] == "skipped"
    assert rows["ShuffleChannel"][5].startswith("Reshape")


def test_check_reports_a_stale_file(tmp_path, capsys):
    stale = tmp_path / "layers.md"
    stale.write_text("# Layer types\n")
    assert doc.main(["--check", str(stale)]) == 1
    assert "not current" in capsys.readouterr().err
    assert doc.main([str(stale)]) == 0
    assert doc.main(["--check", str(stale)]) == 0


def test_the_module_runs_as_a_command():
    import subprocess
    import sys
    r = subprocess.run([sys.executable, "-m", "netdef.layer_table", "--check", str(REPO / "docs" / "layers.md")],
                       capture_output=True, text=True, cwd=REPO, timeout=120)
    assert r.returncode == 0, r.stderr
