"""PruningCallback inside a real transformers Trainer (tiny config-built Llama, CPU)."""

import os

import pytest
import torch

transformers = pytest.importorskip("transformers")
pytest.importorskip("accelerate")

from sparsescale.errors import SparsescaleError  # noqa: E402
from sparsescale.integrations.hf import STATE_FILE, PruningCallback  # noqa: E402
from sparsescale.sparsity.masks import n_kept  # noqa: E402

VOCAB = 64
STEPS = 8


class Tokens(torch.utils.data.Dataset):
    def __init__(self, n: int = 64, length: int = 12) -> None:
        gen = torch.Generator().manual_seed(0)
        self.ids = torch.randint(0, VOCAB, (n, length), generator=gen)

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i):
        return {"input_ids": self.ids[i], "labels": self.ids[i]}


def llama():
    torch.manual_seed(0)
    cfg = transformers.LlamaConfig(
        vocab_size=VOCAB,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=32,
    )
    return transformers.LlamaForCausalLM(cfg)


def trainer(out, callback, model=None):
    args = transformers.TrainingArguments(
        output_dir=str(out),
        max_steps=STEPS,
        per_device_train_batch_size=4,
        learning_rate=1e-3,
        save_steps=4,
        save_strategy="steps",
        logging_strategy="no",
        report_to=[],
        use_cpu=True,
        seed=0,
        dataloader_num_workers=0,
        disable_tqdm=True,
    )
    return transformers.Trainer(
        model=model or llama(), args=args, train_dataset=Tokens(), callbacks=[callback]
    )


def test_trainer_prunes_to_exact_sparsity_and_saves_masks(tmp_path):
    callback = PruningCallback(sparsity=0.75, start=0.25, end=0.75, every=1)
    run = trainer(tmp_path, callback)
    run.train()
    pruner = callback.pruner
    assert pruner.step_count == STEPS
    assert len(pruner.prunable) == 14  # 2 layers x (q, k, v, o, gate, up, down)
    for name, p in pruner.prunable.items():
        assert int((p == 0).sum()) == p.numel() - n_kept(p.numel(), 0.75), name
        assert not (p[~pruner.masks[name]] != 0).any()
    assert (
        pruner.optimizer is run.optimizer
    )  # its state of pruned entries is zeroed on mask changes
    assert os.path.isfile(tmp_path / "checkpoint-4" / STATE_FILE)


def test_trainer_resume_restores_masks_and_matches_straight_run(tmp_path):
    straight = PruningCallback(sparsity=0.75, start=0.25, end=0.75, every=1)
    run = trainer(tmp_path / "a", straight)
    run.train()
    final = {k: v.detach().clone() for k, v in run.model.named_parameters()}
    # the usual pattern: a new Trainer on the same output_dir resumes from its checkpoint
    resumed = PruningCallback(sparsity=0.75, start=0.25, end=0.75, every=1)
    again = trainer(tmp_path / "a", resumed)
    again.train(resume_from_checkpoint=str(tmp_path / "a" / "checkpoint-4"))
    elsewhere = trainer(
        tmp_path / "b", PruningCallback(sparsity=0.75, start=0.25, end=0.75, every=1)
    )
    with pytest.raises(
        SparsescaleError, match="b/checkpoint-4/sparsescale_pruner.pt: no pruner state"
    ):
        elsewhere.train(resume_from_checkpoint=str(tmp_path / "a" / "checkpoint-4"))
    assert resumed.pruner.step_count == STEPS
    for name, mask in straight.pruner.masks.items():
        assert torch.equal(resumed.pruner.masks[name], mask), name
    for name, b in again.model.named_parameters():
        assert torch.equal(final[name], b), name


def test_callback_refuses_what_the_trainer_owns():
    with pytest.raises(SparsescaleError, match="total_steps comes from the Trainer"):
        PruningCallback(sparsity=0.5, total_steps=10)
