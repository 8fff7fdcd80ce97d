"""The admin's network and user policy: the host network only where allowed, root
refused only where the admin says so (``catalog.spec.ContainerPolicy``)."""

from __future__ import annotations

from typing import Any

import pytest

from catalog import Package, SpecRefused, check_policy, render_service, validate_spec
from catalog.spec import ContainerPolicy

HOST = validate_spec({"image": "x:1", "network": "host"})


def _refusals(spec: dict[str, Any], policy: ContainerPolicy, package: str = "") -> list[str]:
    with pytest.raises(SpecRefused) as info:
        check_policy(spec, container=policy, package=package)
    return [p["path"] for p in info.value.details]


def test_a_spec_without_a_network_gets_bridge() -> None:
    assert validate_spec({"image": "x:1"})["network"] == "bridge"


def test_the_host_network_is_refused_by_the_default_site_policy() -> None:
    with pytest.raises(SpecRefused) as info:
        check_policy(HOST, container=ContainerPolicy(), package="web")
    assert info.value.details[0]["path"] == "spec/network"
    assert "host network is not allowed for web" in info.value.details[0]["message"]
    assert "BERTH_ALLOW_HOST_NETWORK" in (info.value.hint or "")


def test_bridge_is_always_allowed() -> None:
    check_policy(validate_spec({"image": "x:1"}), container=ContainerPolicy())


@pytest.mark.parametrize("raw", ["true", "1", "yes", "ON"])
def test_an_admin_allows_the_host_network_to_every_package(raw: str) -> None:
    check_policy(HOST, container=ContainerPolicy.from_settings(raw), package="web")
    check_policy(HOST, container=ContainerPolicy.from_settings(raw))   # no package


@pytest.mark.parametrize("raw", ["", "false", "0", "off"])
def test_false_words_refuse_it(raw: str) -> None:
    assert _refusals(HOST, ContainerPolicy.from_settings(raw), "web") == ["spec/network"]


def test_an_allow_list_names_the_packages_that_may_use_it() -> None:
    policy = ContainerPolicy.from_settings("node-exporter, traefik")
    check_policy(HOST, container=policy, package="traefik")
    assert _refusals(HOST, policy, "hello") == ["spec/network"]
    assert _refusals(HOST, policy, "") == ["spec/network"]   # a spec of no package


def test_a_bad_allow_list_names_the_variable() -> None:
    with pytest.raises(ValueError, match="BERTH_ALLOW_HOST_NETWORK: Bad Name"):
        ContainerPolicy.from_settings("traefik,Bad Name")


@pytest.mark.parametrize("user", ["root", "0", "0:0", "root:wheel", "00"])
def test_root_is_refused_where_the_admin_says_so(user: str) -> None:
    spec = validate_spec({"image": "x:1", "user": user})
    check_policy(spec, container=ContainerPolicy())          # allowed by default
    assert _refusals(spec, ContainerPolicy(refuse_root_user=True)) == ["spec/user"]


@pytest.mark.parametrize("user", ["1000", "1000:0", "nobody", "rooter", "10"])
def test_other_users_pass_even_when_root_is_refused(user: str) -> None:
    check_policy(validate_spec({"image": "x:1", "user": user}),
                 container=ContainerPolicy(refuse_root_user=True))


def test_every_refusal_is_reported_at_once() -> None:
    spec = validate_spec({"image": "x:1", "network": "host", "user": "root",
                          "privileged": True})
    assert sorted(_refusals(spec, ContainerPolicy(refuse_root_user=True))) == [
        "spec/network", "spec/privileged", "spec/user"]


def test_render_service_applies_the_site_policy_with_the_package_name() -> None:
    package = Package("demo", "1.0.0", template='{"image": "x:1", "network": "host"}')
    with pytest.raises(SpecRefused) as info:
        render_service(package, {}, service_name="w", container=ContainerPolicy())
    assert info.value.package == package.name
    allowed = ContainerPolicy(host_network=frozenset({package.name}))
    assert render_service(package, {}, service_name="w", container=allowed)["network"] == "host"
