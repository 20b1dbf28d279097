"""RunState (train/state.py) and the from-dense names: what a checkpoint or a
spec written by an earlier version holds still reads the same."""

from sparsescale.sweep.spec import dense_tokens_of, expand, spec_from_dict
from sparsescale.train.config import RunConfig
from sparsescale.train.state import RunState


def test_run_state_round_trips_and_reads_older_checkpoints():
    state = RunState(
        step=7,
        curve=[{"step": 7, "tokens": 896, "val_loss": 5.1, "train_loss": 5.2}],
        train_wall_s=1.5,
        eval_wall_s=0.25,
        steady_steps=2,
        steady_wall_s=0.5,
    )
    assert RunState.from_dict(state.to_dict()) == state
    # a checkpoint from before the throughput figures: no steady_* keys; unknown keys are ignored
    old = {
        "step": 3,
        "curve": [],
        "train_wall_s": 1.0,
        "eval_wall_s": 0.0,
        "diverged_at_step": None,
        "extra": 1,
    }
    assert RunState.from_dict(old) == RunState(step=3, train_wall_s=1.0)


def test_dense_tokens_keeps_the_identity_data_skip_had():
    new = RunConfig(params="8k", sparsity=0.5, tokens="16k", dense_tokens="8k")
    old = RunConfig(params="8k", sparsity=0.5, tokens="16k", data_skip="8k")
    assert new == old and new.identity() == old.identity()
    assert new.identity()["data_skip"] == 8000 and "dense_tokens" not in new.identity()


def _hashes(grid):
    spec = {
        "name": "n",
        "family": "gpt",
        "train": {"batch": 8, "seq_len": 32},
        "grid": {"sparsity": [0.0, 0.5], "n_nonzero": ["8k"], "tokens": ["16k", "32k"]} | grid,
    }
    runs = expand(spec_from_dict(spec))
    return sorted((r.config_hash, r.depends_on, dense_tokens_of(r.axes)) for r in runs)


def test_old_grid_keys_plan_the_same_runs():
    assert _hashes({"dense_tokens": [0, "8k"]}) == _hashes({"dense_prefix": [0, "8k"]})
    assert _hashes({"from_dense": [0.0, 0.25]}) == _hashes({"init_from_dense": [0.0, 0.25]})
    # a fraction is converted to dense tokens once: 0.25 of 16k and of 32k
    assert {d0 for _, _, d0 in _hashes({"from_dense": [0.25]})} >= {4000, 8000}


def test_dense_tokens_of_reads_every_version_of_the_axes():
    assert dense_tokens_of({"tokens": 32000, "dense_tokens": 8000}) == 8000
    assert dense_tokens_of({"tokens": 32000, "init_from_dense": 0.25, "dense_prefix": 8000}) == 8000
    assert (
        dense_tokens_of({"tokens": 32000, "init_from_dense": 0.25}) == 8000
    )  # before dense_prefix
    assert dense_tokens_of({"tokens": 32000}) == 0
