"""The study's protocol: every arm of a comparison trains as long and selects its model by the same rule, and
the record says what the rule and the length were."""
from __future__ import annotations

import pytest

from sparsenlp.arm import build_arm
from sparsenlp.errors import SparseNLPError
from sparsenlp.train import build_job, run
from sparsenlp.training.callbacks import Callback
from tests.helpers import compose_run, compose_settings

GRADUAL = ["schedule=cubic", "pruning.sparsity=0.7", "schedule.start=0.1", "schedule.end=0.7", "schedule.updates=4"]


@pytest.mark.slow
def test_dense_and_sparse_runs_of_one_comparison_have_the_same_eligible_steps(tmp_path, tiny_overrides):
    """30 steps, a dev evaluation every 5, selection from 70% of training on: steps 25 and 30 compete in both
    runs (21 is where the pruned run's final sparsity is in force), whatever the dense run's schedule is."""
    common = [*tiny_overrides, "lang=sw", "trainer.eval_every=5", "trainer.select_after=0.7"]
    dense = run(compose_run([*common, "pruning=dense"], tmp_path / "dense"))
    sparse = run(compose_run([*common, "pruning=global_magnitude", *GRADUAL], tmp_path / "sparse"))
    assert sparse.pruning.schedule.end_step == 21
    for record in (dense, sparse):
        selection = record.training.selection
        assert selection.rule == "best" and selection.after == 0.7
        assert selection.eligible_steps == [25, 30] and selection.candidates == 2
        assert [e.step for e in record.training.dev_history if e.eligible] == [25, 30]
        best = max((e for e in record.training.dev_history if e.eligible), key=lambda e: e.f1)
        assert (selection.step, selection.dev_f1) == (best.step, best.f1)
        assert record.dev.f1 == pytest.approx(selection.dev_f1)  # the kept model is the one scored
        assert record.arm.selection == "best@0.7" and record.arm.length == "max_steps=30"
        assert record.training.length_by == "max_steps" and record.training.steps == 30


@pytest.mark.slow
def test_selection_final_keeps_the_model_after_the_last_step(tmp_path, tiny_overrides):
    record = run(compose_run([*tiny_overrides, "lang=sw", "trainer.eval_every=10", "trainer.selection=final",
                              "pruning=global_magnitude", *GRADUAL], tmp_path))
    selection = record.training.selection
    assert (selection.rule, selection.after, selection.eligible_steps, selection.step) == ("final", None, [30], 30)
    assert [e.eligible for e in record.training.dev_history] == [False, False, True]
    assert record.arm.selection == "final"


def test_a_pruned_run_may_not_select_before_its_final_sparsity():
    with pytest.raises(SparseNLPError, match=r"trainer.select_after=0.5 lets model selection keep a model from "
                                             r"before schedule.end=0.7.*set trainer.select_after=0.7"):
        compose_settings(["pruning=global_magnitude", *GRADUAL, "trainer.select_after=0.5"])
    with pytest.raises(SparseNLPError, match="before schedule.start=0.3"):
        compose_settings(["pruning=global_magnitude", "schedule=oneshot", "schedule.start=0.3",
                          "trainer.select_after=0.2"])
    # the rule reads no schedule: a dense run takes any share, and `final` is always at the final sparsity
    assert compose_settings(["trainer.select_after=0.5"]).trainer.selection_rule == "best@0.5"
    assert compose_settings(["pruning=global_magnitude", *GRADUAL, "trainer.select_after=0.5",
                             "trainer.selection=final"]).trainer.selection_rule == "final"


class Veto(Callback):
    """A callback that forbids selecting any model before step ``first`` (as a pruner does before its final
    sparsity)."""

    def __init__(self, first: int) -> None:
        self.first = first

    def allows_checkpoint(self, step: int) -> bool:
        return step >= self.first


def test_a_rule_that_makes_a_vetoed_step_eligible_fails_before_training(tmp_path, tiny_overrides):
    job = build_job(compose_run([*tiny_overrides, "lang=sw", "trainer.eval_every=5", "trainer.select_after=0.5"],
                                tmp_path))
    assert job.trainer.eligible_steps == [15, 20, 25, 30]
    job.trainer.add_callback(Veto(21))
    with pytest.raises(SparseNLPError, match="makes the dev evaluation at step 15 of 30 eligible"):
        job.trainer.fit()
    assert job.trainer.step == 0


@pytest.mark.parametrize("overrides,total,length_by", [
    (["trainer.epochs=2"], 2 * 13, "epochs"),          # 400 sentences, batches of 32: 13 steps an epoch
    (["trainer.epochs=2", "trainer.min_steps=100"], 100, "min_steps"),
    (["trainer.epochs=2", "trainer.min_steps=10"], 2 * 13, "epochs"),  # a floor below the epochs changes nothing
    (["trainer.max_steps=7", "trainer.min_steps=100"], 7, "max_steps"),
])
def test_the_training_length_and_what_set_it(tmp_path, tiny_overrides, overrides, total, length_by):
    base = [o for o in tiny_overrides if not o.startswith(("trainer.max_steps", "trainer.batch_size"))]
    job = build_job(compose_run([*base, "lang=sw", "trainer.batch_size=32", *overrides], tmp_path))
    assert len(job.data.train.features) == 400 and job.trainer.steps_per_epoch == 13
    assert (job.trainer.total_steps, job.trainer.length_by) == (total, length_by)


# --- the joint regime offline ----------------------------------------------------------------------------------


def test_all_languages_offline_means_those_with_data_and_is_said_once(wikiann_root, caplog):
    from sparsenlp.train import _say_left_out

    s = compose_settings([f"data.root={wikiann_root}", "lang=all"])
    assert s.left_out == ["th"] and len(s.train_langs) == 39 and "th" not in s.train_langs
    assert all((wikiann_root / code / "train").is_file() for code in s.train_langs)
    with caplog.at_level("WARNING", logger="sparsenlp"):
        _say_left_out(s)
    assert [r.getMessage() for r in caplog.records] == [
        f"`all`: no data under {wikiann_root} for th; this run uses the 39 languages that have it"]
    transfer = compose_settings([f"data.root={wikiann_root}", "lang=en", "eval_lang=all"])
    assert transfer.train_langs == ["en"] and transfer.eval_langs == s.train_langs
    # from the Hub every language exists; a language named explicitly is kept (its read fails with the fix)
    assert len(compose_settings(["lang=all"]).train_langs) == 40 and compose_settings(["lang=all"]).left_out == []
    assert compose_settings([f"data.root={wikiann_root}", "lang=th"]).train_langs == ["th"]
    with pytest.raises(SparseNLPError, match="lang=all: no language of `languages` has a folder under data.root"):
        compose_settings([f"data.root={wikiann_root / 'en'}", "lang=all"]).train_langs  # noqa: B018


def _dry_run(*args: str) -> tuple[list[dict[str, str]], str]:
    from tests.helpers import cli

    result = cli(["-m", *args, "hydra.sweeper.dry_run=true"])
    assert result.returncode == 0, result.stderr[-2000:]
    jobs = [dict(o.split("=", 1) for o in line.split(" -> ")[0].split()) for line in result.stdout.splitlines()
            if " -> " in line]
    return jobs, result.stdout + result.stderr


@pytest.mark.slow
def test_no_job_of_the_offline_paper_sweep_lacks_data(wikiann_root):
    """Every job the dry run lists, per language or joint, trains and scores only languages with local files; the
    joint jobs' missing language is said once, at launch."""
    jobs, output = _dry_run("experiment=paper", f"data.root={wikiann_root}")
    assert output.count("lang=all / eval_lang=all: no data under") == 1 and "those 87 jobs use the 39 languages" in output
    for lang in sorted({job["lang"] for job in jobs}):
        s = compose_settings(["experiment=paper", f"data.root={wikiann_root}", f"lang={lang}"])
        assert all((wikiann_root / code / split).is_file() for code in {*s.train_langs, *s.eval_langs}
                   for split in ("train", "dev", "test")), lang


# --- experiment=paper and its controls --------------------------------------------------------------------------


@pytest.mark.slow
def test_the_paper_trains_every_language_ten_epochs_and_selects_among_the_same_evaluations(tmp_path, tiny_overrides):
    """XTREME's equal epochs: yo (100 sentences, 4 steps an epoch) trains 40 steps, de (20,000 sentences, a few
    more windows) about 6,260, with 10 distinct mask updates each and the same 4 of 10 dev evaluations eligible
    (epochs 7-10)."""
    keep = ("model=", "data.root=", "data.cache_dir=", "trainer.progress=", "logger=")
    common = [o for o in tiny_overrides if o.startswith(keep)] + [
        "experiment=paper", "model=tiny", "perturbation=none", "pruning.sparsity=0.9", "schedule=cubic",
        "schedule.start=0.1", "schedule.end=0.7", "schedule.updates=10"]
    for lang, sentences in (("yo", 100), ("de", 20000)):
        job = build_job(compose_run([*common, f"lang={lang}"], tmp_path / lang))
        trainer, schedule = job.trainer, job.pruner.schedule
        per_epoch = -(-len(job.data.train.features) // 32)
        assert len(job.data.train.sentences) == sentences and trainer.steps_per_epoch == per_epoch
        assert (trainer.total_steps, trainer.length_by) == (10 * per_epoch, "epochs")
        assert lang != "yo" or trainer.total_steps == 40
        assert len(set(schedule.update_steps)) == 10 and schedule.end_step == round(0.7 * trainer.total_steps)
        assert trainer.eligible_steps == [e * per_epoch for e in range(7, 11)]
        assert job.arm.selection == "best@0.7" and job.arm.length == "epochs=10"


@pytest.mark.slow
@pytest.mark.parametrize("experiment", ["paper", "paper_controls", "transfer"])
def test_every_job_an_experiment_lists_composes_under_one_protocol(experiment, wikiann_root):
    """Each distinct job of the dry run (seeds aside, a low- and a high-resource language for lang=each) is a valid
    config, dense baselines included (they run under no schedule while the pruned arms run under the
    experiment's), and within a protocol every arm shares the training length and the selection rule."""
    jobs, _ = _dry_run(f"experiment={experiment}", f"data.root={wikiann_root}")
    shapes = {tuple(sorted((k, v) for k, v in job.items() if k not in ("seed", "lang"))) for job in jobs}
    langs = {job.get("lang", "en") for job in jobs}
    arms = []
    for shape in shapes:
        for lang in sorted({"yo", "de"} & langs | {"all", "en"} & langs):
            s = compose_settings([f"{k}={v}" for k, v in shape] + [f"lang={lang}"])
            arms.append(build_arm(s))
            assert s.schedule.name == ("none" if s.method.is_dense(s.pruning) else "cubic")
            assert (s.trainer.epochs, s.trainer.weight_decay, s.trainer.warmup_ratio) == (10, 0.0, 0.0)
    protocols = {(arm.selection, arm.length) for arm in arms}
    if experiment == "paper_controls":
        assert protocols == {("best@0.7", "epochs=10"), ("final", "epochs=10"), ("best@0.7", "epochs=10,min_steps=500")}
        by_protocol = {p: {arm.method for arm in arms if (arm.selection, arm.length) == p} for p in protocols}
        assert by_protocol == {("best@0.7", "epochs=10"): {"dense", "global_magnitude", "random"},
                               ("final", "epochs=10"): {"dense", "global_magnitude"},
                               ("best@0.7", "epochs=10,min_steps=500"): {"dense", "global_magnitude"}}
        random = {arm.sparsity for arm in arms if arm.method == "random"}
        assert random == {arm.sparsity for arm in arms if arm.method == "global_magnitude"} and len(random) == 7
    else:
        assert protocols == {("best@0.7", "epochs=10")}
