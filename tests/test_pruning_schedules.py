"""Schedules against Zhu & Gupta's formula evaluated by hand at chosen steps, and equal for every language."""
from __future__ import annotations

import pytest

from sparsenlp.config.schedule import ScheduleConfig
from sparsenlp.errors import SparseNLPError
from sparsenlp.pruning.schedules import Schedule


def zhu_gupta(t: float, s_i: float, s_f: float, t0: float, n: int, dt: float) -> float:
    """s_t = s_f + (s_i - s_f) * (1 - (t - t0) / (n * dt)) ** 3, Zhu & Gupta (2017), eq. 1."""
    return s_f + (s_i - s_f) * (1 - (t - t0) / (n * dt)) ** 3


CUBIC = ScheduleConfig(name="cubic", initial_sparsity=0.1, start=0.1, end=0.5, updates=4)


# 100 steps: t0 = 10, n*dt = 40 (dt = 10): updates at 10 (to s_i, which is above 0), 20, 30, 40, 50, frozen in between
@pytest.mark.parametrize("step,update", [
    (0, False), (9, False), (10, True), (15, False), (20, True), (29, False), (30, True), (40, True), (49, False),
    (50, True), (51, False), (100, False),
])
def test_cubic_matches_the_formula_at_hand_picked_steps(step, update):
    schedule = Schedule.for_run(CUBIC, 0.9, total_steps=100)
    last_update = max([t for t in (10, 20, 30, 40, 50) if t <= step], default=None)
    expected = 0.0 if last_update is None else zhu_gupta(last_update, 0.1, 0.9, 10, 4, 10)
    assert schedule.target(step) == pytest.approx(expected, abs=1e-12)
    assert schedule.is_update_step(step) is update


def test_linear_ramps_evenly():
    """From s_i = 0 there is nothing to prune at t0: the 4 updates asked for are the 4 steps of the ramp."""
    linear = ScheduleConfig(name="linear", start=0.0, end=1.0, updates=4)
    schedule = Schedule.for_run(linear, 0.8, total_steps=100)
    assert schedule.update_steps == (25, 50, 75, 100) and schedule.report().updates == 4
    assert [schedule.target(t) for t in (0, 24, 25, 50, 60, 100)] == pytest.approx([0.0, 0.0, 0.2, 0.4, 0.4, 0.8])


def test_an_initial_sparsity_adds_the_update_at_t0_and_the_record_says_what_was_asked():
    cubic = Schedule.for_run(CUBIC, 0.9, total_steps=100)
    assert cubic.update_steps == (10, 20, 30, 40, 50) and cubic.report().updates == CUBIC.updates == 4
    assert cubic.target(10) == pytest.approx(0.1)


@pytest.mark.parametrize("start,total,step", [(0.0, 50, 0), (0.3, 50, 15), (0.5, 9, 4)])  # 4.5 -> 4 (half to even)
def test_oneshot_prunes_once_at_its_fraction(start, total, step):
    schedule = Schedule.for_run(ScheduleConfig(name="oneshot", start=start), 0.7, total_steps=total)
    assert schedule.update_steps == (step,)
    assert schedule.target(step) == 0.7 and schedule.is_update_step(step)
    assert not schedule.is_update_step(step + 1) and schedule.target(total) == 0.7
    if step:
        assert schedule.target(step - 1) == 0.0


@pytest.mark.parametrize("small,large", [(40, 6250), (500, 6250), (37, 1000)])
def test_every_run_length_gets_the_same_updates_targets_and_recovery_share(small, large):
    """A 100-sentence language (a few dozen steps) and a 20,000-sentence one (thousands): the same number of
    mask updates, the same sequence of targets, the same share of training after the last update."""
    config = ScheduleConfig(name="cubic", start=0.1, end=0.7, updates=10)
    a, b = Schedule.for_run(config, 0.9, small), Schedule.for_run(config, 0.9, large)
    assert len(a.update_steps) == len(b.update_steps) == 10
    assert [a.target(t) for t in a.update_steps] == [b.target(t) for t in b.update_steps]
    assert [a.target(t) for t in a.update_steps] == pytest.approx(
        [zhu_gupta(k, 0.0, 0.9, 0, 10, 1) for k in range(1, 11)])
    for schedule, total in ((a, small), (b, large)):
        report = schedule.report()
        assert report.updates == 10 and report.end_step == round(0.7 * total)
        assert report.recovery_fraction == pytest.approx(0.3, abs=1 / total)


def test_too_short_a_run_for_the_updates_is_an_error_naming_the_fix():
    config = ScheduleConfig(name="cubic", start=0.1, end=0.7, updates=10)
    with pytest.raises(SparseNLPError, match=r"16 optimizer steps.*needs at least 17.*train longer"):
        Schedule.for_run(config, 0.9, total_steps=16)
    assert len(Schedule.for_run(config, 0.9, total_steps=17).update_steps) == 10


@pytest.mark.parametrize("kwargs,match", [
    (dict(name="exponential"), "schedule.name='exponential' is not one of"),
    (dict(start=-0.1), "schedule.start"),
    (dict(start=0.8), "schedule.end"),
    (dict(end=1.5), "schedule.end"),
    (dict(end=None), "schedule.end"),
    (dict(updates=0), "schedule.updates"),
    (dict(initial_sparsity=1.0), "initial_sparsity"),
])
def test_bad_schedule_configs_raise_in_the_users_keys(kwargs, match):
    with pytest.raises(SparseNLPError, match=match):
        ScheduleConfig(**{**dict(name="cubic", start=0.1, end=0.7, updates=10), **kwargs})


def test_oneshot_refuses_gradual_keys():
    with pytest.raises(SparseNLPError, match="schedule=oneshot has no schedule.end"):
        ScheduleConfig(name="oneshot", end=0.5)
