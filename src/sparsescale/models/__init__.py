"""Model families (GPT, T5, ViT, and a Hugging Face Llama in `hf`), each one
readable file with a config dataclass; `registry` (one `Family` entry per
family: everything family-specific) and `sizing` (the width for a target
number of non-zeros N)."""
