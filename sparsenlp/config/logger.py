"""The `logger` group (conf/logger/): Weights & Biases tracking, secondary to the local record."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional

from sparsenlp.errors import SparseNLPError

MODES = ("online", "offline", "disabled")
CONSOLE = ("off", "wrap", "redirect", "auto")


@dataclass
class LoggerConfig:
    name: str = "wandb"
    # online: stream (needs `wandb login`); offline: files under <dir>/wandb/ (`sparsenlp-report sync`
    # uploads them); disabled: no W&B at all (wandb is not imported)
    mode: str = "offline"
    project: str = "sparsenlp"
    entity: Optional[str] = None  # W&B user or team; null: your default entity
    group: Optional[str] = None  # null: the sweep under --multirun, else "single-runs"
    tags: List[str] = field(default_factory=list)  # added to the automatic arm and language tags
    notes: Optional[str] = None
    dir: Optional[str] = None  # folder for W&B's files; null: the run's output_dir
    init_timeout: float = 90.0  # seconds wandb.init may take before the run goes on without W&B
    system_metrics: bool = True  # CPU/GPU/memory charts
    console: str = "off"  # W&B's own stdout/stderr capture (Hydra's job .log already has it)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise SparseNLPError(f"logger.mode={self.mode!r} is not valid; use one of: {', '.join(MODES)}")
        if self.console not in CONSOLE:
            raise SparseNLPError(f"logger.console={self.console!r} is not valid; use one of: {', '.join(CONSOLE)}")
