"""The real kubectl's `create <generator>` protobuf bodies, caught by a stdlib HTTP server and decoded.

kubectl >= 1.32 sends these bodies as `application/vnd.kubernetes.protobuf` (kubectl-compat.md §6.1).
Each case runs one command against a recording server on 127.0.0.1, checks the fields that matter, and
compares the whole decoded object with kubectl's own JSON rendering of it (`--dry-run=client -o json`).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from orchestrator.kubeapi.protobuf import ProtobufError, decode, is_protobuf

pytestmark = pytest.mark.timeout(120)

# The installed kubectl is the gcloud dispatcher: it asks /version first and runs its embedded 1.32.
VERSION = {"major": "1", "minor": "32", "gitVersion": "v1.32.4"}
KUBECTL_TIMEOUT = 30


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    content_type: str
    body: bytes


class RecordingServer(ThreadingHTTPServer):
    """Records every request; answers POST with 201 and a minimal object built from the decoded body."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests: list[Request] = []
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: RecordingServer
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self._record(b"")
        if self.path.split("?", 1)[0] == "/version":
            self._reply(200, VERSION)
        else:  # /api, /apis and anything else: kubectl's typed create needs no discovery
            self._reply(404, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 404})

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self._record(body)
        try:
            obj = decode(body) if is_protobuf(self.headers.get("Content-Type", "")) else json.loads(body)
        except (ProtobufError, ValueError) as error:
            self._reply(
                400,
                {
                    "kind": "Status",
                    "apiVersion": "v1",
                    "status": "Failure",
                    "message": str(error),
                    "code": 400,
                },
            )
            return
        name = obj.get("metadata", {}).get("name", "")
        self._reply(
            201, {"kind": obj.get("kind"), "apiVersion": obj.get("apiVersion"), "metadata": {"name": name}}
        )

    def _record(self, body: bytes) -> None:
        request = Request(self.command, self.path, self.headers.get("Content-Type", ""), body)
        with self.server.lock:
            self.server.requests.append(request)

    def _reply(self, status: int, document: dict[str, Any]) -> None:
        payload = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def kubectl() -> str:
    path = shutil.which("kubectl")
    if path is None:
        pytest.skip("kubectl is not on PATH")
    return path


@pytest.fixture
def apiserver() -> Iterator[RecordingServer]:
    server = RecordingServer()
    thread = threading.Thread(target=server.serve_forever, name="recording-apiserver", daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@dataclass(frozen=True)
class Kubectl:
    binary: str
    home: Path
    kubeconfig: Path
    cache: Path

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        command = ["timeout", str(KUBECTL_TIMEOUT), self.binary, f"--cache-dir={self.cache}", *args]
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.home),
            "KUBECONFIG": str(self.kubeconfig),
        }
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=KUBECTL_TIMEOUT + 10)


@pytest.fixture
def client(kubectl: str, apiserver: RecordingServer, tmp_path: Path) -> Kubectl:
    home = tmp_path / "home"
    home.mkdir()
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\n"
        f"clusters:\n- name: skiff\n  cluster:\n    server: {apiserver.url}\n"
        "contexts:\n- name: skiff\n  context:\n    cluster: skiff\n    user: anonymous\n    namespace: default\n"
        "current-context: skiff\n"
        "users:\n- name: anonymous\n  user: {}\n"
    )
    return Kubectl(kubectl, home, kubeconfig, tmp_path / "cache")


def dig(document: Any, dotted: str) -> Any:
    """document["a"]["b"][0]... for "a.b.0..."."""
    for part in dotted.split("."):
        document = document[int(part)] if isinstance(document, list) else document[part]
    return document


CASES = [
    (
        "deployment",
        [
            "create",
            "deployment",
            "demo",
            "--image=jweissig/alpine-k8s-pod-lb-demo",
            "--port=5005",
            "--replicas=3",
        ],
        "/apis/apps/v1/namespaces/default/deployments",
        {
            "kind": "Deployment",
            "apiVersion": "apps/v1",
            "metadata.name": "demo",
            "metadata.labels": {"app": "demo"},
            "spec.replicas": 3,
            "spec.selector.matchLabels": {"app": "demo"},
            "spec.template.metadata.labels": {"app": "demo"},
            "spec.template.spec.containers.0.image": "jweissig/alpine-k8s-pod-lb-demo",
            "spec.template.spec.containers.0.ports": [{"containerPort": 5005}],
        },
    ),
    (
        "namespace",
        ["create", "namespace", "team-a"],
        "/api/v1/namespaces",
        {"kind": "Namespace", "apiVersion": "v1", "metadata.name": "team-a"},
    ),
    (
        "configmap",
        ["create", "configmap", "c", "--from-literal=a=1", "--from-literal=b=two"],
        "/api/v1/namespaces/default/configmaps",
        {"kind": "ConfigMap", "metadata.name": "c", "data": {"a": "1", "b": "two"}},
    ),
    (
        "service-nodeport",
        ["create", "service", "nodeport", "web", "--tcp=80:8080"],
        "/api/v1/namespaces/default/services",
        {
            "kind": "Service",
            "metadata.name": "web",
            "spec.type": "NodePort",
            "spec.selector": {"app": "web"},
            "spec.ports": [{"name": "80-8080", "protocol": "TCP", "port": 80, "targetPort": 8080}],
        },
    ),
    (
        "ingress",
        ["create", "ingress", "web", "--rule=example.com/app*=web:80"],
        "/apis/networking.k8s.io/v1/namespaces/default/ingresses",
        {
            "kind": "Ingress",
            "apiVersion": "networking.k8s.io/v1",
            "metadata.name": "web",
            "spec.rules.0.host": "example.com",
            "spec.rules.0.http.paths": [
                {
                    "path": "/app",
                    "pathType": "Prefix",
                    "backend": {"service": {"name": "web", "port": {"number": 80}}},
                }
            ],
        },
    ),
]


@pytest.mark.parametrize(("args", "path", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_kubectl_create_body_decodes(
    client: Kubectl, apiserver: RecordingServer, args: list[str], path: str, expected: dict[str, Any]
) -> None:
    result = client.run(*args)
    assert result.returncode == 0, result.stderr
    assert "created" in result.stdout

    posts = [r for r in apiserver.requests if r.method == "POST"]
    assert len(posts) == 1, apiserver.requests
    assert posts[0].path.split("?", 1)[0] == path
    assert is_protobuf(posts[0].content_type), posts[0].content_type
    decoded = decode(posts[0].body)
    assert {dotted: dig(decoded, dotted) for dotted in expected} == expected

    rendered = client.run(*args, "--dry-run=client", "-o", "json")
    assert rendered.returncode == 0, rendered.stderr
    assert decoded == json.loads(rendered.stdout)
