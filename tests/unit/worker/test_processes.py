"""Test-bed processes: a leftover is stopped only while its pid runs the named program."""

from __future__ import annotations

from pathlib import Path

from worker.testbed import processes as proc


def test_a_pidfile_stops_its_program_but_not_a_stranger(tmp_path: Path) -> None:
    sleeper = proc.spawn(["sleep", "60"], tmp_path / "sleep.log")
    try:
        proc.write_pidfile(tmp_path / "other.pid", sleeper, "redis-server")
        proc.stop_pidfile(tmp_path / "other.pid")
        assert proc.alive(sleeper) and not (tmp_path / "other.pid").exists()
        proc.write_pidfile(tmp_path / "mine.pid", sleeper, "sleep")
        proc.stop_pidfile(tmp_path / "mine.pid", grace=5)
        assert not proc.alive(sleeper)
    finally:
        proc.kill(sleeper)


def test_a_stale_or_broken_pidfile_is_removed(tmp_path: Path) -> None:
    (tmp_path / "broken.pid").write_text("not a pid")
    proc.stop_pidfile(tmp_path / "broken.pid")
    assert not (tmp_path / "broken.pid").exists()


def test_wait_for_names_the_log_when_a_process_dies(tmp_path: Path) -> None:
    pid = proc.spawn(["sh", "-c", "echo boom; exit 3"], tmp_path / "x.log")
    try:
        proc.wait_for(lambda: False, what="x", pid=pid, log=tmp_path / "x.log", timeout=10)
    except proc.TestbedError as exc:
        assert "x exited" in exc.message and "boom" in exc.message
    else:
        raise AssertionError("wait_for did not fail")
