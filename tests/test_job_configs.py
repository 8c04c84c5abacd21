"""A sweep's jobs composed fast (sparsenlp/job_configs.py) are the jobs Hydra composes: the same run config, the
same config hash, the same one-line problem, for group choices, plain values, interpolated entries, structural
overrides and mistakes; and Hydra composes once per distinct group choice, not once per job."""
from __future__ import annotations

import dataclasses
import itertools

import pytest
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf, open_dict

from sparsenlp.config import CONFIG_MODULE, one_line, settings
from sparsenlp.identity import config_hash
from sparsenlp.job_configs import PLACEHOLDER, JobConfigs
from tests.conftest import WIKIANN


@pytest.fixture(scope="module")
def hydra_compose():
    """Hydra's composition of a job (the reference), and a count of its calls."""
    calls = []
    with initialize_config_module(config_module=CONFIG_MODULE, version_base="1.3"):
        def composed(overrides: list[str]):
            calls.append(list(overrides))
            return compose("config", overrides=list(overrides), return_hydra_config=True)

        yield composed, calls


def _reference(composed, overrides: list[str]) -> tuple[object, str | None, str | None]:
    """(run config, hash, problem) as the job computes them from Hydra's composition."""
    try:
        cfg = composed(overrides)
        with open_dict(cfg):
            del cfg["hydra"]
            cfg.output_dir = PLACEHOLDER
        run = settings(cfg)
        return run, config_hash(OmegaConf.to_container(cfg, resolve=True)), None
    except Exception as exc:  # noqa: BLE001 - the reference's one-line problem
        error = one_line(exc)
        if error is None:
            raise
        return None, None, error.message


CASES = [
    ["experiment=paper", "lang=de", "pruning=global_magnitude", "pruning.sparsity=0.9", "pruning.prune_embeddings=true",
     "seed=2", f"data.root={WIKIANN}"],
    ["experiment=paper", "lang=all", "pruning=dense", "schedule=none", "seed=1", "languages=local39"],
    ["model=tiny", "lang=[de,fr]", "eval_lang=all", "languages=local39"],
    ["model=tiny", "model.lr=3e-4"],  # trainer.lr interpolates model.lr: the trainer entry follows
    ["model=tiny", "model.lr=3e-4", "trainer.lr=2e-4"],
    ["model=tiny", "trainer.lr=${model.lr}"],  # a value that interpolates: Hydra composes the job
    ["model=tiny", "languages.tier_min_train_sentences=5000", "lang=sw"],
    ["model=tiny", "+trainer.max_step=10"],
    ["model=tiny", "trainer.max_step=10"],
    ["model=tiny", "trainer.batch_size=many"],
    ["model=tiny", "trainer.warmup_steps=-4"],
    ["model=tiny", "pruning=dense", "schedule=cubic"],
    ["model=tiny", "pruning=movement", "pruning.sparsity=0.5", "schedule=oneshot"],
    ["model=tiny", "pruning=magnitdue"],
    ["model=tiny", "lang=xx"],
    ["model=tiny", "~eval_lang"],
    ["model=tiny", "pruning=semi_structured", "seed=3"],
]


@pytest.mark.parametrize("overrides", CASES, ids=lambda o: " ".join(o)[:60])
def test_a_job_is_what_hydra_composes(hydra_compose, overrides):
    composed, _ = hydra_compose
    job = JobConfigs(composed).job(overrides)
    run, digest, problem = _reference(composed, overrides)
    assert (job.digest, job.problem) == (digest, problem)
    if run is not None:
        assert dataclasses.replace(job.settings, output_dir="-") == dataclasses.replace(run, output_dir="-")


def test_hydra_composes_once_per_group_choice_not_once_per_job(hydra_compose):
    composed, calls = hydra_compose
    configs = JobConfigs(composed)
    calls.clear()
    grid = [[f"pruning={method}", f"pruning.sparsity={s}", f"lang={lang}", f"seed={seed}", "model=tiny"]
            for method, s, lang, seed in itertools.product(("global_magnitude", "layerwise_magnitude"), (0.5, 0.7, 0.9),
                                                           ("de", "sw", "yo", "ja"), (1, 2, 3))]
    jobs = [configs.job(overrides) for overrides in grid]
    assert all(job.problem is None for job in jobs) and len({job.digest for job in jobs}) == len(grid) == 72
    assert len(calls) == 1 + 2  # the primary config (to know the groups), then one per method
    for overrides, job in list(zip(grid, jobs))[::17]:  # and each is still what Hydra composes
        assert job.digest == _reference(composed, overrides)[1]
