"""``python -m sparsenlp [overrides]`` is the same as ``sparsenlp-train``."""
from sparsenlp.train import main

main()
