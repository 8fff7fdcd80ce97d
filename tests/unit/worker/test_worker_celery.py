"""The Celery app's reliability settings and the task names (no broker needed)."""

from __future__ import annotations

from worker.celery_app import TASK_NAMES, create_celery
from worker.settings import WorkerSettings


def test_reliability_settings():
    app = create_celery(WorkerSettings(redis_url="redis://127.0.0.1:1/0", task_time_limit=600))
    conf = app.conf
    assert conf.task_serializer == "json" and conf.accept_content == ["json"]
    assert conf.task_acks_late is True and conf.task_reject_on_worker_lost is True
    assert conf.worker_prefetch_multiplier == 1
    assert conf.task_time_limit == 600 and conf.task_soft_time_limit < 600
    assert conf.broker_transport_options["visibility_timeout"] > 600
    assert app.berth_settings.broker == "redis://127.0.0.1:1/0"


def test_every_task_is_registered_by_name_with_bounded_retries():
    app = create_celery(WorkerSettings())
    app.loader.import_default_modules()
    import worker.tasks  # noqa: F401 - registers the shared tasks

    for name in TASK_NAMES:
        task = app.tasks[name]
        assert task.acks_late is True
        assert task.max_retries is not None and task.max_retries <= 3


def test_settings_from_env_parse_and_name_bad_values():
    settings = WorkerSettings.from_env({"BERTH_REDIS_URL": "redis://x:1/2",
                                        "BERTH_UNREACHABLE_TIMEOUT": "6",
                                        "BERTH_ALLOWED_HOST_PATHS": "/srv:/data",
                                        "BERTH_WORKER_CONCURRENCY": "2",
                                        "BERTH_WATCH_EVENTS": "no"})
    assert settings.unreachable_timeout == 6.0 and settings.broker == "redis://x:1/2"
    assert settings.allowed_host_paths == ("/srv", "/data") and settings.concurrency == 2
    assert settings.watch_events is False
    try:
        WorkerSettings.from_env({"BERTH_RECONCILE_INTERVAL": "soon"})
    except ValueError as error:
        assert "BERTH_RECONCILE_INTERVAL" in str(error)
    else:
        raise AssertionError("a bad value must be refused")
