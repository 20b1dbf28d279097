"""The paper's published sweep data, shipped with the package (see README.md here)."""
