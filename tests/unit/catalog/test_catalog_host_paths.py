"""The host-path rule: one folder ``<root>/<name>``, so no mount goes through a link.

The attack: service A mounts ``/srv/berth/a`` read-write and runs ``ln -s / /data/root``;
service B asks for ``/srv/berth/a/root``, and Docker, following the link on the agent,
would hand B the host's ``/``. The rule refuses B from the text alone, whatever B's
mode, because no mount source may lie below a folder that a container can write.
"""

from __future__ import annotations

from typing import Any

import pytest

from catalog import SpecRefused, check_policy, validate_spec
from catalog.spec import check_host_path_settings, host_path_settings_problems, split_host_path


def _refusal(host: str, read_only: bool = False, **settings: Any) -> dict[str, str]:
    """The single problem ``check_policy`` reports for one host-path volume."""
    spec = validate_spec({"image": "x:1", "volumes": [
        {"containerPath": "/ok", "hostPath": "/srv/berth/fine"},
        {"containerPath": "/data", "hostPath": host, "readOnly": read_only}]})
    with pytest.raises(SpecRefused) as info:
        check_policy(spec, **settings)
    assert len(info.value.details) == 1, info.value.details
    return info.value.details[0]


@pytest.mark.parametrize("read_only", [True, False])
@pytest.mark.parametrize("host", ["/srv/berth/a/root", "/srv/berth/a/l1",
                                  "/srv/berth/a/l1/l2/etc"])
def test_a_path_through_another_services_folder_is_refused(host: str, read_only: bool) -> None:
    problem = _refusal(host, read_only)
    assert problem["path"] == "spec/volumes/1/hostPath"
    assert "is not directly inside /srv/berth" in problem["message"]
    assert "link" in problem["message"]


@pytest.mark.parametrize("read_only", [True, False])
def test_an_allowed_root_itself_is_refused(read_only: bool) -> None:
    """Mounting the root would let a container write the folder where every other
    mount source is looked up (``/srv/berth/b`` could become a link to ``/``)."""
    problem = _refusal("/srv/berth", read_only)
    assert problem["path"] == "spec/volumes/1/hostPath"
    assert "allowed root itself" in problem["message"]
    assert "not a plain path" in _refusal("/srv/berth/", read_only)["message"]


@pytest.mark.parametrize(("host", "words"), [
    ("/srv/berth/../berth/a", "'..'"),
    ("/srv/berth/a/..", "'..'"),
    ("/srv/berth//a", "not a plain path"),
    ("/srv/berth/a/", "not a plain path"),
    ("/srv/berth/./a", "not a plain path"),
    ("/srv/berth/a:/etc", "not directly inside"),      # Docker's bind syntax splits on ':'
    ("/srv/berth/-rf", "not directly inside"),
    ("/srv/berth/.hidden", "not directly inside"),
    ("/srv/berthx/a", "outside the allowed host paths"),
])
def test_paths_that_are_not_one_plain_name_are_refused(host: str, words: str) -> None:
    problem = _refusal(host)
    assert problem["path"] == "spec/volumes/1/hostPath"
    assert words in problem["message"]


def test_one_plain_folder_below_a_root_passes_in_either_mode() -> None:
    spec = validate_spec({"image": "x:1", "volumes": [
        {"containerPath": "/a", "hostPath": "/srv/berth/media"},
        {"containerPath": "/b", "hostPath": "/data/cfg_1.d", "readOnly": True}]})
    check_policy(spec, allowed_host_paths=("/srv/berth", "/data/"))


def test_exact_read_only_paths_pass_read_only_and_nothing_below_them() -> None:
    settings = {"readonly_host_paths": ("/proc",)}
    check_policy(validate_spec({"image": "x:1", "volumes": [
        {"containerPath": "/host/proc", "hostPath": "/proc", "readOnly": True}]}), **settings)
    assert "only be mounted read-only" in _refusal("/proc", **settings)["message"]
    assert "outside the allowed" in _refusal("/proc/1/root", True, **settings)["message"]


@pytest.mark.parametrize(("roots", "readonly", "words"), [
    (("/srv/berth", "/srv/berth/a"), (), "nest"),
    (("/srv/berth/a", "/srv/berth"), (), "nest"),
    (("/srv/berth", "/srv/berth/"), (), "nest"),
    (("/srv/berth",), ("/srv",), "nest"),
    (("/srv/berth",), ("/srv/berth/a",), "nest"),
    (("/",), (), "'/' cannot be allowed"),
    (("srv/berth",), (), "not an absolute path"),
    (("/srv/../etc",), (), "'..'"),
    (("/var/lib/docker",), (), "Docker socket"),
])
def test_unsound_settings_are_refused_with_the_reason(roots: tuple[str, ...],
                                                      readonly: tuple[str, ...],
                                                      words: str) -> None:
    problems = host_path_settings_problems(roots, readonly)
    assert problems and words in problems[0]
    with pytest.raises(ValueError, match="nest|cannot|absolute|'..'|Docker"):
        check_host_path_settings(roots, readonly)
    with pytest.raises(ValueError):
        check_policy(validate_spec({"image": "x:1"}), allowed_host_paths=roots,
                     readonly_host_paths=readonly)


def test_split_host_path_names_the_root_and_the_folder() -> None:
    assert split_host_path("/srv/berth/media", ("/data", "/srv/berth/")) == ("/srv/berth",
                                                                             "media")
    assert split_host_path("/srv/berth/a/root", ("/srv/berth",)) is None
    assert split_host_path("/srv/berth", ("/srv/berth",)) is None
