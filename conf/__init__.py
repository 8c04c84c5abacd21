"""sparsenlp's Hydra configs, importable as ``sparsenlp.conf`` (``pkg://sparsenlp.conf``) when installed."""
