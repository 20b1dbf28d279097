"""`sparsescale choose-pattern` in subprocesses: the pattern choice and the
bad combinations it refuses (one line on stderr, exit 2); the old spelling
`optimal --patterns` runs it, with a deprecation note, for one release."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from sparsescale.laws.law import Law
from sparsescale.report.lawfile import write_law

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1] / "laws"))
from test_patterns import base_with_draws, synthetic  # noqa: E402

from sparsescale.laws.nm_patterns import fit_patterns  # noqa: E402
from sparsescale.laws.points import FitOptions


def run(*args):
    return subprocess.run(
        [sys.executable, "-m", "sparsescale", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
    )


def assert_one_line_error(proc, *fragments):
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    for f in fragments:
        assert f in lines[0], lines[0]


@pytest.fixture(scope="module")
def law_file(tmp_path_factory):
    """A report-style law.json: a base law with draws plus its 2:4 and 1:4 pattern laws."""
    base = base_with_draws()
    base.name = "synthetic"
    path = tmp_path_factory.mktemp("nm") / "law.json"
    write_law(
        path,
        base,
        {
            "laws": fit_patterns(
                synthetic(["2:4", "1:4"], noise=0.005), FitOptions(form="nm", base=base), n_boot=20
            ).to_dict()
        },
    )
    return path


def test_choice_json_prices_every_option_with_intervals(law_file):
    proc = run(
        "choose-pattern",
        "--law",
        law_file,
        "--patterns",
        law_file,
        "--params",
        "5e4",
        "--compute",
        "6e11",
        "--speedup",
        "2:4=1.3",
        "--json",
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    rows = {r["choice"]: r for r in out["choices"]}
    assert list(rows) == ["dense", "unstructured 50%", "unstructured 75%", "2:4", "1:4"]
    assert rows["dense"]["flops"]["data"] == pytest.approx(6e11 / (6 * 5e4))
    assert rows["2:4"]["speedup"] == 1.3 and rows["1:4"]["speedup"] is None
    # 1:4 without a speedup runs at dense step time: 1/(1-S) = 4x the dense cost per non-zero
    assert rows["1:4"]["time"]["c_mul"] == pytest.approx(4.0)
    for r in rows.values():
        lo, hi = r["flops"]["interval"]
        assert lo < r["flops"]["loss"] < hi
    best = min(out["choices"], key=lambda r: r["time"]["loss"])["choice"]
    assert out["best"]["time"] == best
    text = run(
        "choose-pattern",
        "--law",
        law_file,
        "--patterns",
        law_file,
        "--params",
        "5e4",
        "--compute",
        "10x",
    )
    assert text.returncode == 0 and "best at equal FLOPs" in text.stdout and "1:4" in text.stdout


def test_bad_pattern_combinations_exit_2_with_one_line(law_file, tmp_path):
    obj = json.loads(law_file.read_text())
    wrong_s = tmp_path / "wrong-s.json"
    obj2 = json.loads(json.dumps(obj))
    obj2["pattern_laws"]["patterns"]["2:4"]["sparsity"] = 0.75
    wrong_s.write_text(json.dumps(obj2))
    no_base = tmp_path / "no-base.json"
    obj3 = json.loads(json.dumps(obj))
    del obj3["pattern_laws"]["base"]
    no_base.write_text(json.dumps(obj3))
    bad_key = tmp_path / "bad-key.json"
    obj4 = json.loads(json.dumps(obj))
    obj4["pattern_laws"]["patterns"]["2x4"] = obj4["pattern_laws"]["patterns"].pop("2:4")
    bad_key.write_text(json.dumps(obj4))
    other = tmp_path / "other.json"
    Law(
        "sparse", {"aS": 1.0, "bS": 1.0, "cS": 1.0, "bN": 0.2, "aD": 1.0, "bD": 0.3, "c": 1.0}
    ).save(other)
    dense = tmp_path / "dense.json"
    Law("dense", {"A": 1.0, "alpha": 0.3, "B": 1.0, "beta": 0.3, "E": 1.0}).save(dense)
    common = ["--params", "5e4", "--compute", "10x"]
    cases = [
        (
            ["--law", law_file, "--patterns", wrong_s],
            ["2:4 fixes S = 1 - 2/4 = 0.5, incompatible with sparsity 0.75"],
        ),
        (
            ["--law", law_file, "--patterns", no_base],
            ["carry no base", "cannot be used without it"],
        ),
        (["--law", other, "--patterns", law_file], ["fitted on another base law"]),
        (["--law", dense, "--patterns", law_file], ["--law", "sparse-form base law"]),
        (["--law", law_file, "--patterns", other], ["holds no pattern laws"]),
        (["--law", law_file, "--patterns", bad_key], ["unknown pattern '2x4'"]),
        (
            ["--law", law_file, "--patterns", tmp_path / "missing.json"],
            ["--patterns", "no such file"],
        ),
        (
            ["--law", law_file, "--patterns", law_file, "--speedup", "2:4"],
            ["--speedup", "PATTERN=FACTOR"],
        ),
        (
            ["--law", law_file, "--patterns", law_file, "--speedup", "3:2=1.5"],
            ["--speedup", "need 0 < n < m"],
        ),
        (
            ["--law", law_file, "--patterns", law_file, "--speedup", "4:8=1.5"],
            ["4:8 is not among the choices"],
        ),
        (
            ["--law", law_file, "--patterns", law_file, "--flops", "dense"],
            ["No such option: --flops"],
        ),
        (
            ["--law", law_file, "--patterns", law_file, "--level", "0.2"],
            ["--level: must be in [0.5, 1)"],
        ),
    ]
    for args, fragments in cases:
        assert_one_line_error(run("choose-pattern", *args, *common), *fragments)
    assert_one_line_error(
        run("choose-pattern", "--law", law_file, "--patterns", law_file, "--params", "5e4"),
        "Missing option '--compute'",
    )
    assert_one_line_error(
        run(
            "choose-pattern",
            "--law",
            law_file,
            "--patterns",
            law_file,
            "--params=-1",
            "--compute",
            "10x",
        ),
        "--params: must be > 0",
    )


def test_the_old_spelling_refuses_what_it_always_did(law_file):
    common = ["--params", "5e4", "--compute", "10x"]
    cases = [
        (
            ["--law", law_file, "--speedup", "2:4=1.3", *common],
            ["--speedup is for the pattern choice"],
        ),
        (
            ["--law", law_file, "--patterns", law_file, "--flops", "dense", *common],
            ["--patterns reports both"],
        ),
        (
            ["--law", law_file, "--patterns", law_file, "--contours", *common],
            ["--contours", "does not combine"],
        ),
        (
            ["--law", law_file, "--patterns", law_file, "--params", "5e4"],
            ["--patterns needs --params N and --compute C"],
        ),
    ]
    for args, fragments in cases:
        assert_one_line_error(run("optimal", *args), *fragments)


def test_the_old_spelling_runs_the_new_command_with_one_note(law_file):
    """`optimal --patterns` gives the JSON of `choose-pattern`, and one note on
    stderr naming the new command."""
    args = [
        "--law",
        law_file,
        "--patterns",
        law_file,
        "--params",
        "5e4",
        "--compute",
        "10x",
        "--speedup",
        "2:4=1.3",
        "--speedup",
        "1:4=1.1",
        "--start",
        "0.2",
        "--level",
        "0.9",
        "--json",
    ]
    old, new = run("optimal", *args), run("choose-pattern", *args)
    assert old.returncode == new.returncode == 0, old.stderr + new.stderr
    assert json.loads(old.stdout) == json.loads(new.stdout) and new.stderr == ""
    note = old.stderr.strip().splitlines()
    assert len(note) == 1 and "deprecated" in note[0] and "sparsescale choose-pattern" in note[0]


def test_a_pattern_fit_without_a_base_exits_2(tmp_path):
    data = tmp_path / "nm.csv"
    data.write_text(
        "S,N,D,L\n" + "".join(f"0.5,{n},{d},3.0\n" for n in (1e4, 2e4) for d in (1e5, 2e5))
    )
    proc = run(
        "fit",
        data,
        "--form",
        "nm",
        "--sparsity",
        "S",
        "--params",
        "N",
        "--data",
        "D",
        "--loss",
        "L",
    )
    assert_one_line_error(proc, "base")
