"""Reading an offline W&B run back from disk, to check what a job logged (tests only)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any


def read_offline_run(path: Path) -> dict[str, Any]:
    """What an offline W&B run recorded, read back from its ``run-*.wandb`` transaction log.

    ``path`` is the ``.wandb`` file or any folder holding exactly one ``offline-run-*`` (e.g. a job's
    output_dir). Uses wandb's own reader (``wandb leet inspect --json``, wandb >= 0.31) and folds its
    records into ``{"project", "run_id", "name", "group", "job_type", "tags", "notes", "config",
    "summary", "history", "metrics", "artifacts", "exit_code"}`` (``artifacts``: each logged artifact's
    record, with its ``name``, ``type`` and ``manifest``); ``summary`` keys are as recorded (values nested by
    wandb, e.g. a Table's fields, appear as ``key.field``). For tests and for checking a run before
    ``wandb sync``.
    """
    path = Path(path)
    if path.is_dir():
        found = sorted(path.rglob("offline-run-*/run-*.wandb"))
        if len(found) != 1:
            raise FileNotFoundError(f"expected one offline W&B run under {path}, found {len(found)}: {found}")
        path = found[0]
    out = subprocess.run([sys.executable, "-m", "wandb", "leet", "inspect", "--json", str(path)],
                         capture_output=True, text=True, check=True, timeout=120).stdout
    run: dict[str, Any] = {"config": {}, "summary": {}, "history": [], "metrics": [], "artifacts": [], "exit_code": None}
    for record in map(json.loads, filter(None, out.splitlines())):
        kind, body = record["type"], record.get(record["type"], {})
        if kind == "run":
            run.update(project=body.get("project"), run_id=body.get("run_id"), name=body.get("display_name"),
                       group=body.get("run_group"), job_type=body.get("job_type"), tags=body.get("tags", []),
                       notes=body.get("notes"))
            run["config"].update(body.get("config", {}).get("update", {}))
        elif kind == "config":
            run["config"].update(body.get("update", {}))
        elif kind == "summary":
            run["summary"].update(body.get("update", {}))
            for removed in body.get("remove", []):
                run["summary"].pop(removed["key"], None)
        elif kind == "history":
            run["history"].append(body["item"])
        elif kind == "metric":
            run["metrics"].append(body)
        elif kind == "artifact":
            run["artifacts"].append(body)
        elif kind == "exit":
            run["exit_code"] = body.get("exit_code", 0)
    run["config"].pop("_wandb", None)
    return run
