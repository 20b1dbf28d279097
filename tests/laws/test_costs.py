"""The measured cost model: exact on the two idealisations, brute-force checked
on measured curves, and hostile files rejected with the file and key named."""

import json
import subprocess
import sys

import numpy as np
import pytest

from sparsescale.errors import SparsescaleError
from sparsescale.laws import planning
from sparsescale.laws.costs import (
    FORMAT,
    dense_cost,
    load_speedups,
    sparse_cost,
    speedups_from_dict,
)
from sparsescale.laws.presets import preset

VIT, T5 = preset("vit-jft"), preset("t5-c4")
GRID = np.linspace(0.0, planning.MAX_SPARSITY, 4001)
# Measured points up to the planner's search limit, so nothing is extrapolated.
KNOTS = (0.1, 0.3, 0.5, 0.75, 0.875, 0.95, 0.99, planning.MAX_SPARSITY)


def _doc(table: dict) -> dict:
    return {"format": FORMAT, "machine": {"device": "test"}, "speedups": table}


def _file(tmp_path, speedup_of_s, pattern="unstructured", knots=KNOTS):
    path = tmp_path / "speedups.json"
    path.write_text(json.dumps(_doc({pattern: {f"{s!r}": speedup_of_s(s) for s in knots}})))
    return path


@pytest.mark.parametrize("start, end", [(0.25, 0.75), (0.0, 1.0), (0.1, 0.5), (0.5, 0.9)])
def test_idealisations_equal_the_planners_closed_forms(start, end):
    assert np.allclose(
        sparse_cost(start, end).c_mul(GRID), planning.c_mul(GRID, "sparse", start, end), rtol=1e-12
    )
    assert np.allclose(
        dense_cost(start, end).c_mul(GRID), planning.c_mul(GRID, "dense", start, end), rtol=1e-12
    )
    inner = GRID[:-1]
    assert np.allclose(
        sparse_cost(start, end).dlog_c_mul(inner),
        planning.dlog_c_mul(inner, "sparse", start, end),
        rtol=1e-5,
    )


@pytest.mark.parametrize("start, end", [(0.25, 0.75), (0.1, 0.5)])
def test_measured_file_on_the_ideal_curves_reproduces_both_accountings(tmp_path, start, end):
    ideal = load_speedups(_file(tmp_path, lambda s: 1.0 / (1.0 - s))).cost_model(
        "unstructured", start, end
    )
    assert np.allclose(ideal.c_mul(GRID), planning.c_mul(GRID, "sparse", start, end), rtol=1e-10)
    flat = load_speedups(_file(tmp_path, lambda s: 1.0)).cost_model("unstructured", start, end)
    assert np.allclose(flat.c_mul(GRID), planning.c_mul(GRID, "dense", start, end), rtol=1e-12)


@pytest.mark.parametrize("law", [VIT, T5], ids=["vit-jft", "t5-c4"])
@pytest.mark.parametrize(
    "speedup, flops", [(lambda s: 1.0 / (1.0 - s), "sparse"), (lambda s: 1.0, "dense")]
)
def test_optimal_with_measured_speedups_matches_the_idealised_answer(tmp_path, law, speedup, flops):
    cost = load_speedups(_file(tmp_path, speedup)).cost_model("unstructured")
    N = 1e7
    d_star = float(planning.chinchilla_data(law, N))
    for k in (2, 5, 20):
        C = k * 6 * N * d_star
        want = planning.optimal_sparsity(law, N, C, flops)
        got = planning.optimal_sparsity(law, N, C, cost)
        assert got.sparsity == pytest.approx(want.sparsity, abs=1e-7)
        assert got.loss == pytest.approx(want.loss, rel=1e-12)
        assert got.data == pytest.approx(want.data, rel=1e-6)
    S = np.array([0.5, 0.75, 0.875])
    assert np.allclose(
        planning.optimal_data_ratio(law, S, cost),
        planning.optimal_data_ratio(law, S, flops),
        rtol=1e-5,
    )


@pytest.mark.parametrize("fallback", [True, False])
def test_schedule_average_matches_brute_force_for_a_measured_curve(tmp_path, fallback):
    table = {0.5: 0.4, 0.75: 0.9, 0.9: 2.5, 0.95: 3.1}  # CSR-like: loses at low S, wins late
    speedups = load_speedups(_file(tmp_path, table.get, knots=tuple(table)))
    cost = speedups.cost_model("unstructured", 0.2, 0.8, dense_fallback=fallback)
    t = (np.arange(400_000) + 0.5) / 400_000
    p = np.clip((t - 0.2) / 0.6, 0, 1)
    for S in (0.3, 0.6, 0.8, 0.93, 0.99):
        r = np.interp(
            S * (1 - (1 - p) ** 3), [0.0, *table], [1.0, *(1 / v for v in table.values())]
        )
        if fallback:  # the dense step wherever the kernel is slower
            r = np.minimum(r, 1.0)
        assert cost.mean_step_time(S) == pytest.approx(r.mean(), rel=1e-6)
        assert cost.c_mul(S) == pytest.approx(r.mean() / (1 - S), rel=1e-6)


def test_dense_fallback_never_costs_more_than_dense(tmp_path):
    table = {0.5: 0.4, 0.75: 0.9, 0.9: 2.5}
    speedups = load_speedups(_file(tmp_path, table.get, knots=tuple(table)))
    capped, raw = speedups.cost_model(), speedups.cost_model(dense_fallback=False)
    dense = planning.c_mul(GRID, "dense")
    assert np.all(capped.c_mul(GRID) <= dense * (1 + 1e-12))
    assert np.any(raw.c_mul(GRID) > dense * 1.05)  # the slow kernel, priced as measured
    # the crossing of r = 1 between 0.75 (r = 1.11) and 0.9 (r = 0.4) is a knot
    cross = 0.75 + (1 - 1 / 0.9) * 0.15 / (0.4 - 1 / 0.9)
    assert cross in capped.knots and capped.relative_step_time(cross) == pytest.approx(1.0)
    assert str(capped) == "measured:unstructured"


def test_no_speedup_is_extrapolated_beyond_the_largest_measured_sparsity(tmp_path):
    cost = load_speedups(_file(tmp_path, lambda s: 2.0, knots=(0.5,))).cost_model()
    assert cost.relative_step_time(0.5) == pytest.approx(0.5)
    assert cost.relative_step_time(0.99) == pytest.approx(0.5)
    assert cost.relative_step_time(0.25) == pytest.approx(0.75)  # linear from r(0) = 1


def test_nm_kernel_counts_only_after_the_mask_is_final(tmp_path):
    speedups = load_speedups(_file(tmp_path, lambda s: 1.25, pattern="2:4", knots=(0.5,)))
    cost = speedups.cost_model("2:4", start=0.25, end=0.75)
    assert cost.mean_step_time(0.5) == pytest.approx(0.75 + 0.25 / 1.25)
    assert speedups.c_mul(0.5, "2:4") == pytest.approx((0.75 + 0.25 / 1.25) / 0.5)
    assert cost.mean_step_time(0.4) == pytest.approx(
        1.0
    )  # below 2:4's sparsity the step is masked-dense
    with pytest.raises(SparsescaleError, match="no speedups measured for pattern 'unstructured'"):
        speedups.cost_model("unstructured")


@pytest.mark.parametrize(
    "doc, match",
    [
        ([], "expected a JSON object"),
        ({"speedups": {"unstructured": {"0.5": 1}}}, "'format' must be"),
        (_doc({}), "non-empty object"),
        (_doc({"3:2": {"0.5": 1}}), "need 0 < n < m"),
        (_doc({"blocky": {"0.5": 1}}), "unknown pattern 'blocky'"),
        (
            _doc({"unstructured": {"1.0": 2}}),
            r"speedups\['unstructured'\]: sparsity '1.0' is outside",
        ),
        (_doc({"unstructured": {"half": 2}}), "sparsity: expected a number, got 'half'"),
        (_doc({"unstructured": {"0.5": 0}}), r"\['0.5'\]: speedup must be > 0"),
        (_doc({"unstructured": {"0.5": "fast"}}), "expected a number, got 'fast'"),
        (_doc({"unstructured": {"0.5": None}}), "expected a number, got None"),
        (_doc({"unstructured": {"0.5": 1.0, "0.50": 2.0}}), "given twice"),
        (_doc({"unstructured": {"0.5": 1.0}, "dense": {"0.5": 1.0}}), "'unstructured' given twice"),
        (_doc({"2:4": {"0.25": 1.2}}), "below 0.5, the least pattern 2:4 gives"),
        (_doc({"unstructured": []}), "mapping sparsity to speedup"),
    ],
)
def test_bad_documents_name_the_source_and_key(doc, match):
    with pytest.raises(SparsescaleError, match=match) as info:
        speedups_from_dict(doc, "my.json")
    assert str(info.value).startswith("my.json")


def test_bad_files(tmp_path):
    with pytest.raises(SparsescaleError, match="absent.json: no such speedups file"):
        load_speedups(tmp_path / "absent.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": ')
    with pytest.raises(SparsescaleError, match=r"bad.json: not valid JSON \(line 1"):
        load_speedups(bad)


def test_costs_import_without_torch():
    code = "import sys, sparsescale.laws.costs; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def _cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "sparsescale", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    "speedup, flops", [(lambda s: 1.0 / (1.0 - s), "sparse"), (lambda s: 1.0, "dense")]
)
def test_cli_optimal_measured_reproduces_the_idealised_answer(tmp_path, speedup, flops):
    path = _file(tmp_path, speedup)
    common = ["optimal", "--law", "vit-jft", "--params", "1e7", "--compute", "1e18", "--json"]
    want = json.loads(_cli(*common, "--flops", flops).stdout)
    proc = _cli(*common, "--flops", "measured", "--speedups", path)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    assert got["sparsity"] == pytest.approx(want["sparsity"], abs=1e-7)
    assert got["flops"] == "measured:unstructured"
    for s, ratio in want["optimal_data_ratio"].items():
        assert got["optimal_data_ratio"][s] == pytest.approx(ratio, rel=1e-5)


def test_cli_optimal_measured_bad_input(tmp_path):
    common = ["optimal", "--law", "vit-jft", "--params", "1e7", "--compute", "1e18"]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(_doc({"unstructured": {"0.5": -1}})))
    for args, match in (
        (["--flops", "measured"], "--flops measured needs --speedups"),
        (["--speedups", bad], "--speedups is for --flops measured"),
        (
            ["--flops", "measured", "--speedups", bad],
            "bad.json: speedups['unstructured']['0.5']: speedup must be > 0",
        ),
        (
            ["--flops", "measured", "--speedups", tmp_path / "none.json"],
            "none.json: no such speedups file",
        ),
    ):
        proc = _cli(*common, *args)
        assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and match in proc.stderr, (
            proc.stderr
        )


def test_sopt_map_with_measured_ideal_speedups_matches_the_sparse_map(tmp_path):
    cost = load_speedups(_file(tmp_path, lambda s: 1.0 / (1.0 - s))).cost_model()
    N, C = np.meshgrid(np.logspace(6, 9, 7), np.logspace(17, 22, 9))
    want = planning.optimal_sparsity_grid(T5, N, C, "sparse", resolution=400)
    got = planning.optimal_sparsity_grid(T5, N, C, cost, resolution=400)
    assert got.shape == N.shape
    assert np.allclose(got, want, atol=1e-9)


def test_a_losing_nm_kernel_falls_back_to_dense(tmp_path):
    speedups = load_speedups(_file(tmp_path, lambda s: 0.8, pattern="2:4", knots=(0.5,)))
    assert speedups.c_mul(0.5, "2:4") == pytest.approx(planning.c_mul(0.5, "dense"))
    raw = speedups.cost_model("2:4", dense_fallback=False)
    assert raw.mean_step_time(0.5) == pytest.approx(0.75 + 0.25 / 0.8)
