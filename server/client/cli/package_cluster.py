"""The cluster stages of ``berth package test DIR --cluster URL``.

4. **install** — the cluster must serve the versions DIR holds, unchanged (its options
   schema, resource and tests equal DIR's; otherwise the run would test another
   package); install the previous version (the newest when there is one only) under a
   fresh name, with the version's first ``examples/*.json`` options file (the defaults
   without one), and wait until every instance runs healthy;
5. **smoke** — ``POST /services/NAME/smoke``: the server runs the version's own
   ``tests.smoke`` on every running instance;
6. **upgrade** — to the newest version, wait healthy, smoke again;
7. **uninstall** — always, also after a failure, with its volumes.

Each stage is a :class:`catalog.package_test.StageResult`; a failed stage skips the
ones after it, except uninstall.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from catalog.model import Package
from catalog.package_test import StageResult, example_files, read_example
from server.client.api import BerthAPIError, BerthClient

COMPARED = (("config", "config_schema"), ("resource", "resource"), ("tests", "tests"))


class StageFailed(Exception):
    """A cluster stage failed; ``problems`` say where and why."""

    def __init__(self, problems: list[dict[str, str]]) -> None:
        super().__init__(problems[0]["message"] if problems else "failed")
        self.problems = problems


def _api(what: str, call: Callable[[], Any]) -> Any:
    """Run one client call; an API error fails the stage with its message."""
    try:
        return call()
    except BerthAPIError as exc:
        details = "; ".join(f"{d.get('path')}: {d.get('message')}" for d in exc.details[:5])
        raise StageFailed([{"path": what, "message": f"{exc.message}"
                            f"{' (' + details + ')' if details else ''}"}]) from exc


class ClusterRun:
    """One run of the cluster stages of one package on one Berth."""

    def __init__(self, client: BerthClient, versions: Sequence[tuple[Package, str]], *,
                 timeout: float = 300.0) -> None:
        self.client = client
        self.versions = list(versions)      # (package, folder), oldest first
        self.timeout = timeout
        name = self.versions[-1][0].name
        self.service = f"pkgtest-{name[:40]}-{secrets.token_hex(3)}"

    def stages(self) -> list[StageResult]:
        """install, smoke, upgrade, uninstall (see the module doc)."""
        results = [StageResult("install"), StageResult("smoke"), StageResult("upgrade")]
        installed = False
        try:
            for result, step in zip(results, (self._install, self._smoke, self._upgrade),
                                    strict=True):
                if any(r.problems for r in results):
                    result.skipped = "an earlier stage failed"
                    continue
                installed = True   # from the install on, something may exist
                try:
                    step(result)
                except StageFailed as exc:
                    result.problems.extend(exc.problems)
        finally:
            results.append(self._uninstall() if installed else
                           StageResult("uninstall", skipped="nothing was installed"))
        return results

    # install -------------------------------------------------------------------------
    def _first(self) -> tuple[Package, str]:
        return self.versions[-2] if len(self.versions) > 1 else self.versions[-1]

    def _install(self, result: StageResult) -> None:
        for package, folder in self.versions:
            self._same_as_served(package, folder)
        package, folder = self._first()
        options = _example_options(folder)
        answer = _api("install", lambda: self.client.install(
            package.name, version=package.version, name=self.service, options=options))
        self._finished(answer["deployment"], "install")
        self._healthy("install")
        result.notes.append(f"installed {package.name} {package.version} as "
                            f"{self.service}{_with(folder)}; every instance healthy")

    def _same_as_served(self, package: Package, folder: str) -> None:
        """The cluster's copy of this version must equal DIR's."""
        served = _api("install", lambda: self.client.package_version(package.name,
                                                                     package.version))
        differ = [key for key, attr in COMPARED
                  if (served.get(key) or None) != (getattr(package, attr) or None)]
        if differ:
            raise StageFailed([{"path": folder, "message": f"the cluster serves another "
                                f"{package.name} {package.version} ({', '.join(differ)} "
                                f"differ{'s' if len(differ) == 1 else ''}): publish this "
                                "folder to a test Berth, or serve its repository there "
                                "(BERTH_REPOSITORY_DIRS), and run again"}])

    def _finished(self, deployment: Mapping[str, Any], what: str) -> None:
        done = _api(what, lambda: self.client.wait_for_deployment(
            str(deployment["id"]), timeout=self.timeout))
        if done.get("status") != "succeeded":
            raise StageFailed([{"path": what, "message": f"deployment {done.get('id')} "
                                f"{done.get('status')}: {done.get('error') or ''}".strip()}])

    def _healthy(self, what: str) -> dict[str, Any]:
        """The service once every desired instance runs healthy (bounded wait)."""
        deadline = time.monotonic() + self.timeout
        while True:
            service = _api(what, lambda: self.client.service(self.service))
            if _all_healthy(service):
                return dict(service)
            if time.monotonic() > deadline:
                states = [(i.get("id"), i.get("state"), i.get("health"))
                          for i in service.get("instances_list") or []]
                raise StageFailed([{"path": what, "message": f"not every instance was "
                                    f"healthy after {self.timeout:.0f}s: {states}"}])
            time.sleep(0.5)

    # smoke, upgrade, uninstall ---------------------------------------------------------
    def _smoke(self, result: StageResult, package: Package | None = None) -> None:
        package = package or self._first()[0]
        smoke = (package.tests or {}).get("smoke")
        if not smoke:
            result.skipped = f"{package.name} {package.version} declares no tests.smoke"
            return
        answer = _api("smoke", lambda: self.client.request(
            "POST", f"/services/{self.service}/smoke", json_body={}).json())
        for outcome in answer.get("results") or []:
            line = f"{package.version} {outcome.get('instance')}: {outcome.get('message')}"
            if outcome.get("ok"):
                result.notes.append(f"passed {line}")
            else:
                result.problems.append({"path": f"{self._folder(package)}/package.json"
                                                "#/tests/smoke",
                                        "message": f"failed on {line}"})
        if not answer.get("results"):
            result.problems.append({"path": "smoke", "message": "no running instance"})

    def _folder(self, package: Package) -> str:
        return next(f for p, f in self.versions if p.version == package.version)

    def _upgrade(self, result: StageResult) -> None:
        if len(self.versions) < 2:
            result.skipped = "one version only: nothing to upgrade from"
            return
        old, new = self._first()[0], self.versions[-1][0]
        deployment = _api("upgrade", lambda: self.client.upgrade(self.service,
                                                                 version=new.version))
        self._finished(deployment["deployment"] if "deployment" in deployment
                       else deployment, "upgrade")
        service = self._healthy("upgrade")
        running = (service.get("package") or {}).get("version")
        if running != new.version:
            raise StageFailed([{"path": "upgrade", "message": f"the service runs "
                                f"{running}, not {new.version}, after the upgrade"}])
        result.notes.append(f"upgraded {old.version} → {new.version}; every instance healthy")
        self._smoke(result, new)

    def _uninstall(self) -> StageResult:
        result = StageResult("uninstall")
        try:
            try:
                answer = self.client.uninstall(self.service, delete_data=True)
            except BerthAPIError as exc:
                if exc.status == 404:
                    result.skipped = f"{self.service} was never created"
                    return result
                raise StageFailed([{"path": "uninstall", "message": exc.message}]) from exc
            self._finished(answer["deployment"] if "deployment" in answer else answer,
                           "uninstall")
            result.notes.append(f"uninstalled {self.service} and its volumes")
        except StageFailed as exc:
            result.problems.extend(exc.problems)
        return result


def _example_options(folder: str) -> dict[str, Any]:
    """The first ``examples/*.json`` of a version (empty: the defaults)."""
    for name in example_files(folder):
        options, _problems = read_example(folder, name)
        if options is not None:
            return options
    return {}


def _with(folder: str) -> str:
    names = example_files(folder)
    return f" with {names[0]}" if names else " with the defaults"


def _all_healthy(service: Mapping[str, Any]) -> bool:
    """Every desired instance runs and is healthy (or has no health check)."""
    instances = [i for i in service.get("instances_list") or []
                 if i.get("state") == "running" and i.get("health") in ("healthy", "none")]
    wanted = int(service.get("instances") or 0)
    return wanted > 0 and len(instances) >= wanted and service.get("status") != "deploying"
