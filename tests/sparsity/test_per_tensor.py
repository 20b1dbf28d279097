"""Per-tensor sparsity by glob: the longest matching pattern wins, shown in stats()."""

import pytest
import torch
from sparsity_helpers import TinyTransformer

from sparsescale.errors import SparsescaleError
from sparsescale.sparsity import GradualPruner
from sparsescale.sparsity.masks import n_kept

RULES = {"blocks.0.*": 0.5, "blocks.*.mlp_*": 0.9, "*": 0.75}


def expected(name: str) -> tuple[float, str]:
    if ".mlp_" in name:  # matched by "blocks.0.*" too for block 0, but the longer pattern wins
        return 0.9, "blocks.*.mlp_*"
    if name.startswith("blocks.0."):
        return 0.5, "blocks.0.*"
    return 0.75, "*"


def test_longest_match_wins_and_stats_show_it():
    torch.manual_seed(0)
    model = TinyTransformer()
    pruner = GradualPruner(model, RULES, total_steps=6, start=0.0, end=0.5, every=1)
    for _ in range(6):
        pruner.step()
    stats = pruner.stats()
    for name, p in pruner.prunable.items():
        target, rule = expected(name)
        assert stats["targets"][name] == target
        assert stats["sparsity_rule"][name] == rule
        assert int((p == 0).sum()) == p.numel() - n_kept(p.numel(), target), name
    kept = sum(n_kept(p.numel(), expected(n)[0]) for n, p in pruner.prunable.items())
    assert stats["n_nonzero"] == kept
    assert pruner.sparsity == pytest.approx(stats["sparsity"])


def test_a_tensor_no_pattern_matches_is_named():
    with pytest.raises(SparsescaleError, match="no pattern matches tensor blocks.1.q.weight"):
        GradualPruner(TinyTransformer(), {"blocks.0.*": 0.5}, total_steps=4)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        (dict(sparsity={"*": 1.5}), r"sparsity\['\*'\] must be in \[0, 1\)"),
        (
            dict(sparsity={"*": 0.75, "blocks.0.*": 0.25}, pattern="2:4"),
            r"0.25 \(tensor blocks.0.q.weight\) is below 0.5",
        ),
        (dict(sparsity={"*": 0.75}, scope="global"), "per-tensor sparsity dict"),
        (dict(sparsity={}), "empty"),
    ],
)
def test_bad_rules(kwargs, message):
    with pytest.raises(SparsescaleError, match=message):
        GradualPruner(TinyTransformer(), total_steps=4, **kwargs)


def test_resume_checks_the_rules():
    model = TinyTransformer()
    state = GradualPruner(model, RULES, total_steps=4).state_dict()
    GradualPruner(model, dict(RULES), total_steps=4).load_state_dict(state)
    with pytest.raises(SparsescaleError, match="sparsity="):
        GradualPruner(model, {**RULES, "*": 0.8}, total_steps=4).load_state_dict(state)
