"""The ``sparsenlp-train`` command: ``--help`` is answered from the config classes alone (no torch, well under
two seconds); everything else runs :func:`sparsenlp.train.main`."""
from __future__ import annotations

import sys
from pathlib import Path

from omegaconf import OmegaConf

import sparsenlp.conf
from sparsenlp.config import LanguagesConfig
from sparsenlp.config.help import describe, describe_languages

HELP = ("-h", "--help")
CONF = Path(sparsenlp.conf.__file__).parent


def _languages(argv: list[str]) -> LanguagesConfig:
    """The `languages` option named on the command line (default xtreme40), as a typed config."""
    option = next((a.split("=", 1)[1] for a in argv if a.startswith("languages=")), "xtreme40")
    path = CONF / "languages" / f"{option}.yaml"
    if not path.is_file():
        sys.exit(f"sparsenlp error: languages={option} is not an option; choose one of: "
                 f"{', '.join(sorted(p.stem for p in path.parent.glob('*.yaml')))}")
    merged = OmegaConf.structured(LanguagesConfig)
    for part in _with_defaults(path):
        merged = OmegaConf.merge(merged, part)
    return OmegaConf.to_object(merged)


def _with_defaults(path: Path) -> list:
    """A languages YAML after the options its defaults list names (e.g. local39 = xtreme40 minus th)."""
    node = OmegaConf.load(path)
    parts = []
    for entry in node.pop("defaults", []):
        if entry != "_self_":
            parts += _with_defaults(path.parent / f"{entry}.yaml")
    return [*parts, node]


INTERRUPTED = ("sparsenlp: interrupted (Ctrl-C); finished jobs keep their results.json and stopped ones their last "
               "checkpoint (relaunch the same command to resume them); jobs handed to a scheduler run on")


def main() -> None:
    """Console script ``sparsenlp-train`` (and ``python -m sparsenlp``). A job stopped by a signal (Ctrl-C,
    SIGTERM) ends with one line saying what it kept, and status 128 + the signal's number (130 for Ctrl-C)."""
    argv = sys.argv[1:]
    if any(arg in HELP for arg in argv):
        print(describe_languages(_languages(argv)) if "languages" in argv else describe(CONF), end="")
        return
    try:
        from sparsenlp.train import main as train  # imports torch and the rest of the framework

        train()
    except KeyboardInterrupt:  # outside a job (starting up, between jobs, waiting for a sweep's workers)
        print(INTERRUPTED, file=sys.stderr)
        sys.exit(130)
    except SystemExit as exc:
        stopped = getattr(exc, "signum", None)  # sparsenlp.training.stop.JobStopped (not imported: no torch here)
        if stopped is not None:
            print(f"sparsenlp: stopped by {exc.name}{exc.detail}", file=sys.stderr)  # type: ignore[attr-defined]
        raise
