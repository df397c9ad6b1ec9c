"""The real kubectl (the installed 1.32) and the official Python client drive a `skiff up` cluster
through the kubeconfig `skiff up` wrote: TLS to the balancer's API port, bearer token, the masters
behind it. Each test is one part of a user's session; the module shares one cluster."""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import ssl
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.integration.cluster import REPO, Cluster

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("kubectl") is None, reason="needs kubectl (make tools installs it)"),
]

WORKERS = 3
IMAGE = "jweissig/alpine-k8s-pod-lb-demo"


@pytest.fixture(scope="module")
def cluster(module_cluster_factory: Any) -> Cluster:
    return module_cluster_factory(masters=3, workers=WORKERS, lb=True)


def kubectl(
    c: Cluster, *args: str, timeout: float = 40.0, kubeconfig: Path | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """kubectl with the cluster's kubeconfig, a private cache dir and a bounded run time."""
    env = {
        **os.environ,
        "KUBECONFIG": str(kubeconfig or c.state_dir / "kubeconfig"),
        "HOME": str(c.state_dir / "home"),
    }
    out = subprocess.run(
        ["timeout", str(int(timeout)), "kubectl", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=timeout + 10,
    )
    if check and out.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)} exited {out.returncode}: {out.stderr}{out.stdout}")
    return out


def popen_kubectl(c: Cluster, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "KUBECONFIG": str(c.state_dir / "kubeconfig"), "HOME": str(c.state_dir / "home")}
    return subprocess.Popen(
        ["timeout", "120", "kubectl", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=REPO,
    )


def rows(text: str) -> list[list[str]]:
    return [re.split(r"\s{2,}", line.strip()) for line in text.strip().splitlines()[1:]]


def until(probe: Any, what: str, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}")


def pod_names(c: Cluster, selector: str = "app=demo") -> list[str]:
    out = kubectl(c, "get", "pods", "-l", selector, "-o", "json").stdout
    return sorted(
        p["metadata"]["name"] for p in json.loads(out)["items"] if not p["metadata"].get("deletionTimestamp")
    )


def api_server(c: Cluster) -> tuple[str, int, ssl.SSLContext]:
    config = json.loads((c.state_dir / "config.json").read_text())
    host, port = config["kubeApiServer"].removeprefix("https://").rsplit(":", 1)
    ctx = ssl.create_default_context(cafile=str(c.state_dir / "pki" / "ca.crt"))
    return host, int(port), ctx


def request(
    c: Cluster,
    method: str,
    path: str,
    body: bytes | None = None,
    *,
    token: str | None = "admin",
    **headers: str,
) -> tuple[int, dict[str, Any], dict[str, str]]:
    host, port, ctx = api_server(c)
    conn = http.client.HTTPSConnection(host, port, context=ctx, timeout=20)
    hdrs = {"Content-Type": "application/json", **{k.replace("_", "-"): v for k, v in headers.items()}}
    if token is not None:
        hdrs["Authorization"] = f"Bearer {c.token(token) if token in ('admin', 'viewer', 'node') else token}"
    conn.request(method, path, body=body, headers=hdrs)
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    doc = (
        json.loads(data) if data and resp.getheader("Content-Type", "").startswith("application/json") else {}
    )
    return resp.status, doc, dict(resp.getheaders())


# ---------------------------------------------------------------- the seed story, with kubectl


def test_version_discovery_and_kubeconfig(cluster: Cluster) -> None:
    version = json.loads(kubectl(cluster, "version", "-o", "json").stdout)
    assert version["serverVersion"]["major"] == "1" and version["serverVersion"]["minor"] == "32"
    resources = kubectl(cluster, "api-resources").stdout
    for name, short in [
        ("pods", "po"),
        ("deployments", "deploy"),
        ("ingresses", "ing"),
        ("namespaces", "ns"),
    ]:
        assert re.search(rf"(?m)^{name}\s+{short}\s", resources), resources
    assert kubectl(cluster, "config", "current-context").stdout.strip() == "skiff"


def test_the_seed_story_through_kubectl(cluster: Cluster) -> None:
    c = cluster
    out = kubectl(c, "create", "deployment", "demo", f"--image={IMAGE}", "--port=5005").stdout
    assert out.strip() == "deployment.apps/demo created"  # a protobuf body, decoded
    nodes = rows(kubectl(c, "get", "nodes").stdout)
    assert sorted(n[0] for n in nodes) == [f"worker-{i}" for i in range(1, WORKERS + 1)]
    assert all(n[1] == "Ready" for n in nodes), nodes
    assert (
        "service/demo exposed"
        in kubectl(c, "expose", "deployment", "demo", "--target-port=5005", "--type=NodePort").stdout
    )
    (svc,) = rows(kubectl(c, "get", "service", "demo").stdout)
    assert svc[1] == "NodePort" and re.fullmatch(r"5005:3\d{4}/TCP", svc[4]), svc
    applied = kubectl(c, "apply", "-f", "examples/basic-ingress.yaml").stdout
    assert applied.strip() == "ingress.extensions/basic-ingress created"
    assert (
        kubectl(c, "scale", "--replicas=10", "deployment/demo").stdout.strip()
        == "deployment.apps/demo scaled"
    )
    kubectl(c, "wait", "--for=condition=Available", "deployment/demo", "--timeout=90s", timeout=100)
    until(lambda: len(pod_names(c)) == 10, "10 pods")
    kubectl(c, "wait", "--for=condition=Ready", "pods", "-l", "app=demo", "--timeout=90s", timeout=100)
    (ing,) = rows(kubectl(c, "get", "ingress").stdout)
    address = ing[3]
    assert re.fullmatch(r"127\.[\d.]+:\d+", address), ing
    host, port = address.rsplit(":", 1)
    seen: set[str] = set()
    for _ in range(100):
        conn = http.client.HTTPConnection(host, int(port), timeout=5)
        conn.request("GET", "/", headers={"Connection": "close"})
        resp = conn.getresponse()
        resp.read()
        assert resp.status == 200
        seen.add(resp.getheader("X-Hostname", ""))
        conn.close()
    assert seen == set(pod_names(c)), (seen, pod_names(c))


def test_get_output_forms(cluster: Cluster) -> None:
    c = cluster
    everywhere = rows(kubectl(c, "get", "pods", "-A").stdout)
    assert everywhere and all(r[0] == "default" for r in everywhere)
    names = kubectl(
        c, "get", "pods", "-l", "app=demo", "-o", "jsonpath={.items[*].metadata.name}"
    ).stdout.split()
    assert sorted(names) == pod_names(c)
    manifest = kubectl(c, "get", "deployment", "demo", "-o", "yaml").stdout
    assert "kind: Deployment" in manifest and "replicas: 10" in manifest
    wide = kubectl(c, "get", "pods", "-o", "wide").stdout.splitlines()[0].split()
    assert wide[:5] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"] and "NODE" in wide
    everything = kubectl(c, "get", "all").stdout
    for kind in ("pod/demo-", "service/demo", "deployment.apps/demo", "replicaset.apps/demo-"):
        assert kind in everything, everything


def test_get_watch_sees_a_change_within_a_second(cluster: Cluster) -> None:
    c = cluster
    pod = pod_names(c)[0]
    proc = popen_kubectl(c, "get", "pods", "-w", "--output-watch-events")
    lines: list[tuple[float, str]] = []

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append((time.monotonic(), line))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        until(lambda: len(lines) >= 10, "the watch's initial rows", 20)
        time.sleep(0.5)
        before = len(lines)
        kubectl(c, "label", "pod", pod, "watched=yes")
        changed = time.monotonic()  # the label is stored once kubectl returns
        arrived = until(
            lambda: next((t for t, line in lines[before:] if pod in line and "MODIFIED" in line), None),
            "the watch event",
            10,
        )
        assert arrived - changed < 1.0, arrived - changed
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_describe_each_kind(cluster: Cluster) -> None:
    c = cluster
    pod = pod_names(c)[0]
    for kind, name in [
        ("pod", pod),
        ("deployment", "demo"),
        ("node", "worker-1"),
        ("service", "demo"),
        ("ingress", "basic-ingress"),
    ]:
        out = kubectl(c, "describe", kind, name).stdout
        assert re.search(rf"(?m)^Name:\s+{re.escape(name)}$", out), out
        if kind == "service":  # from the EndpointSlices derived from the Endpoints
            assert re.search(r"(?m)^Endpoints:\s+127\.[\d.]+:\d+", out), out


def test_logs_and_follow(cluster: Cluster) -> None:
    c = cluster
    pod = pod_names(c)[0]
    assert "listening on" in kubectl(c, "logs", pod).stdout
    proc = popen_kubectl(c, "logs", "-f", pod)
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert "listening on" in first, first
        assert proc.poll() is None  # still following
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_rollout_verbs(cluster: Cluster) -> None:
    c = cluster
    container = "alpine-k8s-pod-lb-demo"
    kubectl(c, "set", "image", "deployment/demo", f"{container}={IMAGE}:v2")
    kubectl(c, "rollout", "status", "deployment/demo", "--timeout=120s", timeout=130)
    history = kubectl(c, "rollout", "history", "deployment/demo").stdout
    assert re.search(r"(?m)^1\s", history) and re.search(r"(?m)^2\s", history), history
    assert "rolled back" in kubectl(c, "rollout", "undo", "deployment/demo").stdout
    kubectl(c, "rollout", "status", "deployment/demo", "--timeout=120s", timeout=130)
    image = kubectl(
        c, "get", "deployment", "demo", "-o", "jsonpath={.spec.template.spec.containers[0].image}"
    ).stdout
    assert image == IMAGE
    assert "restarted" in kubectl(c, "rollout", "restart", "deployment/demo").stdout
    kubectl(c, "rollout", "status", "deployment/demo", "--timeout=120s", timeout=130)


def test_label_annotate_cordon_drain(cluster: Cluster) -> None:
    c = cluster
    kubectl(c, "label", "deployment", "demo", "tier=web")
    kubectl(c, "annotate", "deployment", "demo", "note=hello")
    got = kubectl(
        c, "get", "deployment", "demo", "-o", "jsonpath={.metadata.labels.tier}/{.metadata.annotations.note}"
    )
    assert got.stdout == "web/hello"
    assert kubectl(c, "cordon", "worker-1").stdout.strip() == "node/worker-1 cordoned"
    assert "SchedulingDisabled" in kubectl(c, "get", "node", "worker-1").stdout
    assert kubectl(c, "uncordon", "worker-1").stdout.strip() == "node/worker-1 uncordoned"
    kubectl(c, "drain", "worker-2", "--ignore-daemonsets", "--timeout=90s", timeout=100)
    wide = rows(kubectl(c, "get", "pods", "-o", "wide").stdout)
    assert all(r[6] != "worker-2" for r in wide if r[2] == "Running"), wide
    kubectl(c, "uncordon", "worker-2")
    kubectl(c, "wait", "--for=condition=Available", "deployment/demo", "--timeout=90s", timeout=100)


def test_delete_by_file_and_by_label(cluster: Cluster, tmp_path: Path) -> None:
    c = cluster
    kubectl(c, "apply", "-f", "examples/configmap.yaml")
    assert kubectl(c, "get", "configmap", "demo-config").returncode == 0
    assert 'configmap "demo-config" deleted' in kubectl(c, "delete", "-f", "examples/configmap.yaml").stdout
    assert kubectl(c, "get", "configmap", "demo-config", check=False).returncode != 0
    for name in ("one", "two"):
        kubectl(c, "create", "configmap", name, "--from-literal=a=1")
        kubectl(c, "label", "configmap", name, "batch=old")
    deleted = kubectl(c, "delete", "configmap", "-l", "batch=old").stdout
    assert 'configmap "one" deleted' in deleted and 'configmap "two" deleted' in deleted
    assert "No resources found" in kubectl(c, "get", "configmap", "-l", "batch=old").stderr


def test_namespaces(cluster: Cluster) -> None:
    c = cluster
    assert kubectl(c, "create", "namespace", "team-a").stdout.strip() == "namespace/team-a created"
    kubectl(c, "create", "configmap", "settings", "--from-literal=a=1", "-n", "team-a")
    assert [r[0] for r in rows(kubectl(c, "get", "configmaps", "-n", "team-a").stdout)] == ["settings"]
    assert "team-a" in kubectl(c, "get", "namespaces").stdout
    kubectl(c, "delete", "namespace", "team-a")
    assert "No resources found" in kubectl(c, "get", "configmaps", "-n", "team-a").stderr


def test_auth_can_i_by_role(cluster: Cluster, tmp_path: Path) -> None:
    c = cluster
    assert kubectl(c, "auth", "can-i", "create", "deployments").stdout.strip() == "yes"
    viewer = tmp_path / "viewer.kubeconfig"
    viewer.write_text(
        c.skiff("kubeconfig", "--role", "viewer", "--state-dir", str(c.state_dir), check=True).stdout
    )
    viewer.chmod(0o600)
    no = kubectl(c, "auth", "can-i", "create", "deployments", kubeconfig=viewer, check=False)
    assert no.returncode == 1 and no.stdout.strip() == "no"
    assert kubectl(c, "auth", "can-i", "list", "pods", kubeconfig=viewer).stdout.strip() == "yes"
    refused = kubectl(c, "delete", "deployment", "demo", kubeconfig=viewer, check=False)
    assert refused.returncode != 0 and "Forbidden" in refused.stderr, refused.stderr


def test_apply_kustomization_and_server_side(cluster: Cluster, tmp_path: Path) -> None:
    c = cluster
    examples = ("configmap.yaml", "demo-deployment.yaml", "demo-service.yaml")
    for name in examples:
        shutil.copy(REPO / "examples" / name, tmp_path / name)
    (tmp_path / "kustomization.yaml").write_text(
        "resources:\n"
        + "".join(f"  - {n}\n" for n in examples)
        + "namePrefix: kz-\ncommonLabels:\n  owner: kustomize\n"
    )
    applied = kubectl(c, "apply", "-k", str(tmp_path)).stdout
    for made in (
        "configmap/kz-demo-config created",
        "deployment.apps/kz-demo created",
        "service/kz-demo created",
    ):
        assert made in applied, applied
    assert (
        kubectl(c, "get", "configmap", "kz-demo-config", "-o", "jsonpath={.metadata.labels.owner}").stdout
        == "kustomize"
    )
    ssa = tmp_path / "ssa.yaml"
    ssa.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ssa\ndata:\n  k: v\n")
    assert "serverside-applied" in kubectl(c, "apply", "--server-side", "-f", str(ssa)).stdout
    kubectl(c, "delete", "-k", str(tmp_path))


# ---------------------------------------------------------------- the official Python client


def test_the_python_client(cluster: Cluster) -> None:
    from kubernetes import client, config, watch

    c = cluster
    api_client = config.new_client_from_config(config_file=str(c.state_dir / "kubeconfig"))
    # The client's models are Optional everywhere; this test reads what it just wrote.
    apps: Any = client.AppsV1Api(api_client)
    core: Any = client.CoreV1Api(api_client)
    body = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "pyclient", "labels": {"app": "pyclient"}},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "pyclient"}},
            "template": {
                "metadata": {"labels": {"app": "pyclient"}},
                "spec": {"containers": [{"name": "web", "image": IMAGE, "ports": [{"containerPort": 5005}]}]},
            },
        },
    }
    created = apps.create_namespaced_deployment("default", body)
    assert created.metadata.name == "pyclient" and created.metadata.uid
    apps.patch_namespaced_deployment_scale("pyclient", "default", {"spec": {"replicas": 2}})
    assert apps.read_namespaced_deployment_scale("pyclient", "default").spec.replicas == 2
    w = watch.Watch()
    ready: set[str] = set()
    for event in w.stream(
        core.list_namespaced_pod, "default", label_selector="app=pyclient", timeout_seconds=60
    ):
        pod = event["object"]
        if pod.status and any(cs.ready for cs in pod.status.container_statuses or []):
            ready.add(pod.metadata.name)
        if len(ready) == 2:
            w.stop()
    pods = core.list_namespaced_pod("default", label_selector="app=pyclient").items
    assert {p.metadata.name for p in pods} >= ready and len(ready) == 2
    log = core.read_namespaced_pod_log(sorted(ready)[0], "default")
    assert "listening on" in log
    apps.delete_namespaced_deployment("pyclient", "default")


# ---------------------------------------------------------------- bad input: a Status, state untouched


def _configmaps(c: Cluster) -> list[str]:
    code, doc, _ = request(c, "GET", "/api/v1/namespaces/default/configmaps")
    assert code == 200
    return sorted(i["metadata"]["name"] for i in doc["items"])


@pytest.mark.parametrize(
    ("what", "method", "path", "body", "token", "content_type", "code", "reason", "says"),
    [
        (
            "malformed JSON",
            "POST",
            "/api/v1/namespaces/default/configmaps",
            b'{"kind": "Conf',
            "admin",
            "application/json",
            400,
            "BadRequest",
            "JSON",
        ),
        (
            "malformed YAML",
            "POST",
            "/api/v1/namespaces/default/configmaps",
            b"kind: [",
            "admin",
            "application/yaml",
            400,
            "BadRequest",
            "YAML",
        ),
        (
            "an unknown field",
            "POST",
            "/api/v1/namespaces/default/configmaps",
            b'{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"},"dta":{}}',
            "admin",
            "application/json",
            422,
            "Invalid",
            "dta",
        ),
        (
            "a wrong type",
            "POST",
            "/apis/apps/v1/namespaces/default/deployments",
            b'{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"x"},"spec":{"replicas":"three"}}',
            "admin",
            "application/json",
            422,
            "Invalid",
            "replicas",
        ),
        (
            "a body over 3 MiB",
            "POST",
            "/api/v1/namespaces/default/configmaps",
            b'{"data":{"a":"' + b"x" * (3 * 1024 * 1024) + b'"}}',
            "admin",
            "application/json",
            413,
            "RequestEntityTooLarge",
            "too large",
        ),
        (
            "an unknown resource",
            "GET",
            "/api/v1/namespaces/default/widgets",
            None,
            "admin",
            "application/json",
            404,
            "NotFound",
            "could not find",
        ),
        (
            "no token",
            "POST",
            "/api/v1/namespaces/default/configmaps",
            b"{}",
            None,
            "application/json",
            401,
            "Unauthorized",
            "token",
        ),
        (
            "a wrong token",
            "POST",
            "/api/v1/namespaces/default/configmaps",
            b"{}",
            "not-a-token",
            "application/json",
            401,
            "Unauthorized",
            "token",
        ),
        (
            "a viewer's write",
            "POST",
            "/api/v1/namespaces/default/configmaps",
            b'{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"v"}}',
            "viewer",
            "application/json",
            403,
            "Forbidden",
            "viewer",
        ),
        (
            "an unsupported media type",
            "POST",
            "/api/v1/namespaces/default/configmaps",
            b"<x/>",
            "admin",
            "application/xml",
            415,
            "UnsupportedMediaType",
            "media types",
        ),
    ],
    ids=lambda v: (
        v if isinstance(v, str) and " " in v or isinstance(v, str) and v.isalpha() and v.islower() else None
    ),
)
def test_bad_input_is_answered_with_a_status(
    cluster: Cluster, what: str, method: str, path: str, body: bytes | None, token: str | None,
    content_type: str, code: int, reason: str, says: str,
) -> None:  # fmt: skip
    before = _configmaps(cluster)
    got, doc, _ = request(cluster, method, path, body, token=token, Content_Type=content_type)
    assert got == code, (what, doc)
    assert doc.get("kind") == "Status" and doc.get("reason") == reason and doc.get("code") == code, doc
    assert says.lower() in doc.get("message", "").lower(), doc
    assert "\n" not in doc["message"]
    assert _configmaps(cluster) == before


def test_a_bad_manifest_through_kubectl_names_the_field(cluster: Cluster) -> None:
    out = kubectl(cluster, "apply", "-f", "examples/bad-manifest.yaml", check=False)
    assert out.returncode != 0 and "replica" in out.stderr, out.stderr


# ---------------------------------------------------------------- a master killed


def test_killing_a_master_leaves_kubectl_and_watches_working(cluster: Cluster) -> None:
    from kubernetes import client, config, watch

    c = cluster
    api_client = config.new_client_from_config(config_file=str(c.state_dir / "kubeconfig"))
    core: Any = client.CoreV1Api(api_client)
    listed = core.list_namespaced_config_map("default")
    assert listed.metadata is not None
    rv = str(listed.metadata.resource_version)
    seen: list[tuple[str, str, str]] = []
    written: list[str] = []

    def writer() -> None:
        for i in range(30):
            name = f"failover-{i}"

            def landed(name: str = name) -> bool:
                made = kubectl(c, "create", "configmap", name, "--from-literal=i=1", check=False, timeout=10)
                # an answer lost with its master may still have been applied: then it exists
                return (
                    made.returncode == 0 or kubectl(c, "get", "configmap", name, check=False).returncode == 0
                )

            until(landed, f"configmap {name} written", 60)
            written.append(name)

    def watcher(resume_from: str) -> str:
        """Watch from `resume_from` until every written name is seen; returns the last RV. Resumes
        on error (the master it streamed from died) from the last RV, as an informer does."""
        last = resume_from
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            w = watch.Watch()
            try:
                for event in w.stream(
                    core.list_namespaced_config_map, "default", resource_version=last, timeout_seconds=20
                ):
                    obj = event["object"]
                    last = obj.metadata.resource_version
                    if obj.metadata.name.startswith("failover-"):
                        seen.append((event["type"], obj.metadata.name, last))
                    if len({n for t, n, _ in seen if t == "ADDED"}) == 30:
                        return last
            except Exception:  # the connection died with its master: resume from the last RV
                time.sleep(0.2)
        return last

    result: dict[str, str] = {}
    t_watch = threading.Thread(target=lambda: result.update(last=watcher(rv)), daemon=True)
    t_write = threading.Thread(target=writer, daemon=True)
    t_watch.start()
    t_write.start()
    until(lambda: len(written) >= 10, "10 writes before the kill", 60)
    leader = next(r[0] for r in rows(c.skiff("cluster", "status", check=True).stdout) if "leader" in r)
    c.kill(leader)
    killed = time.monotonic()
    until(
        lambda: kubectl(c, "get", "nodes", check=False, timeout=5).returncode == 0,
        "kubectl after the kill",
        10,
    )
    assert time.monotonic() - killed < 2.0 + 1.0  # kubectl's own start counted too
    t_write.join(timeout=150)
    t_watch.join(timeout=150)
    c.start(leader)
    added = [n for t, n, _ in seen if t == "ADDED"]
    assert sorted(added) == sorted(f"failover-{i}" for i in range(30)), added
    assert len(added) == len(set(added)), "an event was seen twice"
    revisions = [int(r) for _, _, r in seen]
    assert revisions == sorted(revisions), "events out of order"


# ---------------------------------------------------------------- REST semantics a client library relies on


def test_rest_resource_versions_paging_watch_and_verbs(cluster: Cluster) -> None:
    c = cluster
    cms = "/api/v1/namespaces/default/configmaps"

    def cm(name: str, **extra: Any) -> bytes:
        doc = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": name, "labels": {"paging": "yes"}},
        }
        return json.dumps({**doc, **extra}).encode()

    # A stale resourceVersion on update is a 409 Conflict.
    code, first, _ = request(c, "POST", cms, cm("rv-test", data={"v": "1"}))
    assert code == 201
    code, second, _ = request(c, "PUT", f"{cms}/rv-test", cm("rv-test", data={"v": "2"}))
    assert code == 200 and second["metadata"]["resourceVersion"] != first["metadata"]["resourceVersion"]
    stale = {**first, "data": {"v": "3"}}
    code, doc, _ = request(c, "PUT", f"{cms}/rv-test", json.dumps(stale).encode())
    assert (code, doc["reason"]) == (409, "Conflict"), doc
    assert request(c, "GET", f"{cms}/rv-test")[1]["data"] == {"v": "2"}

    # fieldValidation=Warn drops an unknown field and says so in a Warning header.
    code, doc, headers = request(c, "POST", f"{cms}?fieldValidation=Warn", cm("warned", dta={"a": "1"}))
    assert code == 201 and "dta" not in doc, doc
    assert 'unknown field "dta"' in headers.get("Warning", ""), headers

    # limit/continue pages through a list once, in order.
    for i in range(5):
        assert request(c, "POST", cms, cm(f"page-{i}"))[0] == 201
    names: list[str] = []
    token = ""
    for _ in range(10):
        code, page, _ = request(c, "GET", f"{cms}?labelSelector=paging%3Dyes&limit=2&continue={token}")
        assert code == 200 and len(page["items"]) <= 2
        names += [i["metadata"]["name"] for i in page["items"]]
        token = page["metadata"].get("continue", "")
        if not token:
            break
    assert names == sorted(["page-0", "page-1", "page-2", "page-3", "page-4", "rv-test", "warned"]), names

    # A watch from the list's revision sees a later change, and timeoutSeconds ends it.
    rv = request(c, "GET", cms)[1]["metadata"]["resourceVersion"]
    host, port, ctx = api_server(c)
    conn = http.client.HTTPSConnection(host, port, context=ctx, timeout=20)
    conn.request(
        "GET",
        f"{cms}?watch=true&resourceVersion={rv}&timeoutSeconds=3",
        headers={"Authorization": f"Bearer {c.token()}"},
    )
    resp = conn.getresponse()
    assert resp.status == 200
    started = time.monotonic()
    assert request(c, "POST", cms, cm("watched"))[0] == 201
    events = [json.loads(line) for line in resp.read().splitlines() if line.strip()]
    conn.close()
    assert time.monotonic() - started < 10
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [("ADDED", "watched")], events

    # A verb a resource does not serve is 405; deletecollection takes a selector.
    code, doc, _ = request(c, "PUT", cms, cm("nope"))
    assert (code, doc["reason"]) == (405, "MethodNotAllowed"), doc
    code, _, _ = request(c, "DELETE", f"{cms}?labelSelector=paging%3Dyes")
    assert code == 200
    assert request(c, "GET", f"{cms}?labelSelector=paging%3Dyes")[1]["items"] == []


def test_every_write_is_in_a_masters_audit_log(cluster: Cluster, tmp_path: Path) -> None:
    c = cluster
    c.skiff("create", "configmap", "audited", "--from-literal=a=1", check=True)  # through gRPC
    viewer = tmp_path / "viewer.kubeconfig"
    viewer.write_text(
        c.skiff("kubeconfig", "--role", "viewer", "--state-dir", str(c.state_dir), check=True).stdout
    )
    viewer.chmod(0o600)
    kubectl(c, "create", "configmap", "refused", "--from-literal=a=1", kubeconfig=viewer, check=False)

    def logged() -> str:
        return "".join(p.read_text() for p in (c.state_dir / "logs").glob("audit-m*.log"))

    expected = [
        r"api=rest role=admin verb=create kind=Deployment ns=default name=demo result=201",
        r"api=grpc role=admin verb=create kind=ConfigMap ns=default name=audited result=OK",
        r"api=rest role=viewer verb=create kind=ConfigMap ns=default name='' result=403",
        r"api=rest role=admin verb='patch scale' kind=Deployment ns=default name=demo result=200",
    ]
    text = until(lambda: all(e in logged() for e in expected) and logged(), "the audit lines", 10)
    assert all(re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z api=", ln) for ln in text.splitlines()), (
        text[:500]
    )
