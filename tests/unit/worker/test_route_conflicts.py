"""The route overlap rules (pure): which hosts and path prefixes claim the same
requests, the check an install runs, and which route a proxy keeps when records clash."""

from __future__ import annotations

from typing import Any

import pytest

from worker.endpoints import (
    RouteConflict,
    check_routes,
    hosts_overlap,
    normal_prefix,
    route_conflicts,
)


def service(name: str, *routes: dict[str, Any], created_at: float = 1.0,
            status: str = "running") -> dict[str, Any]:
    return {"name": name, "status": status, "created_at": created_at,
            "spec": {"expose": [{"portName": "http", **r} for r in routes]}}


@pytest.mark.parametrize(("a", "b", "overlap"), [
    ("web.test", "web.test", True),
    ("Web.Test", "web.TEST", True),
    ("web.test", "api.test", False),
    ("*.example.com", "a.example.com", True),
    ("a.example.com", "*.example.com", True),
    ("*.example.com", "a.b.example.com", False),     # one label only
    ("*.example.com", "example.com", False),
    ("*.example.com", "*.example.com", True),
    ("*.example.com", "*.b.example.com", False),
    ("*.b.example.com", "a.b.example.com", True),
    ("localhost", "*.localhost", False),
])
def test_hosts_overlap_ignoring_case_and_through_one_label_wildcards(a, b, overlap):
    assert hosts_overlap(a, b) is overlap
    assert hosts_overlap(b, a) is overlap


@pytest.mark.parametrize(("prefix", "normal"), [
    ("/", "/"), ("", "/"), ("/api", "/api"), ("/api/", "/api"), ("//api//", "/api"),
    ("/API", "/api"), ("/a//b/", "/a/b"),
])
def test_path_prefixes_are_compared_normalised(prefix, normal):
    assert normal_prefix(prefix) == normal


def test_the_same_host_and_prefix_of_another_service_is_refused_naming_everything():
    old = service("old", {"hosts": ["web.test"], "pathPrefix": "/api"})
    new = service("new", {"hosts": ["www.test", "WEB.test"], "pathPrefix": "/api/"})
    with pytest.raises(RouteConflict) as caught:
        check_routes(new, [old])
    error = caught.value
    assert error.code == "route_conflict"
    assert error.details == [{"path": "spec/expose/0/hosts/1", "message":
                              "host web.test with path prefix /api (group external) is "
                              "routed to service 'old' (route old-0, host web.test)"}]
    assert "web.test/api" in error.message and "'old'" in error.message
    assert "'old'" in (error.hint or "")
    [clash] = error.data["conflicts"]
    assert (clash["service"], clash["other_route"], clash["host"]) == ("old", "old-0",
                                                                       "web.test")


def test_a_wildcard_clashes_with_a_host_it_matches_both_ways():
    wild = service("wild", {"hosts": ["*.example.com"]})
    exact = service("exact", {"hosts": ["a.example.com"]})
    with pytest.raises(RouteConflict):
        check_routes(exact, [wild])
    with pytest.raises(RouteConflict):
        check_routes(wild, [exact])
    check_routes(service("deep", {"hosts": ["a.b.example.com"]}), [wild])


@pytest.mark.parametrize("other", [
    service("other", {"hosts": ["web.test"], "pathPrefix": "/api"}),     # another prefix
    service("other", {"hosts": ["api.test"]}),                          # another host
    service("other", {"hosts": ["web.test"], "group": "internal"}),     # another group
    service("other", {"hosts": ["web.test"]}, status="deleting"),       # yields its routes
])
def test_what_does_not_claim_the_same_requests_is_accepted(other):
    check_routes(service("new", {"hosts": ["web.test"]}), [other])


def test_a_service_does_not_conflict_with_its_own_routes():
    web = service("web", {"hosts": ["web.test"]})
    check_routes(web, [web], before=web["spec"])


def test_a_change_keeping_a_host_is_not_checked_again_but_a_new_host_is():
    older = service("older", {"hosts": ["web.test", "new.test"]}, created_at=0.5)
    web = service("web", {"hosts": ["web.test"]})            # a clash from older records
    check_routes(web, [older, web], before=web["spec"])
    grown = service("web", {"hosts": ["web.test", "new.test"]})
    with pytest.raises(RouteConflict) as caught:
        check_routes(grown, [older, web], before=web["spec"])
    assert [d["path"] for d in caught.value.details] == ["spec/expose/0/hosts/1"]


def test_two_routes_of_one_spec_that_overlap_are_refused():
    both = service("web", {"hosts": ["web.test"]}, {"hosts": ["WEB.test"], "pathPrefix": "//"})
    with pytest.raises(RouteConflict) as caught:
        check_routes(both, [])
    assert caught.value.details[0]["path"] == "spec/expose/1/hosts/0"
    assert "web's own route web-0" in caught.value.details[0]["message"]


def test_clashing_records_keep_the_route_of_the_service_installed_first():
    newer = service("aaa", {"hosts": ["web.test"]}, created_at=2.0)
    older = service("zzz", {"hosts": ["web.test"]}, created_at=1.0)
    other = service("api", {"hosts": ["api.test"]}, created_at=3.0)
    left_out = route_conflicts([newer, older, other])
    assert list(left_out) == ["aaa-0"]
    assert (left_out["aaa-0"]["service"], left_out["aaa-0"]["other_route"]) == ("zzz",
                                                                                "zzz-0")


def test_a_service_being_uninstalled_yields_its_routes():
    leaving = service("old", {"hosts": ["web.test"]}, created_at=1.0, status="deleting")
    arriving = service("new", {"hosts": ["web.test"]}, created_at=2.0)
    assert list(route_conflicts([leaving, arriving])) == ["old-0"]


def test_a_route_left_out_does_not_keep_a_third_one_out():
    a = service("a", {"hosts": ["x.test"]}, created_at=1.0)
    b = service("b", {"hosts": ["x.test", "y.test"]}, created_at=2.0)
    c = service("c", {"hosts": ["y.test"]}, created_at=3.0)
    assert list(route_conflicts([c, b, a])) == ["b-0"]   # c's y.test is carried
