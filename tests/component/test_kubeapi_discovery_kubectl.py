"""The real kubectl reads our discovery, /version and Status documents.

A stdlib HTTP server on 127.0.0.1:0 (in a thread) serves only what orchestrator.kubeapi generates:
/version, the discovery documents, the OpenAPI v3 stub, and a 404 Status for everything else. kubectl
runs under `timeout 20` with a temporary HOME, kubeconfig and discovery cache, so no run sees another's
cache. The `legacy` mode ignores the aggregated Accept, so kubectl must walk the legacy documents.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from orchestrator import errors
from orchestrator.kubeapi import discovery, openapi, resources, status

KUBECTL = shutil.which("kubectl")
pytestmark = pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed")

PODS_PATH = "/api/v1/namespaces/default/pods"
PODS_MESSAGE = 'pods in namespace "default" are not served by this test server'


@dataclass
class Server:
    url: str
    requests: list[tuple[str, str]] = field(default_factory=list)  # (method, path without query)
    agents: list[str] = field(default_factory=list)  # each request's User-Agent


def _handler(server: Server, legacy: bool) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # keep pytest's output clean
            pass

        def _send(self, code: int, content_type: str, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            server.requests.append(("GET", path))
            server.agents.append(self.headers.get("User-Agent", ""))
            accept = "application/json" if legacy else self.headers.get("Accept")
            found = discovery.document(path, accept)
            if path == "/version":
                self._send(200, "application/json", discovery.version_info())
            elif found is not None:
                self._send(200, *found)
            elif path == openapi.ROOT_PATH:
                self._send(200, "application/json", openapi.root())
            elif (doc := openapi.group_version(path)) is not None and path.startswith(openapi.ROOT_PATH):
                self._send(200, "application/json", doc)
            elif path == PODS_PATH:
                self._send(*_status(status.status_for(errors.NotFound(PODS_MESSAGE))))
            else:
                self._send(*_status(status.path_not_found()))

        def do_POST(self) -> None:
            server.requests.append(("POST", self.path))
            server.agents.append(self.headers.get("User-Agent", ""))
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self._send(*_status(status.path_not_found()))

    return Handler


def _status(answer: tuple[int, dict[str, Any]]) -> tuple[int, str, dict[str, Any]]:
    code, body = answer
    return code, "application/json", body


@pytest.fixture(params=["aggregated", "legacy"])
def api(request: pytest.FixtureRequest) -> Iterator[Server]:
    srv = Server(url="")
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(srv, legacy=request.param == "legacy"))
    srv.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def kubectl(api: Server, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    config = tmp_path / "kubeconfig"
    config.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "skiff", "cluster": {"server": api.url}}],
                "users": [{"name": "nobody", "user": {}}],
                "contexts": [
                    {
                        "name": "skiff",
                        "context": {"cluster": "skiff", "user": "nobody", "namespace": "default"},
                    }
                ],
                "current-context": "skiff",
            }
        )
    )
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "KUBECONFIG": str(config)}
    assert KUBECTL is not None
    cmd = ["timeout", "20", KUBECTL, f"--cache-dir={tmp_path / 'cache'}", *args]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=30)


def _columns(table: str) -> list[dict[str, str]]:
    """kubectl's aligned table -> rows keyed by header; columns are cut at the header's offsets."""
    lines = [line for line in table.splitlines() if line.strip()]
    header = lines[0]
    names = header.split()
    starts = [header.index(n) for n in names]
    rows = []
    for line in lines[1:]:
        cells = [
            line[s : (starts[i + 1] if i + 1 < len(starts) else None)].strip() for i, s in enumerate(starts)
        ]
        rows.append(dict(zip(names, cells, strict=True)))
    return rows


def test_api_resources_lists_every_served_resource(api: Server, tmp_path: Path) -> None:
    out = kubectl(api, tmp_path, "api-resources", "-o", "wide")
    assert out.returncode == 0, out.stderr
    rows = {(r["NAME"], r["APIVERSION"]): r for r in _columns(out.stdout)}
    expected = {(r.plural, r.api_version): r for r in resources.RESOURCES}
    assert set(rows) == set(expected)
    for key, r in expected.items():
        row = rows[key]
        assert row["SHORTNAMES"] == ",".join(r.short_names), key
        assert row["NAMESPACED"] == str(r.namespaced).lower(), key
        assert row["KIND"] == r.kind, key
        assert row["VERBS"] == ",".join(r.verbs), key
        assert row["CATEGORIES"] == ",".join(r.categories), key


def test_version_reports_1_32(api: Server, tmp_path: Path) -> None:
    out = kubectl(api, tmp_path, "version", "-o", "json")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["serverVersion"]["minor"] == "32"
    assert report["serverVersion"]["gitVersion"] == discovery.GIT_VERSION
    # The gcloud dispatcher picks the kubectl it runs by the server's minor: a 1.32 must have asked.
    assert report["clientVersion"]["gitVersion"].startswith("v1.32.")
    assert any(agent.startswith("kubectl/v1.32.") for agent in api.agents), api.agents


def test_get_pods_reads_our_status(api: Server, tmp_path: Path) -> None:
    out = kubectl(api, tmp_path, "get", "pods")
    assert ("GET", PODS_PATH) in api.requests
    assert out.returncode != 0
    # kubectl prefixes a failed list with 'Unable to list "/v1, Resource=pods": ' and then our message.
    assert out.stderr.startswith("Error from server (NotFound): "), out.stderr
    assert out.stderr.rstrip().endswith(PODS_MESSAGE), out.stderr


def test_unknown_type_is_reported_from_discovery(api: Server, tmp_path: Path) -> None:
    out = kubectl(api, tmp_path, "get", "widgets")
    assert out.returncode != 0
    assert 'the server doesn\'t have a resource type "widgets"' in out.stderr
    assert not any(path.endswith("/widgets") for _, path in api.requests)


@pytest.mark.parametrize(
    ("manifest", "collection"),
    [
        ("basic-ingress.yaml", "/apis/extensions/v1beta1/namespaces/default/ingresses"),
        ("basic-ingress-v1.yaml", "/apis/networking.k8s.io/v1/namespaces/default/ingresses"),
    ],
    ids=["extensions-v1beta1", "networking-v1"],
)
def test_apply_validates_against_the_openapi_stub(
    api: Server, tmp_path: Path, manifest: str, collection: str
) -> None:
    """Default (strict) validation: the stub satisfies kubectl, which then leaves validation to us."""
    path = Path(__file__).resolve().parents[2] / "examples" / manifest
    out = kubectl(api, tmp_path, "apply", "-f", str(path))
    group_version = collection.split("/namespaces/")[0].lstrip("/")
    assert ("GET", openapi.ROOT_PATH) in api.requests
    assert ("GET", f"{openapi.ROOT_PATH}/{group_version}") in api.requests
    assert not any(p.startswith("/openapi/v2") for _, p in api.requests), api.requests
    posts = [p for m, p in api.requests if m == "POST"]
    assert len(posts) == 1 and posts[0].startswith(collection + "?"), api.requests
    assert "fieldValidation=Strict" in posts[0]
    assert "error validating data" not in out.stderr
    assert "Error from server (NotFound)" in out.stderr
