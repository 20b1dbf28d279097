"""Optional glue to other training frameworks; each module needs its own extra
(`sparsescale.integrations.hf`: `pip install sparsescale[hf]`)."""
