"""The fast path has a queue of its own, and periodic passes never pile up.

Routing and command lines need no broker; the pass marks run on a real Redis (the
session's lone ``redis-server``), through the watcher's schedule and real Celery task
runs (eager, so the ``task_prerun`` / ``task_postrun`` signals fire as in a worker).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from celery.signals import task_prerun

from worker import passes
from worker.__main__ import Supervisor, roles_for, worker_argv
from worker.celery_app import DEFAULT_QUEUE, FAST_QUEUE, create_celery
from worker.settings import WorkerSettings
from worker.watcher import Watcher


def _queue(app: Any, name: str) -> str:
    route = app.amqp.router.route({}, name, args=(), kwargs={})
    return str(route["queue"].name)


def test_reconcile_service_goes_to_the_fast_queue_and_the_rest_to_the_default() -> None:
    app = create_celery(WorkerSettings(redis_url="redis://127.0.0.1:1/0"))
    assert _queue(app, "berth.reconcile_service") == FAST_QUEUE
    for name in ("berth.reconcile", "berth.deploy", "berth.heartbeat",
                 "berth.refresh_repositories"):
        assert _queue(app, name) == DEFAULT_QUEUE, name
    assert FAST_QUEUE != DEFAULT_QUEUE


def test_the_fast_worker_consumes_only_the_fast_queue() -> None:
    settings = WorkerSettings(concurrency=4, fast_concurrency=2)
    fast = worker_argv(settings, "fast", 7)
    main = worker_argv(settings, "celery", 7)
    assert f"--queues={FAST_QUEUE}" in fast and "--concurrency=2" in fast
    assert "--pool=threads" in fast  # recoveries wait on I/O: many at once, cheaply
    assert f"--queues={DEFAULT_QUEUE},{FAST_QUEUE}" in main and "--concurrency=4" in main
    assert "--pool=prefork" in main
    assert next(a for a in fast if a.startswith("--hostname")) != \
        next(a for a in main if a.startswith("--hostname"))


def test_python_m_worker_starts_a_fast_worker_unless_it_has_no_processes() -> None:
    assert roles_for(WorkerSettings(fast_concurrency=2)) == ("celery", "fast", "watch")
    assert roles_for(WorkerSettings(fast_concurrency=0)) == ("celery", "watch")
    assert Supervisor(("celery", "watch")).roles == ("celery", "watch")


def test_fast_concurrency_is_read_from_the_environment() -> None:
    settings = WorkerSettings.from_env({"BERTH_WORKER_FAST_CONCURRENCY": "3"})
    assert settings.fast_concurrency == 3
    with pytest.raises(ValueError, match="BERTH_WORKER_FAST_CONCURRENCY"):
        WorkerSettings.from_env({"BERTH_WORKER_FAST_CONCURRENCY": "-1"})


@pytest.fixture
def settings(redis_url: str) -> Iterator[WorkerSettings]:
    s = WorkerSettings(redis_url=redis_url, prefix=f"t{uuid.uuid4().hex[:8]}:",
                       watch_events=False)
    yield s
    watcher = Watcher(s, lambda *a, **k: None)
    keys = list(watcher.store.redis.scan_iter(match=s.prefix + "*"))
    if keys:
        watcher.store.redis.delete(*keys)


def test_the_schedule_does_not_queue_a_pass_already_queued(settings: WorkerSettings) -> None:
    sent: list[str] = []
    watcher = Watcher(settings, lambda name, args: sent.append(name))
    for _ in range(5):  # five ticks while the first pass still waits in the queue
        watcher._send_pass("berth.reconcile")
        watcher._send_pass("berth.heartbeat")
    assert sent == ["berth.reconcile", "berth.heartbeat"]
    key = passes.mark_key(settings.prefix, "berth.reconcile")
    assert watcher.store.redis.get(key) == "queued"
    assert 0 < watcher.store.redis.pttl(key) <= passes.queued_ttl(settings, "berth.reconcile")


def test_a_running_pass_is_not_queued_again_and_its_end_frees_the_schedule(
        settings: WorkerSettings) -> None:
    """A real ``berth.heartbeat`` run: while it runs its mark says ``running`` (and the
    schedule sends nothing); once it ended the next tick sends the next pass."""
    sent: list[str] = []
    watcher = Watcher(settings, lambda name, args: sent.append(name))
    app = create_celery(settings)
    app.conf.task_always_eager = True
    app.loader.import_default_modules()
    import worker.tasks  # noqa: F401 - registers the shared tasks

    seen: dict[str, Any] = {}

    def during(sender: Any = None, **_: Any) -> None:
        if sender is not None and sender.name == "berth.heartbeat":
            seen["mark"] = watcher.store.redis.get(
                passes.mark_key(settings.prefix, "berth.heartbeat"))
            watcher._send_pass("berth.heartbeat")
            seen["sent_while_running"] = list(sent)

    watcher._send_pass("berth.heartbeat")
    task_prerun.connect(during, weak=False, dispatch_uid="test-during")
    try:
        app.tasks["berth.heartbeat"].apply()
    finally:
        task_prerun.disconnect(dispatch_uid="test-during")
    assert str(seen.pop("mark")).startswith("running ")
    assert seen == {"sent_while_running": ["berth.heartbeat"]}
    assert watcher.store.redis.get(passes.mark_key(settings.prefix, "berth.heartbeat")) \
        is None
    watcher._send_pass("berth.heartbeat")
    assert sent == ["berth.heartbeat", "berth.heartbeat"]


def test_the_fast_path_is_not_held_by_pass_marks(settings: WorkerSettings) -> None:
    """``wake`` sends ``berth.reconcile_service`` even while a reconcile pass is marked."""
    sent: list[tuple[str, list[Any]]] = []
    watcher = Watcher(settings, lambda name, args: sent.append((name, args)))
    watcher._send_pass("berth.reconcile")
    watcher.wake("web")
    assert sent == [("berth.reconcile", []), ("berth.reconcile_service", ["web"])]


def _until(check: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_running_mark_is_a_lease_renewed_while_the_pass_runs(
        settings: WorkerSettings) -> None:
    """The mark of a running pass lives a few intervals, not the task's time limit,
    and its process renews it while the pass goes on."""
    watcher = Watcher(settings, lambda *a, **k: None)
    redis, key = watcher.store.redis, passes.mark_key(settings.prefix, "berth.reconcile")
    ttl = passes.running_ttl(settings, "berth.reconcile")
    assert ttl < settings.task_time_limit * 1000
    passes.started(redis, settings.prefix, settings, "berth.reconcile", "t1")
    try:
        left = [redis.pttl(key)]
        assert 0 < left[0] <= ttl

        def renewed() -> bool:   # the time left went down, then back up
            left.append(redis.pttl(key))
            return left[-1] > min(left) + 1000
        _until(renewed, ttl / 1000, "the lease renewed")
    finally:
        passes.finished(redis, settings.prefix, "berth.reconcile", "t1")
    assert redis.get(key) is None


def test_a_pass_whose_process_died_frees_the_schedule_when_its_lease_runs_out(
        settings: WorkerSettings) -> None:
    """SIGKILL of the process running a pass, as its lease sees it: no renewal. The mark
    runs out within the lease, and the schedule sends the next pass."""
    sent: list[str] = []
    watcher = Watcher(settings, lambda name, args: sent.append(name))
    redis, key = watcher.store.redis, passes.mark_key(settings.prefix, "berth.reconcile")
    lease = passes._Lease(redis, key, ttl_ms=600)     # a short lease, the same code
    lease.done.set()                                  # the process is gone: no renewal
    lease.thread.join(timeout=5)
    watcher._send_pass("berth.reconcile")
    assert sent == []                                 # still held
    _until(lambda: redis.get(key) is None, 10, "the lease to run out")
    watcher._send_pass("berth.reconcile")
    assert sent == ["berth.reconcile"]


def test_a_lease_that_ran_out_and_was_taken_is_not_renewed_nor_released(
        settings: WorkerSettings) -> None:
    """A pass that outlived its lease (its process stalled) does not overwrite or delete
    the mark of the pass queued after it."""
    watcher = Watcher(settings, lambda *a, **k: None)
    redis, key = watcher.store.redis, passes.mark_key(settings.prefix, "berth.reconcile")
    lease = passes._Lease(redis, key, ttl_ms=60_000)
    redis.set(key, "queued")                          # the schedule's next pass
    lease.end()
    assert redis.get(key) == "queued"
