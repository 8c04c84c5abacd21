"""sparsenlp's SLURM launcher as a Hydra plugin (Hydra loads launchers only from the hydra_plugins package).

The launcher lives in ``_launcher.py``: Hydra's plugin scan skips modules whose name starts with '_', so an
installation without the ``launchers`` extra (no submitit) never imports it; ``sparsenlp-train`` registers it, and
its options with it (the plugin's own schema for ``hydra/launcher=submitit_slurm`` lacks ``wait`` and
``max_array_size``): code that composes that option through Hydra's compose API calls :func:`register` after Hydra
has scanned its plugins.
"""
from __future__ import annotations


def register() -> bool:
    """Make ``hydra/launcher=submitit_slurm`` sparsenlp's SLURM launcher; False without the ``launchers`` extra."""
    try:
        from hydra_plugins.sparsenlp_slurm_launcher import _launcher
    except ImportError:
        return False
    _launcher.register()
    return True
