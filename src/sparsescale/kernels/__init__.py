"""Real sparse kernels for the pruned linears, and their timing.

`csr`: unstructured sparsity through torch.sparse CSR (CPU and CUDA).
`bench`: times dense against sparse training steps and writes the speedups
file that `sparsescale.laws.costs` turns into a cost multiplier.
The 2:4 semi-structured path lives in `sparsescale.sparsity.semi_structured`.
"""
