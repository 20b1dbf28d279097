"""RunConfig: counts with suffixes, one-line errors naming the field, TOML + flags."""

from __future__ import annotations

import pytest

from sparsescale.errors import SparsescaleError
from sparsescale.train.config import IDENTITY_NAMES, RunConfig, load_config, parse_count


def test_counts():
    assert parse_count("200k", "--params") == 200_000
    assert parse_count("1.5M", "--params") == 1_500_000
    assert parse_count("2e6", "--tokens") == 2_000_000
    assert parse_count(300, "--steps") == 300
    for bad in ("many", "-5", "0", "1.5"):
        with pytest.raises(SparsescaleError, match="--x"):
            parse_count(bad, "--x")
    # data to skip or train dense first: 0 means none, anything else is a count
    from sparsescale.units import parse_count_or_zero

    assert parse_count_or_zero(0, "--x") == parse_count_or_zero("0", "--x") == 0
    assert parse_count_or_zero("0.4M", "--x") == 400_000
    assert (
        RunConfig(params="10k", tokens="1M", data_skip="0").dense_tokens == 0
    )  # data_skip: its old name
    for bad in ("-5", "1.5", "none"):
        with pytest.raises(SparsescaleError, match="--x"):
            parse_count_or_zero(bad, "--x")


def test_defaults_and_resolution():
    cfg = RunConfig(params="200k", tokens="1M")
    assert cfg.params == 200_000 and cfg.model == "gpt" and cfg.final_sparsity == 0.0
    assert cfg.resolved("batch") == 32 and cfg.resolved("lr") == 0.02
    assert RunConfig(params=1000, steps=5, pattern="2:4").final_sparsity == 0.5
    assert RunConfig(params=1000, steps=5, pattern="2:4", sparsity=0.75).final_sparsity == 0.75
    transposable = RunConfig(params=1000, steps=5, pattern="2:4t")
    assert transposable.pattern == "2:4T" and transposable.final_sparsity == 0.5
    assert transposable.identity() != RunConfig(params=1000, steps=5, pattern="2:4").identity()


@pytest.mark.parametrize(
    "kwargs,field",
    [
        ({"sparsity": 1.0}, "--sparsity"),
        ({"sparsity": -0.1}, "--sparsity"),
        ({"model": "bert"}, "--model"),
        ({"pattern": "4:2"}, "--pattern"),
        ({"pattern": "2-4"}, "--pattern"),
        ({"params": "lots"}, "--params"),
        ({"optimizer": "sgd"}, "--optimizer"),
        ({"tokens": None}, "--tokens, --examples or --steps"),
        ({"steps": 10}, "exactly one data budget"),
        ({"pattern": "2:4", "sparsity": 0.25}, "below 0.5"),
        ({"model": "vit"}, "--examples"),
        ({"bogus": 1}, "--bogus"),
    ],
)
def test_errors_name_the_field(kwargs, field):
    base = {"params": "100k", "tokens": "1M"}
    base.update(kwargs)
    base = {k: v for k, v in base.items() if not (k == "tokens" and v is None)}
    with pytest.raises(SparsescaleError) as exc:
        RunConfig(**base)
    assert field in str(exc.value) and "\n" not in str(exc.value)


def test_toml_and_flag_overrides(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text('model = "gpt"\nparams = "50k"\nsparsity = 0.5\ntokens = "1M"\nseed = 3\n')
    cfg = load_config(path, seed=None, steps="100")
    assert cfg.params == 50_000 and cfg.seed == 3 and cfg.steps == 100 and cfg.tokens is None
    (tmp_path / "bad.toml").write_text('params = "50k"\ntokens = "1M"\nsparsity = 2\n')
    with pytest.raises(SparsescaleError, match=r"--config .*bad.toml: --sparsity"):
        load_config(tmp_path / "bad.toml")
    with pytest.raises(SparsescaleError, match="--config .*missing.toml: no such file"):
        load_config(tmp_path / "missing.toml")


# ---- run identity: one definition for the sweep hash and the checkpoint check ----
# Every RunConfig field, classified by hand. A new field fails this test until it
# is put on one side, so it cannot silently retrain sweeps or resume wrong runs.
IDENTITY = {
    "model",
    "params",
    "sparsity",
    "pattern",
    "tokens",
    "examples",
    "steps",
    "seed",
    "batch",
    "seq_len",
    "lr",
    "optimizer",
    "lr_schedule",
    "warmup",
    "corpus",
    "tokenizer",
    "vocab_size",
    "init_from",
    "eval_every",
    "eval_tokens",
    "final_eval_tokens",
    "eval_examples",
    "prune_every",
    "prune_start",
    "prune_end",
    "depth",
    "head_dim",
    "mlp",
    "pos",
    "data_skip",
    "grad_clip",
    "betas",
    "weight_decay",
    "beta1",
    "factored",
    "text_column",
}
EXECUTION = {
    "threads",
    "ckpt_every",
    "device",
    "compile",
    "semi_structured",
    "precision",
    "micro_batch",
    "activation_checkpointing",
}
# identity fields left out at their neutral defaults, so older identities still match
NEUTRAL = {"data_skip", "grad_clip", "betas", "weight_decay", "beta1", "factored", "text_column"}


def test_every_field_is_classified_as_identity_or_execution():
    # a renamed field is classified by its name in the identity (dense_tokens: data_skip)
    fields = {IDENTITY_NAMES.get(f, f) for f in RunConfig.model_fields}
    assert IDENTITY | EXECUTION == fields, f"classify: {sorted(fields - IDENTITY - EXECUTION)}"
    assert not IDENTITY & EXECUTION
    assert set(
        RunConfig(
            params="10k",
            steps=5,
            data_skip=3,
            grad_clip=1.0,
            weight_decay=0.1,
            beta1=0.9,
            factored=True,
            text_column="body",
        ).identity()
    ) == IDENTITY - {"betas"}
    assert (
        "betas" in RunConfig(params="10k", steps=5, optimizer="adamw", betas="0.9,0.99").identity()
    )
    # at their defaults they are left out: identities (and checkpoints) from before they existed
    # still match
    assert set(RunConfig(params="10k", steps=5).identity()) == IDENTITY - NEUTRAL


def test_sweep_hash_follows_the_identity():
    from sparsescale.sweep.spec import config_hash

    base = {"model": "gpt", "params": 10_000, "steps": 5, "eval_every": 4, "threads": 1}
    assert config_hash({**base, "threads": 2}) == config_hash(base)
    assert config_hash({**base, "device": "auto", "compile": True, "ckpt_every": 3}) == config_hash(
        base
    )
    assert config_hash({**base, "eval_every": 8}) != config_hash(
        base
    )  # as the checkpoint check says
    assert config_hash({**base, "seed": 1}) != config_hash(base)
