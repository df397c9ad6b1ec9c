"""The audit log: one line per write, key=value, rotated by size."""

from __future__ import annotations

from pathlib import Path

from orchestrator.audit import AuditLog, line
from orchestrator.auth import Identity


def test_a_line_names_who_did_what_to_which_object() -> None:
    text = line(1_800_000_000.25, "rest", Identity("admin"), "create", "Deployment", "default", "demo", 201)
    assert text == (
        "2027-01-15T08:00:00.250Z api=rest role=admin verb=create kind=Deployment ns=default name=demo result=201"
    )


def test_a_node_identity_and_odd_values_stay_on_one_line() -> None:
    text = line(0.0, "grpc", Identity("node", "worker-1"), "patch scale", "Pod", "", "a\nb c", "OK")
    assert "\n" not in text
    assert " node=worker-1 " in text and " verb='patch scale' " in text and " ns='' " in text
    assert " name='a\\\\nb c' " in text


def test_rotates_by_size(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    audit = AuditLog(path, max_bytes=500, backups=2)
    for i in range(40):
        audit.record("rest", Identity("admin"), "create", "ConfigMap", "default", f"c{i}", 201)
    audit.close()
    assert path.exists() and (tmp_path / "audit.log.1").exists() and (tmp_path / "audit.log.2").exists()
    assert not (tmp_path / "audit.log.3").exists()
    assert all(p.stat().st_size <= 600 for p in tmp_path.glob("audit.log*"))
    assert "name=c39 " in path.read_text()
