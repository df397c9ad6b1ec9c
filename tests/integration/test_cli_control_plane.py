"""The `skiff` CLI against a real 3-master control plane (no workers, no balancer)."""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from tests.integration.cluster import REPO, Cluster

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def cluster(module_cluster_factory: Callable[..., Cluster]) -> Cluster:
    return module_cluster_factory(masters=3, workers=0, lb=False)


def cm_manifest(name: str, labels: dict[str, str] | None = None, **meta: str) -> str:
    return yaml.safe_dump(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": name, "labels": labels or {}, **meta},
            "data": {"k": "v"},
        }
    )


def one_line_error(out: object) -> str:
    assert out.returncode == 1, (out.returncode, out.stdout, out.stderr)  # type: ignore[attr-defined]
    err: str = out.stderr  # type: ignore[attr-defined]
    assert err.count("\n") == 1, err
    return err.strip()


def test_cluster_status_shows_one_leader_and_equal_digests(cluster: Cluster) -> None:
    def converged() -> list[list[str]] | None:
        out = cluster.skiff("cluster", "status", check=True)
        rows = [line.split() for line in out.stdout.splitlines()[1:] if line.strip()]
        digests = {r[7] for r in rows}
        applied = {r[5] for r in rows}
        roles = sorted(r[2] for r in rows)
        ok = (
            len(rows) == 3
            and roles == ["follower", "follower", "leader"]
            and len(digests) == 1
            and "-" not in digests  # "-": not computed (that master is catching up)
            and len(applied) == 1
        )
        return rows if ok else None

    rows = cluster.wait_for(converged, "3 masters, one leader, equal digests")
    assert rows is not None  # wait_for returns only a truthy value
    assert {r[0] for r in rows} == {"m1", "m2", "m3"}
    assert cluster.skiff("cluster-info", check=True).stdout.startswith("Skiff control plane is running at")


def test_configmap_apply_get_describe_delete(cluster: Cluster, tmp_path: Path) -> None:
    f = tmp_path / "cm.yaml"
    f.write_text(cm_manifest("cli-cm", {"app": "cli"}))
    assert cluster.skiff("apply", "-f", str(f), check=True).stdout == "configmap/cli-cm created\n"
    assert cluster.skiff("apply", "-f", str(f), check=True).stdout == "configmap/cli-cm unchanged\n"
    f.write_text(cm_manifest("cli-cm", {"app": "cli", "v": "2"}))
    assert cluster.skiff("apply", "-f", str(f), check=True).stdout == "configmap/cli-cm configured\n"

    table = cluster.skiff("get", "cm", check=True).stdout.splitlines()
    assert table[0].split() == ["NAME", "DATA", "AGE"]
    assert any(line.split()[:2] == ["cli-cm", "1"] for line in table[1:])
    got = yaml.safe_load(cluster.skiff("get", "configmap", "cli-cm", "-o", "yaml", check=True).stdout)
    assert got["metadata"]["labels"] == {"app": "cli", "v": "2"} and got["data"] == {"k": "v"}
    assert (
        json.loads(cluster.skiff("get", "cm/cli-cm", "-o", "json", check=True).stdout)["kind"] == "ConfigMap"
    )
    assert cluster.skiff("get", "cm", "cli-cm", "-o", "name", check=True).stdout == "configmap/cli-cm\n"
    described = cluster.skiff("describe", "cm", "cli-cm", check=True).stdout
    assert "Name:" in described and "cli-cm" in described and "app=cli" in described

    assert cluster.skiff("delete", "cm", "cli-cm", check=True).stdout == 'configmap "cli-cm" deleted\n'
    err = one_line_error(cluster.skiff("get", "cm", "cli-cm"))
    assert err == 'Error from server (NotFound): configmaps "cli-cm" not found'


def test_deployment_lifecycle(cluster: Cluster) -> None:
    demo = str(REPO / "examples" / "demo-deployment.yaml")
    assert cluster.skiff("apply", "-f", demo, check=True).stdout == "deployment.apps/demo created\n"
    lines = cluster.skiff("get", "deployments", check=True).stdout.splitlines()
    assert lines[0].split() == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert lines[1].split()[:2] == ["demo", "0/1"]
    wide = cluster.skiff("get", "deploy", "demo", "-o", "wide", check=True).stdout
    assert "jweissig/alpine-k8s-pod-lb-demo" in wide and "app=demo" in wide

    assert (
        cluster.skiff("scale", "deployment/demo", "--replicas=2", check=True).stdout
        == "deployment.apps/demo scaled\n"
    )
    spec = json.loads(cluster.skiff("get", "deploy", "demo", "-o", "json", check=True).stdout)["spec"]
    assert spec["replicas"] == 2

    def described() -> str | None:
        text = cluster.skiff("describe", "deployment", "demo", check=True).stdout
        return text if "2 desired" in text and "NewReplicaSet:" in text else None

    text = cluster.wait_for(described, "describe shows the scaled deployment")
    assert text is not None
    assert "StrategyType:           RollingUpdate" in text
    cluster.wait_for(lambda: "demo-" in cluster.skiff("get", "rs", "-l", "app=demo").stdout, "a replicaset")
    assert cluster.skiff("rollout", "history", "deploy/demo", check=True).stdout.startswith(
        "deployment.apps/demo\nREVISION"
    )

    assert (
        cluster.skiff("delete", "deployment", "demo", check=True).stdout == 'deployment.apps "demo" deleted\n'
    )


def test_label_selector(cluster: Cluster) -> None:
    manifests = cm_manifest("sel-a", {"tier": "web"}) + "---\n" + cm_manifest("sel-b", {"tier": "db"})
    out = cluster.skiff("apply", "-f", "-", input=manifests, check=True).stdout
    assert out == "configmap/sel-a created\nconfigmap/sel-b created\n"
    names = cluster.skiff("get", "cm", "-l", "tier=web", "-o", "name", check=True).stdout.split()
    assert names == ["configmap/sel-a"]
    names = cluster.skiff(
        "get", "cm", "-l", "tier in (web,db)", "--no-headers", check=True
    ).stdout.splitlines()
    assert [n.split()[0] for n in names] == ["sel-a", "sel-b"]
    cluster.skiff("delete", "cm", "-l", "tier", check=True)


def test_watch_prints_a_change(cluster: Cluster) -> None:
    cluster.skiff("apply", "-f", "-", input=cm_manifest("watched"), check=True)
    proc = cluster.popen_skiff("get", "cm", "watched", "-w", "--show-labels")
    lines: queue.Queue[str] = queue.Queue()
    stdout = proc.stdout
    assert stdout is not None  # popen_skiff pipes it

    def pump() -> None:
        for x in stdout:
            lines.put(x)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    seen: list[str] = []

    def saw(text: str) -> bool:
        try:
            while True:
                seen.append(lines.get_nowait())
        except queue.Empty:
            pass
        return any(text in line for line in seen)

    try:
        cluster.wait_for(lambda: saw("watched"), "the initial row")
        cluster.skiff("label", "cm", "watched", "color=blue", check=True)
        cluster.wait_for(lambda: saw("color=blue"), f"a row with the new label; seen {seen}")
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert seen[0].split()[0] == "NAME"


def test_unreachable_master_is_one_line_and_changes_nothing(cluster: Cluster) -> None:
    out = cluster.skiff(
        "--server", "127.0.0.1:1", "--request-timeout", "2s", "apply", "-f", "-", input=cm_manifest("never")
    )
    assert one_line_error(out).startswith("error: cannot reach any master (127.0.0.1:1): ")
    assert cluster.skiff("get", "cm", "never").returncode == 1


@pytest.mark.parametrize("validate", ["true", "false"], ids=["client-side", "server-side"])
def test_unknown_field_names_it(cluster: Cluster, validate: str) -> None:
    bad = str(REPO / "examples" / "bad-manifest.yaml")
    err = one_line_error(cluster.skiff("apply", "-f", bad, f"--validate={validate}"))
    assert err.startswith(f'error: error validating "{bad}": ') and '"replica"' in err and "spec" in err
    assert cluster.skiff("get", "deploy", "bad-demo").returncode == 1


def test_viewer_cannot_write(cluster: Cluster) -> None:
    out = cluster.skiff("apply", "-f", "-", input=cm_manifest("viewer-cm"), token=cluster.token("viewer"))
    assert one_line_error(out).startswith("Error from server (Forbidden): ")
    assert cluster.skiff("get", "cm", token=cluster.token("viewer")).returncode == 0


@pytest.mark.parametrize("token", ["", "not-a-token"], ids=["none", "invalid"])
def test_bad_token_is_unauthenticated(cluster: Cluster, token: str) -> None:
    err = one_line_error(cluster.skiff("get", "pods", token=token))
    assert err.startswith("error: you must be logged in to the server (Unauthenticated): ")


def test_stale_resource_version_conflicts(cluster: Cluster) -> None:
    cluster.skiff("apply", "-f", "-", input=cm_manifest("cas"), check=True)
    old = json.loads(cluster.skiff("get", "cm", "cas", "-o", "json", check=True).stdout)
    cluster.skiff("label", "cm", "cas", "bumped=yes", check=True)
    old["data"] = {"k": "changed"}
    err = one_line_error(cluster.skiff("apply", "-f", "-", input=json.dumps(old)))
    assert err.startswith("Error from server (Conflict): ")
    assert json.loads(cluster.skiff("get", "cm", "cas", "-o", "json", check=True).stdout)["data"] == {
        "k": "v"
    }


def test_kill_and_restart_a_master(cluster: Cluster) -> None:
    def leader_and_follower() -> tuple[str, str] | None:
        rows = [r.split() for r in cluster.skiff("cluster", "status").stdout.splitlines()[1:]]
        leaders = [r[0] for r in rows if r[2] == "leader"]
        followers = [r[0] for r in rows if r[2] == "follower"]
        return (leaders[0], followers[0]) if leaders and followers else None

    found = cluster.wait_for(leader_and_follower, "a leader and a follower")
    assert found is not None
    _, follower = found
    cluster.kill(follower)
    cluster.wait_for(
        lambda: "unreachable" in cluster.skiff("cluster", "status").stdout, "the killed master unreachable"
    )
    assert cluster.skiff("apply", "-f", "-", input=cm_manifest("during-kill"), check=True).returncode == 0
    cluster.start(follower)

    def back() -> bool:
        rows = [r.split() for r in cluster.skiff("cluster", "status").stdout.splitlines()[1:]]
        return len(rows) == 3 and "unreachable" not in {r[2] for r in rows} and len({r[7] for r in rows}) == 1

    cluster.wait_for(back, f"{follower} back with an equal digest", timeout=60)
