"""Where the state Redis is: a URL or Sentinels — what each process and Celery get."""

from __future__ import annotations

import pytest

from catalog.settings_table import SettingsError
from worker.celery_app import create_celery
from worker.settings import WorkerSettings
from worker.store.connection import RedisEndpoint, parse_sentinels

MASTER_PW, SENTINEL_PW = "p@ss/word", "s3ntinel"
SENTINEL_ENV = {"BERTH_REDIS_SENTINELS": "127.0.0.1:26379, 127.0.0.2:26380,[::1]:26381",
                "BERTH_REDIS_MASTER": "blue", "BERTH_REDIS_PASSWORD": MASTER_PW,
                "BERTH_REDIS_SENTINEL_PASSWORD": SENTINEL_PW}


def test_sentinels_parse_as_host_port_pairs() -> None:
    assert parse_sentinels("a:1,b:2, ,c:3") == (("a", 1), ("b", 2), ("c", 3))
    assert parse_sentinels("") == ()


@pytest.mark.parametrize("bad", ["nohost", "a:", ":1", "a:port", "a:70000"])
def test_a_bad_sentinel_is_refused_naming_the_variable(bad: str) -> None:
    with pytest.raises(SettingsError, match=f"^BERTH_REDIS_SENTINELS: '{bad}'"):
        WorkerSettings.from_env({"BERTH_REDIS_SENTINELS": f"ok:1,{bad}"})


def test_the_broker_is_the_sentinel_transport_with_master_name_and_passwords() -> None:
    settings = WorkerSettings.from_env(SENTINEL_ENV)
    assert settings.broker == ("sentinel://:p%40ss%2Fword@127.0.0.1:26379/0;"
                               "sentinel://:p%40ss%2Fword@127.0.0.2:26380/0;"
                               "sentinel://:p%40ss%2Fword@[::1]:26381/0")
    conf = create_celery(settings).conf
    options = conf.broker_transport_options
    assert options["master_name"] == "blue"
    assert options["sentinel_kwargs"]["password"] == SENTINEL_PW
    assert options["visibility_timeout"] > settings.task_time_limit
    assert conf.broker_use_ssl is None


def test_without_sentinels_the_url_is_used_as_before() -> None:
    settings = WorkerSettings.from_env({"BERTH_REDIS_URL": "redis://127.0.0.1:7000/2"})
    assert settings.broker == "redis://127.0.0.1:7000/2"
    assert "master_name" not in create_celery(settings).conf.broker_transport_options
    split = WorkerSettings.from_env({"BERTH_BROKER_URL": "redis://127.0.0.1:7001/0"})
    assert split.broker == "redis://127.0.0.1:7001/0"


def test_a_sentinel_client_asks_the_sentinels_for_the_named_master() -> None:
    endpoint = WorkerSettings.from_env(SENTINEL_ENV).redis_endpoint
    client = endpoint.client(socket_timeout=0.5)
    pool = client.connection_pool
    assert pool.service_name == "blue"
    assert pool.connection_kwargs["password"] == MASTER_PW
    sentinels = pool.sentinel_manager.sentinels
    assert [s.connection_pool.connection_kwargs["port"] for s in sentinels] == [26379, 26380,
                                                                               26381]
    assert all(s.connection_pool.connection_kwargs["password"] == SENTINEL_PW
               for s in sentinels)
    assert "p@ss" not in repr(endpoint) and "s3ntinel" not in repr(endpoint)


def test_tls_checks_the_servers_and_goes_to_the_broker_too(tmp_path: object) -> None:
    env = {**SENTINEL_ENV, "BERTH_REDIS_TLS_CA": "/etc/berth/ca.pem",
           "BERTH_REDIS_TLS_CERT": "/etc/berth/c.pem", "BERTH_REDIS_TLS_KEY": "/etc/berth/k.pem"}
    settings = WorkerSettings.from_env(env)
    endpoint = settings.redis_endpoint
    assert endpoint.tls_kwargs()["ssl_cert_reqs"] == "required"
    client = endpoint.client()
    assert client.connection_pool.connection_kwargs["ssl_ca_certs"] == "/etc/berth/ca.pem"
    sentinel = client.connection_pool.sentinel_manager.sentinels[0]
    assert sentinel.connection_pool.connection_kwargs["ssl_ca_certs"] == "/etc/berth/ca.pem"
    ssl_conf = create_celery(settings).conf.broker_use_ssl
    assert ssl_conf["ssl_ca_certs"] == "/etc/berth/ca.pem"
    assert ssl_conf["ssl_certfile"] == "/etc/berth/c.pem"


@pytest.mark.parametrize(("env", "words"), [
    ({"BERTH_REDIS_TLS_KEY": "/k"}, "BERTH_REDIS_TLS_KEY is set without"),
    ({"BERTH_REDIS_TLS_CERT": "/c"}, "BERTH_REDIS_TLS_CERT needs BERTH_REDIS_TLS_CA"),
    ({"BERTH_REDIS_MIN_REPLICAS": "-2"}, "BERTH_REDIS_MIN_REPLICAS must be"),
])
def test_settings_that_do_not_go_together_are_refused(env: dict[str, str],
                                                      words: str) -> None:
    with pytest.raises(SettingsError, match=words):
        WorkerSettings.from_env(env)


def test_the_endpoint_of_a_url_says_nothing_secret() -> None:
    assert RedisEndpoint("redis://:secret@h:1/0").shown == "BERTH_REDIS_URL"
