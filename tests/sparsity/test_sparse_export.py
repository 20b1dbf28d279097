"""finalize() + sparse checkpoint (CSR) + sparse inference layers: outputs match."""

import pytest
import torch
from sparsity_zoo import build

from sparsescale.errors import SparsescaleError
from sparsescale.sparsity import GradualPruner, load_sparse, save_sparse, sparsify_for_inference

MODELS = ["gpt2", "llama", "torchvision_vit", "timm_vit"]


def _inputs(name):
    gen = torch.Generator().manual_seed(5)
    if "vit" in name:
        return (torch.randn(2, 3, 16, 16, generator=gen),)
    return (torch.randint(0, 96, (2, 10), generator=gen),)


def _out(model, inputs):
    with torch.no_grad():
        out = model(*inputs)
    return out.logits if hasattr(out, "logits") else out


@pytest.mark.parametrize("name", MODELS)
def test_finalize_save_load_and_csr_inference_match(name, tmp_path):
    case = build(name, seed=0)
    case.model.eval()
    pruner = GradualPruner(case.model, 0.75, total_steps=1, schedule="one-shot")
    pruner.step()
    model = pruner.finalize()
    assert pruner.masks == {} and pruner.stats()["sparsity"] == pytest.approx(0.75, abs=1e-3)
    with pytest.raises(SparsescaleError, match="finalized"):
        pruner.step()
    inputs = _inputs(name)
    expected = _out(model, inputs)

    counts = save_sparse(model, tmp_path / "sparse.pt")
    assert counts["csr_tensors"] == len(pruner.prunable)  # nothing else is mostly zero
    assert counts["nonzeros"] == pruner.stats()["n_nonzero"]
    other = build(name, seed=1).model.eval()  # different random weights
    load_sparse(other, tmp_path / "sparse.pt")
    assert torch.equal(_out(other, inputs), expected)

    done = sparsify_for_inference(other, list(pruner.prunable), layout="csr")
    assert any(v == "csr" for v in done.values())
    assert other.get_submodule(
        next(k for k, v in done.items() if v == "csr").rsplit(".", 1)[0]
    ).weight.layout == (torch.sparse_csr)
    torch.testing.assert_close(_out(other, inputs), expected, rtol=1e-5, atol=1e-5)


def test_bad_checkpoint_and_wrong_model_name_the_path(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_text("not a checkpoint")
    with pytest.raises(SparsescaleError, match="bad.pt"):
        load_sparse(build("llama").model, bad)
    save_sparse(build("llama").model, tmp_path / "llama.pt")
    with pytest.raises(SparsescaleError, match="llama.pt: does not fit this model"):
        load_sparse(build("gpt2").model, tmp_path / "llama.pt")


def test_bad_layout_and_unknown_tensor_are_named():
    model = build("llama").model
    with pytest.raises(SparsescaleError, match="layout must be one of csr, 2:4"):
        sparsify_for_inference(model, ["model.layers.0.mlp.up_proj.weight"], layout="bsr")
    with pytest.raises(SparsescaleError, match="no tensor model.layers.9.mlp.up_proj.weight"):
        sparsify_for_inference(model, ["model.layers.9.mlp.up_proj.weight"])


def test_2_4_semi_structured_needs_cuda():
    case = build("llama")
    pruner = GradualPruner(case.model, pattern="2:4", total_steps=1, schedule="one-shot")
    pruner.step()
    pruner.finalize()
    if not torch.cuda.is_available():
        with pytest.raises(SparsescaleError, match="needs a CUDA device"):
            sparsify_for_inference(case.model, list(pruner.prunable), layout="2:4")
        pytest.skip(
            "2:4 semi-structured kernels need CUDA (torch.sparse.to_sparse_semi_structured); CPU "
            "here"
        )
    # The semi-structured kernels want fp16 weights of at least 32 rows x 64 columns.
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    cfg = transformers.LlamaConfig(
        vocab_size=96,
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
    )
    model = transformers.LlamaForCausalLM(cfg)
    pruner = GradualPruner(model, pattern="2:4", total_steps=1, schedule="one-shot")
    pruner.step()
    model = pruner.finalize().cuda().half().eval()
    ids = torch.randint(0, 96, (4, 32), device="cuda")
    expected = _out(model, (ids,))
    done = sparsify_for_inference(model, list(pruner.prunable), layout="2:4")
    assert set(done.values()) == {"2:4"}
    torch.testing.assert_close(_out(model, (ids,)), expected, rtol=2e-2, atol=2e-2)
