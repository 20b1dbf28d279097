"""Model families (GPT, T5, ViT), each one readable file with a config
dataclass, and `sizing` (the width for a target number of non-zeros N)."""
