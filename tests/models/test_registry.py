"""The family registry is the one place that knows family names."""

import re
from pathlib import Path

import pytest

from sparsescale.errors import SparsescaleError
from sparsescale.models.registry import BUDGET_AXES, DATA_UNITS, FAMILIES, Family, get_family

SRC = Path(__file__).resolve().parents[2] / "src" / "sparsescale"
BRANCH = re.compile(
    r"""[!=]=\s*['"](%s)['"]|in\s*[(\[{]\s*['"](%s)['"]"""
    % (("|".join(map(re.escape, FAMILIES)),) * 2)
)


def test_no_family_name_branches_outside_the_registry():
    found = [
        f"{p.relative_to(SRC)}:{i}: {line.strip()}"
        for p in SRC.rglob("*.py")
        if p.name != "registry.py"
        for i, line in enumerate(p.read_text().splitlines(), 1)
        if BRANCH.search(line)
    ]
    assert not found, "\n".join(found)


def test_the_branch_pattern_would_catch_one():
    assert BRANCH.search('if cfg.model == "vit":') and BRANCH.search("family in ('gpt', 't5')")


def test_every_family_is_complete_and_its_unit_is_a_budget_axis():
    for name, fam in FAMILIES.items():
        assert (
            isinstance(fam, Family) and fam.data_unit in DATA_UNITS and fam.data_unit in BUDGET_AXES
        )
        assert get_family(name) is fam


def test_a_bad_data_unit_is_refused():
    gpt = FAMILIES["gpt"]
    import dataclasses

    with pytest.raises(SparsescaleError, match="data_unit must be one of tokens, examples"):
        dataclasses.replace(gpt, name="x", data_unit="bytes")
