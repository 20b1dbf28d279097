import pytest

from sparsescale.errors import SparsescaleError
from sparsescale.sweep.spec import config_hash, expand, load_spec, parse_count, spec_from_dict

BASE = {
    "family": "gpt",
    "grid": {"sparsity": [0.0, 0.5], "n_nonzero": ["50k", "100k"], "tokens": ["0.5M", "1M"]},
}


def with_grid(**grid):
    return {"family": "gpt", "grid": {**BASE["grid"], **grid}}


def test_parse_count_suffixes():
    assert parse_count("200k", "x") == 200_000
    assert parse_count("0.5M", "x") == 500_000
    assert parse_count("1e6", "x") == 1_000_000
    assert parse_count(1234, "x") == 1234
    for bad in ("12q", "-5", 0, "0.5", True):
        with pytest.raises(SparsescaleError, match="x:"):
            parse_count(bad, "x")


def test_expand_is_the_cross_product_with_stable_hashes():
    spec = spec_from_dict(BASE)
    runs = expand(spec)
    assert len(runs) == 2 * 2 * 2
    assert {(r.config["sparsity"], r.config["params"], r.config["tokens"]) for r in runs} == {
        (s, n, d) for s in (0.0, 0.5) for n in (50_000, 100_000) for d in (500_000, 1_000_000)
    }
    assert [r.config_hash for r in runs] == [r.config_hash for r in expand(spec_from_dict(BASE))]
    assert len({r.config_hash for r in runs}) == len(runs)
    # smallest budget first, so early results come fast
    assert runs[0].config["tokens"] == 500_000


def test_hash_ignores_execution_settings_only():
    cfg = {"model": "gpt", "params": 1000, "sparsity": 0.5, "tokens": 10, "seed": 0, "threads": 1}
    assert config_hash(cfg) == config_hash({**cfg, "threads": 4, "ckpt_every": 7})
    assert config_hash(cfg) != config_hash({**cfg, "seed": 1})


def test_nm_patterns_fix_their_sparsity():
    runs = expand(spec_from_dict(with_grid(patterns=["unstructured", "2:4", "1:4"])))
    nm = [(r.config["pattern"], r.config["sparsity"]) for r in runs if r.config["pattern"]]
    assert set(nm) == {("2:4", 0.5), ("1:4", 0.75)}
    assert len(runs) == (2 + 2) * 2 * 2


def test_transposable_pattern_is_its_own_axis_value():
    runs = expand(spec_from_dict(with_grid(patterns=["unstructured", "2:4", "2:4t"])))
    nm = [
        (r.config["pattern"], r.config["sparsity"], r.axes["pattern"])
        for r in runs
        if r.config["pattern"]
    ]
    assert set(nm) == {("2:4", 0.5, "2:4"), ("2:4T", 0.5, "2:4T")}
    assert len({r.config_hash for r in runs}) == len(runs) == (2 + 2) * 2 * 2


def test_overrides_apply_per_axis_value():
    raw = {
        **BASE,
        "train": {"lr": 0.01, "batch": 8},
        "override": [
            {"n_nonzero": "100k", "set": {"lr": 0.005}},
            {"sparsity": 0.5, "tokens": "1M", "set": {"batch": 4}},
        ],
    }
    for r in expand(spec_from_dict(raw)):
        assert r.config["lr"] == (0.005 if r.config["params"] == 100_000 else 0.01)
        assert r.config["batch"] == (
            4 if (r.config["sparsity"], r.config["tokens"]) == (0.5, 1_000_000) else 8
        )


def test_init_from_dense_adds_a_dense_pretraining_dependency():
    runs = expand(
        spec_from_dict(
            with_grid(sparsity=[0.5], n_nonzero=["50k"], tokens=["1M"], init_from_dense=[0.0, 0.25])
        )
    )
    by_hash = {r.config_hash: r for r in runs}
    pruned = [r for r in runs if r.depends_on]
    assert len(pruned) == 1
    dense = by_hash[pruned[0].depends_on[0]]
    assert (
        dense.config["sparsity"] == 0.0
        and dense.config["params"] == 100_000
        and dense.config["tokens"] == 250_000
    )
    assert (
        pruned[0].config["tokens"] == 750_000
        and pruned[0].config["init_from"] == "@" + dense.config_hash
    )
    assert runs.index(dense) < runs.index(pruned[0])


@pytest.mark.parametrize(
    "raw, message",
    [
        ({**BASE, "family": "bert"}, "family: unknown family 'bert'"),
        (with_grid(sparsity=[]), "grid.sparsity is empty"),
        (with_grid(n_nonzero=[]), "grid.n_nonzero is empty"),
        (with_grid(sparsity=[0.5, 1.0]), "grid.sparsity: sparsity 1.0 is outside [0, 1)"),
        (with_grid(steps=[100]), "exactly one data budget axis"),
        (with_grid(n_nonzero=["lots"]), "grid.n_nonzero[0]"),
        (with_grid(patterns=["4:2"]), "grid.patterns[0]"),
        ({**BASE, "train": {"sparsity": 0.3}}, "train: 'sparsity' is set by the grid"),
        ({**BASE, "bogus": 1}, "bogus: unknown key"),
    ],
)
def test_bad_specs_give_one_line_errors_naming_the_key(raw, message):
    with pytest.raises(SparsescaleError) as err:
        spec_from_dict(raw, source="s.toml")
    assert message in str(err.value) and str(err.value).startswith("s.toml: ")
    assert "\n" not in str(err.value)


def test_load_spec_reports_file_problems(tmp_path):
    with pytest.raises(SparsescaleError, match="no such sweep spec"):
        load_spec(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("family = \n")
    with pytest.raises(SparsescaleError, match="bad.toml: not valid TOML"):
        load_spec(bad)
