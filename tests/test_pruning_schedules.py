"""Schedules against Zhu & Gupta's formula evaluated by hand at chosen steps."""
from __future__ import annotations

import pytest

from sparsenlp.errors import SparseNLPError
from sparsenlp.pruning.schedules import Schedule


def cubic(**kw) -> Schedule:
    args = dict(name="cubic", final_sparsity=0.9, initial_sparsity=0.1, start_step=10, end_step=50, frequency=10)
    return Schedule(**{**args, **kw})


# s_t = 0.9 + (0.1 - 0.9) * (1 - (t - 10) / 40) ** 3, frozen between updates every 10 steps
@pytest.mark.parametrize("step,target,update", [
    (0, 0.0, False),
    (9, 0.0, False),
    (10, 0.1, True),
    (15, 0.1, False),
    (20, 0.9 - 0.8 * 0.75 ** 3, True),
    (29, 0.9 - 0.8 * 0.75 ** 3, False),
    (30, 0.8, True),
    (40, 0.9 - 0.8 * 0.25 ** 3, True),
    (49, 0.9 - 0.8 * 0.25 ** 3, False),
    (50, 0.9, True),
    (51, 0.9, False),
    (500, 0.9, False),
])
def test_cubic_matches_formula(step, target, update):
    schedule = cubic()
    assert schedule.target(step) == pytest.approx(target, abs=1e-12)
    assert schedule.is_update_step(step) is update


@pytest.mark.parametrize("step,target", [(0, 0.0), (24, 0.0), (25, 0.2), (50, 0.4), (60, 0.4), (100, 0.8), (130, 0.8)])
def test_linear_matches_formula(step, target):
    schedule = Schedule("linear", 0.8, start_step=0, end_step=100, frequency=25)
    assert schedule.target(step) == pytest.approx(target, abs=1e-12)
    assert schedule.update_steps() == [0, 25, 50, 75, 100]


def test_last_update_is_end_step_even_off_the_grid():
    schedule = cubic(end_step=45)
    assert schedule.update_steps() == [10, 20, 30, 40, 45]
    assert schedule.target(44) == pytest.approx(0.9 - 0.8 * (1 - 30 / 35) ** 3)
    assert schedule.target(45) == 0.9


@pytest.mark.parametrize("start", [0, 7])
def test_oneshot(start):
    schedule = Schedule("oneshot", 0.7, start_step=start, end_step=99, frequency=3)  # end/frequency unused
    assert schedule.update_steps() == [start]
    assert schedule.target(start) == 0.7 and schedule.is_update_step(start)
    assert schedule.target(start + 20) == 0.7 and not schedule.is_update_step(start + 3)
    if start:
        assert schedule.target(start - 1) == 0.0 and not schedule.is_update_step(start - 1)


def test_fractions_resolve_against_total_steps():
    schedule = Schedule("cubic", 0.9, start_step=0.1, end_step=0.5, frequency=0.05).resolve(200)
    assert (schedule.start_step, schedule.end_step, schedule.frequency) == (20, 100, 10)
    assert schedule.resolved and schedule.target(60) == pytest.approx(0.9 - 0.9 * 0.5 ** 3)
    ints = Schedule("linear", 0.5, start_step=1, end_step=1.0, frequency=1).resolve(30)
    assert (ints.start_step, ints.end_step, ints.frequency) == (1, 30, 1)
    assert Schedule("cubic", 0.5, end_step=0.5, frequency=0.001).resolve(100).frequency == 1
    assert Schedule("oneshot", 0.5, start_step=0.5).resolve(9).update_steps() == [4]  # round half to even


def test_unresolved_schedule_refuses_to_answer():
    schedule = Schedule("cubic", 0.9, end_step=0.8)
    assert not schedule.resolved
    with pytest.raises(SparseNLPError, match="resolve"):
        schedule.target(3)
    with pytest.raises(SparseNLPError, match="total steps"):
        schedule.resolve(None)


@pytest.mark.parametrize("kwargs,match", [
    (dict(final_sparsity=1.0), "final_sparsity"),
    (dict(final_sparsity=-0.1), "final_sparsity"),
    (dict(initial_sparsity=1.2), "initial_sparsity"),
    (dict(final_sparsity=True), "final_sparsity"),
    (dict(initial_sparsity=0.95), "exceeds"),
    (dict(start_step=60), "after end_step"),
    (dict(frequency=0), "frequency"),
    (dict(frequency=-3), "frequency"),
    (dict(frequency=1.5), "frequency"),
    (dict(start_step=-1), "start_step"),
    (dict(end_step=2.5), "end_step"),
    (dict(end_step=None), "needs end_step"),
    (dict(name="exponential"), "unknown"),
])
def test_bad_schedules_raise(kwargs, match):
    with pytest.raises(SparseNLPError, match=match):
        cubic(**kwargs)


def test_resolve_rejects_steps_beyond_training():
    with pytest.raises(SparseNLPError, match="only 40 steps"):
        cubic().resolve(40)
    with pytest.raises(SparseNLPError, match="after end_step"):
        cubic(start_step=0.9, end_step=20).resolve(100)
    with pytest.raises(SparseNLPError, match="positive int"):
        cubic().resolve(0)
