"""``python -m sparsenlp [overrides]`` is the same as ``sparsenlp-train``."""
from sparsenlp.cli import main

main()
