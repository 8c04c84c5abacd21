"""The `logger` group (conf/logger/): Weights & Biases tracking, secondary to the local record."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, List, Optional

from sparsenlp.options import POSITIVE, Free, Group, OneOf, option

MODES = ("online", "offline", "disabled")
CONSOLE = ("off", "wrap", "redirect", "auto")
BOOLEAN = Free("a boolean; its type is checked by Hydra")


@dataclass
class LoggerConfig(Group):
    KEY: ClassVar[str] = "logger"

    name: str = option("wandb", "wandb: a W&B run per job; none: the local record only", OneOf(("wandb", "none")))
    mode: str = option("offline", "online: stream (needs `wandb login`); offline: files under <dir>/wandb/ "
                       "(`sparsenlp-report sync` uploads them); disabled: wandb is not even imported", OneOf(MODES))
    project: str = option("sparsenlp", "W&B project", Free("any W&B project name"))
    entity: Optional[str] = option(None, "W&B user or team (null: your default entity)", Free("a W&B entity"))
    group: Optional[str] = option(None, "W&B group (null: the sweep folder under -m, else single-runs)",
                                  Free("any W&B group name"))
    tags: List[str] = option(help="added to the automatic arm and language tags", check=Free("any W&B tags"),
                             factory=list)
    notes: Optional[str] = option(None, "W&B run notes", Free("free text"))
    dir: Optional[str] = option(None, "folder for W&B's files (null: the run's output_dir)",
                                Free("a folder, created when needed"))
    init_timeout: float = option(90.0, "seconds wandb.init may take before the run goes on without W&B", POSITIVE)
    system_metrics: bool = option(True, "CPU/GPU/memory charts", BOOLEAN)
    console: str = option("off", "W&B's own stdout/stderr capture (Hydra's job .log already has it)", OneOf(CONSOLE))
    verbose: bool = option(False, "W&B's own console messages (banners, run summary, sync hints); false: silent, "
                           "failures are still logged", BOOLEAN)
