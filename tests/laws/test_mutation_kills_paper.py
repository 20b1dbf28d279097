"""laws.paper, case by case: the two shipped sweeps' settings word for word,
the name parsing and its refusal, and rows of both files read back by hand
(the CSV's unnamed index column, the JSON's integer row order, N in closed form)."""

import pytest

from sparsescale.errors import SparsescaleError
from sparsescale.laws import paper


def test_block_parameters():
    # 12 d^2 per block at d = 768: 7,077,888; T5-base 24 blocks, ViT-B/16 12
    assert paper.T5_BLOCK_PARAMS == 24 * 7_077_888 == 169_869_312
    assert paper.VIT_BLOCK_PARAMS == 12 * 7_077_888 == 84_934_656


def test_sweep_settings_word_for_word():
    t5, vit = paper.PAPER_SWEEPS["t5"], paper.PAPER_SWEEPS["vit"]
    assert list(paper.PAPER_SWEEPS) == ["t5", "vit"]
    assert (t5.name, t5.file, t5.sparsity, t5.params, t5.data, t5.loss) == (
        "t5", "t5-data.csv", "sparsity", "24*12*768**2*scale*(1-sparsity)", "steps", "val-loss"
    )  # fmt: skip
    assert (t5.space, t5.delta, t5.tokens_per_unit, t5.preset, t5.budget_axis) == (
        "log", 1e-3, 65536.0, "t5-c4", "steps"
    )  # fmt: skip
    assert t5.units == {
        "N": "non-zero parameters",
        "D": "training steps (batch 128 x 512 tokens)",
        "loss": "validation cross-entropy (C4)",
    }
    assert (vit.name, vit.file, vit.sparsity, vit.params, vit.data, vit.loss) == (
        "vit", "vit-data.json", "sparsity", "12*12*768**2*scale*(1-sparsity)", "total_examples",
        "val-loss",
    )  # fmt: skip
    assert (vit.space, vit.delta, vit.tokens_per_unit, vit.preset, vit.budget_axis) == (
        "linear", 1e-2, 197.0, "vit-jft", "examples"
    )  # fmt: skip
    assert vit.units == {
        "N": "non-zero parameters",
        "D": "images seen",
        "loss": "validation cross-entropy (JFT-4B)",
    }
    with pytest.raises(AttributeError):
        t5.name = "x"  # frozen


def test_names_and_the_refusal():
    assert paper.paper_sweep("paper:t5") is paper.PAPER_SWEEPS["t5"]
    assert paper.paper_sweep("vit") is paper.PAPER_SWEEPS["vit"]
    # only the first colon splits: "paper:t5:x" asks for "t5:x"
    for bad in ("paper:t5:x", "t5:x", "paper:", "PAPER:t5", "xpaper:t5"):
        with pytest.raises(SparsescaleError) as exc:
            paper.paper_sweep(bad)
        assert str(exc.value) == f"unknown paper data set {bad!r}; expected paper:t5 or paper:vit"


def test_t5_rows_by_hand():
    # rows 0, 1 and 47 of t5-data.csv:
    #   0,0.0,0.0078125,3.1256396912691886,250000.0
    #   1,0.5,0.015625,2.8416964346902414,250000.0
    #   47,0.875,4.0,1.6029677006236294,1000000.0
    cols = paper.paper_columns("paper:t5")
    assert list(cols) == ["Unnamed: 0", "sparsity", "scale", "val-loss", "steps"]
    assert cols["Unnamed: 0"][[0, 1, 47]].tolist() == [0.0, 1.0, 47.0]
    assert cols["scale"][[0, 1, 47]].tolist() == [0.0078125, 0.015625, 4.0]
    S, N, D, y = paper.paper_points("t5")
    assert S.size == 48 and S[[0, 1, 47]].tolist() == [0.0, 0.5, 0.875]
    # N = 169,869,312 x scale x (1 - S)
    assert N[[0, 1, 47]].tolist() == pytest.approx(
        [169_869_312 * 0.0078125, 169_869_312 * 0.015625 * 0.5, 169_869_312 * 4.0 * 0.125],
        rel=1e-15,
    )
    assert D[[0, 47]].tolist() == [250000.0, 1000000.0]
    assert y[[0, 1, 47]].tolist() == [3.1256396912691886, 2.8416964346902414, 1.6029677006236294]
    assert paper.paper_text("t5").startswith(",sparsity,scale,val-loss,steps\n0,0.0,")


def test_vit_rows_in_integer_order():
    # rows 2 and 10 of vit-data.json (as strings "10" sorts before "2"):
    #   2: scale 0.125, S 0.5, 225e6 examples, loss 7.157704588
    #   10: scale 0.03125, S 0.5, 225e6 examples, loss 8.3585298341
    cols = paper.paper_columns("paper:vit")
    assert list(cols) == ["scale", "sparsity", "total_examples", "val-loss"]
    assert cols["scale"].size == 112 and cols["scale"][[2, 10]].tolist() == [0.125, 0.03125]
    S, N, D, y = paper.paper_points("paper:vit")
    assert S.size == 112 and y[[2, 10]].tolist() == [7.157704588, 8.3585298341]
    assert D[[2, 10]].tolist() == [225e6, 225e6] and S[[2, 10]].tolist() == [0.5, 0.5]
    assert N[[2, 10]].tolist() == pytest.approx(
        [84_934_656 * 0.125 * 0.5, 84_934_656 * 0.03125 * 0.5], rel=1e-15
    )
    assert (cols["val-loss"] == y).all() and (cols["total_examples"] == D).all()
