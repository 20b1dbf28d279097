"""Dense prefixes of pruned-from-dense runs: planned once, trained once
(counted in the store's attempt log and in the run folders), finished before
their users start, reused across sweeps of one store; the pruned phase reads
the data after the prefix's; the compute accounting charges the prefix."""

import subprocess
import sys

import pytest

from sparsescale.errors import SparsescaleError
from sparsescale.recipes.demo import preset_path
from sparsescale.sweep.compute import compute_accounting, sweep_total_flops
from sparsescale.sweep.coordinator import run_sweep
from sparsescale.sweep.spec import check_runs, expand, load_spec, spec_from_dict
from sparsescale.sweep.store import Store

TRAIN = {"batch": 8, "seq_len": 32, "eval_tokens": 1024, "lr": 0.01}


def tiny(name="shared", **grid):
    g = {
        "sparsity": [0.0, 0.5, 0.75],
        "n_nonzero": ["8k", "16k"],
        "tokens": ["16k", "32k"],
        "dense_prefix": [0, "16k"],
    } | grid
    return spec_from_dict({"name": name, "family": "gpt", "grid": g, "train": TRAIN})


def prefixes(runs):
    return {
        r.config["init_from"][1:]
        for r in runs
        if str(r.config.get("init_from") or "").startswith("@")
    }


def test_the_pretrained_preset_shares_its_prefixes():
    runs = expand(load_spec(preset_path("pretrained")))
    by_hash = {r.config_hash: r for r in runs}
    pruned = [r for r in runs if r.depends_on]
    used = prefixes(runs)
    assert len(runs) == 49 and len(pruned) == 18 and len(used) == 8
    users = {h: sum(h in r.depends_on for r in pruned) for h in used}
    assert sorted(users.values()) == [1, 1, 2, 2, 2, 2, 4, 4]  # 18 pruned runs on 8 prefixes
    # the 25k- and 50k-wide prefixes are dense grid runs (same config): planned once, as grid points
    grid_prefixes = [h for h in used if by_hash[h].axes.get("role") != "dense-pretrain"]
    alone = [h for h in used if users[h] == 1 and h not in grid_prefixes]
    assert [(by_hash[h].config["params"], by_hash[h].config["tokens"]) for h in alone] == [
        (200000, 800000)
    ]
    assert sorted(
        (by_hash[h].config["params"], by_hash[h].config["tokens"]) for h in grid_prefixes
    ) == [(25000, 400000), (25000, 800000), (50000, 400000), (50000, 800000)]
    order = [r.config_hash for r in runs]
    assert all(order.index(d) < order.index(r.config_hash) for r in pruned for d in r.depends_on)
    # the pruned phase continues after the prefix's data, to the same total budget
    for r in pruned:
        d0 = r.axes["dense_tokens"]
        assert r.config["dense_tokens"] == d0 == by_hash[r.depends_on[0]].config["tokens"]
        assert r.config["tokens"] + d0 == r.axes["tokens"]


@pytest.mark.parametrize(
    "grid, message",
    [
        ({"dense_prefix": [0, -5]}, "grid.dense_prefix[1]: expected a positive whole count"),
        ({"dense_prefix": ["lots"]}, "grid.dense_prefix[0]:"),
        (
            {"dense_prefix": [0, "32k"]},
            "grid.dense_prefix[1]: 32k is not below any budget of grid.tokens",
        ),
        ({"dense_prefix": []}, "grid.dense_prefix is empty"),
        (
            {"init_from_dense": [0.0, 0.5]},
            "give grid.dense_prefix or grid.init_from_dense, not both",
        ),
    ],
)
def test_bad_dense_prefixes_are_one_line_errors(grid, message):
    with pytest.raises(
        SparsescaleError, match=message.replace("[", r"\[").replace("]", r"\]")
    ) as err:
        tiny(**grid)
    assert "\n" not in str(err.value)


def test_bad_dense_prefix_in_a_spec_file_exits_2_with_one_line(tmp_path):
    spec = tmp_path / "bad.toml"
    spec.write_text(
        'family = "gpt"\n[grid]\nn_nonzero = ["8k"]\nsparsity = [0.5]\ntokens = ["16k"]\n'
        'dense_prefix = ["16k"]\n'
    )
    done = subprocess.run(
        [sys.executable, "-m", "sparsescale", "sweep", str(spec), "--dry-run"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1
    assert "bad.toml: grid.dense_prefix[0]: 16k is not below any budget" in done.stderr


def test_a_pruned_run_skips_the_data_its_prefix_read():
    from sparsescale.data.loaders import SkippedLoader
    from sparsescale.models.registry import get_family
    from sparsescale.train.config import RunConfig
    from sparsescale.train.plan import data_for, plan_run

    cfg = RunConfig(params="8k", sparsity=0.5, tokens="16k", data_skip="16k", **TRAIN)
    plan, data = plan_run(cfg)
    assert plan.dense_steps == plan.steps == 16_000 // (8 * 32)
    inner = get_family("gpt").make_batches(
        data_for(cfg)[1], 32, 8, plan.dense_steps + plan.steps, 0, 0, 1
    )
    first, _ = SkippedLoader(inner, plan.dense_steps).get(0)
    assert first.equal(inner.get(plan.dense_steps)[0]) and not first.equal(inner.get(0)[0])
    with pytest.raises(
        SparsescaleError, match="after the .* trained dense first \\(--dense-tokens\\)"
    ):
        plan_run(RunConfig(params="8k", tokens="16k", data_skip=10**9, **TRAIN))
    # a run that skips nothing keeps the identity it had before data_skip existed
    assert "data_skip" not in RunConfig(params="8k", tokens="16k").identity()


def _trainings(store):
    with Store(store, readonly=True) as s:
        return [a["config_hash"] for a in s.attempt_log() if a["outcome"] == "finished"], s.runs()


@pytest.mark.slow  # real training of 20 tiny runs: about a minute on 2 busy cores
def test_each_dense_prefix_is_trained_once_across_runs_and_sweeps(tmp_path):
    store = tmp_path / "s.sqlite"
    spec = tiny()
    runs = check_runs(expand(spec))
    used = prefixes(runs)
    assert len(used) == 3  # widths 16k (also a dense grid run), 32k (two users), 64k
    outcome = run_sweep(spec, runs, store, workers=2)
    assert not outcome.failed and outcome.counts == {"finished": len(runs)}
    trained, rows = _trainings(store)
    assert sorted(trained) == sorted(
        r.config_hash for r in runs
    )  # every run, each prefix included, once
    assert len(list((tmp_path / "s.runs").iterdir())) == len(runs)
    by_hash = {r["config_hash"]: r for r in rows}
    for r in rows:
        for d in r["depends_on"]:  # a prefix finished before any of its users started
            assert by_hash[d]["finished_at"] <= r["started_at"]
    # a second sweep in the same store continues the 32k-wide prefix to a new budget: no prefix
    # retrained
    again = tiny("more", sparsity=[0.5], n_nonzero=["16k"], tokens=["16k", "48k"])
    more = check_runs(expand(again))
    assert prefixes(more) <= used
    run_sweep(again, more, store, workers=1)
    trained2, rows2 = _trainings(store)
    new = [h for h in trained2[len(trained) :]]
    assert (
        set(new) == {r.config_hash for r in more} - {r["config_hash"] for r in rows}
        and not set(new) & used
    )
    # accounting: the prefix is charged in full to each user, once to the sweep
    cost = compute_accounting(rows)
    for r in rows:
        if r["depends_on"]:
            c, p = cost[r["config_hash"]], by_hash[r["depends_on"][0]]
            assert c["prefix_flops"] == p["train_flops_dense"] > 0
            assert c["total_flops_sparse"] == pytest.approx(
                r["train_flops_sparse"] + p["train_flops_dense"]
            )
            assert c["amortised_flops_sparse"] == pytest.approx(
                r["train_flops_sparse"] + p["train_flops_dense"] / c["prefix_users"]
            )
    assert sweep_total_flops(rows) == pytest.approx(sum(r["train_flops_sparse"] for r in rows))


def test_compute_accounting_charges_the_prefix_once_per_run_and_once_to_the_sweep():
    def row(h, flops, deps=(), role=None, status="finished", plan=None):
        axes = {"role": role} if role else {}
        return {
            "config_hash": h,
            "depends_on": list(deps),
            "axes": axes,
            "status": status,
            "plan": plan or {},
            "train_flops_dense": flops and flops * 2,
            "train_flops_sparse": flops,
        }

    rows = [
        row("p", 100.0, role="dense-pretrain"),
        row("g", 40.0),  # a prefix, and a grid run that is one
        row("a", 10.0, ["p"]),
        row("b", 20.0, ["p"]),
        row("c", 5.0, ["g"]),
        row(
            "d",
            None,
            ["p"],
            status="pending",
            plan={"train_flops_sparse": 7.0, "train_flops_dense": 9.0},
        ),
    ]
    rows[0]["train_flops_dense"] = rows[0]["train_flops_sparse"] = (
        100.0  # dense: both accountings agree
    )
    cost = compute_accounting(rows)
    assert (
        cost["a"]["prefix_users"] == 3 and cost["c"]["prefix_users"] == 2
    )  # g is a grid point too
    assert (
        cost["a"]["total_flops_sparse"] == 110.0
        and cost["a"]["amortised_flops_sparse"] == 10.0 + 100.0 / 3
    )
    assert (
        cost["c"]["total_flops_sparse"] == 5.0 + 80.0
        and cost["c"]["amortised_flops_dense"] == 10.0 + 40.0
    )
    assert cost["d"]["total_flops_sparse"] == 107.0  # planned FLOPs until it has run
    assert cost["g"]["prefix_flops"] == 0.0 and cost["g"]["total_flops_sparse"] == 40.0
    assert sweep_total_flops(rows) == 175.0  # what ran: each run once, the pending one not yet
