"""The ``sparsenlp-train`` command: ``--help`` is answered from the config classes alone (no torch, well under
two seconds); everything else runs :func:`sparsenlp.train.main`. Everything is imported inside :func:`main`, so
that Ctrl-C at any point after the interpreter started ends with one line, not a traceback."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sparsenlp.config import LanguagesConfig

HELP = ("-h", "--help")


def _conf() -> Path:
    import sparsenlp.conf

    return Path(sparsenlp.conf.__file__).parent


def _languages(argv: list[str]) -> LanguagesConfig:
    """The `languages` option named on the command line (default xtreme40), as a typed config."""
    from omegaconf import OmegaConf

    from sparsenlp.config import LanguagesConfig

    option = next((a.split("=", 1)[1] for a in argv if a.startswith("languages=")), "xtreme40")
    path = _conf() / "languages" / f"{option}.yaml"
    if not path.is_file():
        sys.exit(f"sparsenlp error: languages={option} is not an option; choose one of: "
                 f"{', '.join(sorted(p.stem for p in path.parent.glob('*.yaml')))}")
    merged = OmegaConf.structured(LanguagesConfig)
    for part in _with_defaults(path):
        merged = OmegaConf.merge(merged, part)
    return OmegaConf.to_object(merged)


def _with_defaults(path: Path) -> list:
    """A languages YAML after the options its defaults list names (e.g. local39 = xtreme40 minus th)."""
    from omegaconf import OmegaConf

    node = OmegaConf.load(path)
    parts = []
    for entry in node.pop("defaults", []):
        if entry != "_self_":
            parts += _with_defaults(path.parent / f"{entry}.yaml")
    return [*parts, node]


SWEEP_INTERRUPTED = ("sparsenlp: interrupted (Ctrl-C); finished jobs keep their results.json and stopped ones their "
                     "last checkpoint (relaunch the same command to resume them); jobs handed to a scheduler run on")


def _interrupted(argv: list[str]) -> str:
    """The line for Ctrl-C outside a job's training (starting up, between jobs, waiting for a sweep's workers),
    after removing what a job started in this process had written (its folder is left as a relaunch needs it)."""
    kept = []
    if "sparsenlp.jobstart" in sys.modules:  # a job may have started: its lock is held, Hydra may have written
        from sparsenlp.jobstart import abandon_started_jobs

        kept = abandon_started_jobs()
    if "-m" in argv or "--multirun" in argv:
        return SWEEP_INTERRUPTED
    return f"sparsenlp: interrupted (Ctrl-C) before the job trained; kept: {kept[0] if kept else 'nothing'}"


def exit_now(status: int) -> None:
    """Exit with ``status`` after Ctrl-C. Not ``sys.exit``: CPython flags a KeyboardInterrupt raised inside ``exec``
    (dataclasses build their methods with it, so any import can be one) as unhandled even when it was caught, and
    then ends the process by SIGINT whatever status was asked for. Nothing is left to clean up here."""
    import os

    sys.stderr.flush()
    os._exit(status)


def main() -> None:
    """Console script ``sparsenlp-train`` (and ``python -m sparsenlp``). A job stopped by a signal (Ctrl-C,
    SIGTERM) ends with one line saying what it kept, and status 128 + the signal's number (130 for Ctrl-C)."""
    argv = sys.argv[1:]
    try:
        if any(arg in HELP for arg in argv):
            from sparsenlp.config.help import describe, describe_languages

            topics = [a for a in argv if a not in HELP and "=" not in a and not a.startswith("-")]
            if any(topic != "languages" for topic in topics):
                sys.exit(f"sparsenlp error: --help {' '.join(topics)}: no such help topic; use --help (every option) "
                         "or --help languages (the language table)")
            print(describe_languages(_languages(argv)) if "languages" in argv else describe(_conf()), end="")
            return
        from sparsenlp.train import main as train  # imports torch and the rest of the framework

        train()
    except KeyboardInterrupt:  # outside a job (starting up, between jobs, waiting for a sweep's workers)
        print(_interrupted(argv), file=sys.stderr)
        exit_now(130)
    except SystemExit as exc:
        stopped = getattr(exc, "signum", None)  # sparsenlp.training.stop.JobStopped (not imported: no torch here)
        if stopped is not None:
            print(f"sparsenlp: stopped by {exc.name}{exc.detail}", file=sys.stderr)  # type: ignore[attr-defined]
        raise
