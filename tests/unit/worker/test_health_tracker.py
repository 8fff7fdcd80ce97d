"""Grace period, interval and consecutive failures of health checks (pure)."""

from __future__ import annotations

from worker.health import HealthTracker

SPEC = {"intervalSeconds": 10, "gracePeriodSeconds": 30, "maxConsecutiveFailures": 3}


def test_failures_inside_the_grace_period_are_ignored_until_the_first_success() -> None:
    tracker = HealthTracker(SPEC, started_at=0)
    assert tracker.record(False, 5) == "unknown" and tracker.failures == 0
    assert tracker.record(True, 6) == "healthy"
    assert tracker.record(False, 7) == "healthy" and tracker.failures == 1


def test_max_consecutive_failures_make_it_unhealthy_and_a_success_resets() -> None:
    tracker = HealthTracker(SPEC, started_at=0)
    for now in (31, 41):
        assert tracker.record(False, now) == "unknown"
    assert tracker.record(False, 51) == "unhealthy" and tracker.should_replace
    assert tracker.record(True, 61) == "healthy" and tracker.failures == 0


def test_zero_max_failures_never_makes_it_unhealthy() -> None:
    tracker = HealthTracker({**SPEC, "maxConsecutiveFailures": 0}, started_at=0)
    for now in range(40, 200, 10):
        tracker.record(False, now)
    assert tracker.status == "unknown" and tracker.failures == 16


def test_checks_are_due_quickly_until_healthy_then_every_interval() -> None:
    tracker = HealthTracker(SPEC, started_at=0, startup_interval=0.5)
    assert tracker.due(0)
    tracker.record(False, 0)
    assert not tracker.due(0.4) and tracker.due(0.5)
    tracker.record(True, 1)
    assert not tracker.due(10.9) and tracker.due(11)
    assert tracker.to_dict() == {"health": "healthy", "failures": 0, "last_check": 1}
