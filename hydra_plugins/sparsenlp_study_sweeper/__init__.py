"""sparsenlp's study sweeper as a Hydra plugin (Hydra loads sweepers only from the hydra_plugins package)."""
