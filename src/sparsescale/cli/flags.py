"""Library argument names -> the flags that set them: the one table.

The library names its arguments in errors (SparsescaleError.param); a user of
the CLI never typed `n_boot` or `compute_flops`, so the commands say the flag
instead (common.params_as_flags). A new argument that can reach a user's
error gets its line here, nowhere else.
"""

FLAG_OF = {
    # fitting (`fit`)
    "form": "--form",
    "space": "--space",
    "delta": "--delta",
    "base": "--base",
    "n_boot": "--bootstrap",
    "holdout": "--holdout",
    "seed": "--seed",
    "schedule": "--schedule",
    "tokens_per_unit": "--tokens-per-unit",
    "sparsity": "--sparsity",
    "n_nonzero": "--params",
    "data": "--data",
    # planning (`optimal`, `from-dense`, `choose-pattern`)
    "flops": "--flops",
    "compute": "--compute",
    "compute_flops": "--compute",
    "start": "--start",
    "end": "--end",
    "level": "--level",
    # the dense model `from-dense` prunes: N parameters trained on D0
    "n_params": "--dense",
    "dense_data": "--dense",
}
