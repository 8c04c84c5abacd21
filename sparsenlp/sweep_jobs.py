"""A sweep's jobs as their pruning methods see them (used by the study sweeper and ``sparsenlp-train -m``).

A study grid is a product in which some combinations mean the same job: ``pruning=dense,global_magnitude
pruning.sparsity=0,0.5`` holds the dense baseline three times. :func:`reduce_job` reduces a job (its list of
overrides) to what its method reads, from the method table:

- a method at ``pruning.sparsity=0`` (``pruning.target=0``) is the dense arm (``pruning=dense``);
- ``pruning.<key>`` overrides that the job's method does not read are dropped (when some method reads them: a
  misspelt key is kept, and fails with its fix), and a method that takes no schedule runs under
  ``schedule=none`` whatever the sweep (or its experiment) selects for the others.
"""
from __future__ import annotations

from collections.abc import Sequence

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import OverrideParseException

from sparsenlp.pruning.methods import NO_SCHEDULE, methods
from sparsenlp.pruning.methods.registry import keys as method_keys

LEVELS = ("sparsity", "target")  # the keys that set how much a method prunes: 0 is the dense arm


def key_value(override: str) -> tuple[str, str]:
    key, _, value = override.partition("=")
    return key.lstrip("+~"), value


def reduce_job(job: list[str], default_method: str) -> list[str]:
    """``job`` as its method sees it (see the module docstring); ``default_method``: the method of the sweep's
    base config, for jobs that do not choose one."""
    table = methods()
    pairs = dict(key_value(o) for o in job)
    method = table.get(pairs.get("pruning") or default_method)
    if method is None:
        return job  # an unknown method fails in the job with its fix
    levels = [pairs.get(f"pruning.{key}") for key in LEVELS if key in method.config.__dataclass_fields__]
    if any(level is not None and _is_zero(level) for level in levels):
        method = table["dense"]
        at = next((i for i, o in enumerate(job) if key_value(o)[0] == "pruning"), 0)
        job = [o for o in job if key_value(o)[0] != "pruning"]
        job.insert(at, "pruning=dense")
    reads = set(method.config.__dataclass_fields__)
    known = method_keys()
    no_schedule = method.schedules == (NO_SCHEDULE,)

    def kept(override: str) -> bool:
        key = key_value(override)[0]
        if key.startswith("pruning."):
            field = key.split(".")[1]
            return field in reads or field not in known
        return not (no_schedule and (key == "schedule" or key.startswith("schedule.")))

    job = [o for o in job if kept(o)]
    if no_schedule:  # its own schedule, even where the sweep's experiment selects another for the others
        at = next((i + 1 for i, o in enumerate(job) if key_value(o)[0] == "pruning"), len(job))
        job.insert(at, f"schedule={NO_SCHEDULE}")
    return job


def per_job_method_keys(argv: Sequence[str]) -> list[str]:
    """``argv`` of a ``-m`` run with every plain ``pruning.<key>=value`` made a one-value sweep
    (``choice(value)``). Hydra composes the sweep's base config with the non-sweep overrides before any job
    exists, under the default method, which may not read the key (``-m pruning=dense,global_magnitude
    pruning.sparsity=0.9``); as a sweep value the key reaches each job, and the sweeper drops it where the
    job's method does not read it."""
    if not any(arg in ("-m", "--multirun") for arg in argv):
        return list(argv)
    parser = OverridesParser.create()
    out = []
    for arg in argv:
        key, sep, value = arg.partition("=")
        if sep and key.startswith("pruning.") and not arg.startswith("-"):
            try:
                sweep = parser.parse_overrides([arg])[0].is_sweep_override()
            except OverrideParseException:
                sweep = True  # left as it is: Hydra reports the syntax error
            if not sweep:
                arg = f"{key}=choice({value})"
        out.append(arg)
    return out


def _is_zero(value: str) -> bool:
    try:
        return float(value) == 0.0
    except ValueError:
        return False
