"""Argument parsing, one-line errors and their mapping from orchestrator.errors."""

from __future__ import annotations

import pytest

from orchestrator import errors
from orchestrator.cli import apply
from orchestrator.cli import common as c
from orchestrator.cli.config import ClientConfig
from orchestrator.cli.main import main, parse_args
from orchestrator.cli.rollout import rollout_message


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        pytest.param(
            ["scale", "--replica=3", "deployment/x"],
            "error: unknown flag --replica; see 'skiff scale --help'",
            id="unknown-flag",
        ),
        pytest.param(
            ["get", "pods", "--bogus"],
            "error: unknown flag --bogus; see 'skiff get --help'",
            id="unknown-flag-get",
        ),
        pytest.param(
            ["frobnicate"],
            'error: unknown command "frobnicate" for "skiff"; see \'skiff --help\'',
            id="unknown-command",
        ),
        pytest.param(
            ["rollout", "status", "deploy/x", "--nope"],
            "error: unknown flag --nope; see 'skiff rollout --help'",
            id="rollout",
        ),
        pytest.param(
            ["set", "imag"],
            'error: unknown command "imag" for "skiff set"; see \'skiff set --help\'',
            id="nested",
        ),
        pytest.param(
            ["get"],
            "error: you must specify the type of resource to get, e.g. 'skiff get pods'",
            id="get-nothing",
        ),
        pytest.param(
            ["scale", "deploy/x"],
            "error: the following arguments are required: --replicas; see 'skiff scale --help'",
            id="required",
        ),
        pytest.param(["get", "pods", "-o", "xml"], None, id="bad-choice"),
    ],
)
def test_usage_errors_are_one_line(
    argv: list[str], line: str | None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ")
    if line:
        assert err.strip() == line


def test_global_flags_before_or_after_the_verb() -> None:
    a = parse_args(["-n", "kube", "--server", "h:1", "get", "pods", "-o", "wide"])
    assert (a.namespace, a.server, a.output) == ("kube", "h:1", "wide")
    b = parse_args(["get", "pods", "-nkube", "--token=t", "-A", "-l", "app=x", "--show-labels"])
    assert (b.namespace, b.token, b.all_namespaces, b.selector, b.show_labels) == (
        "kube",
        "t",
        True,
        "app=x",
        True,
    )


def test_run_takes_args_after_double_dash() -> None:
    a = parse_args(["run", "x", "--image=busybox", "--port=80", "--command", "--", "sh", "-c", "echo hi"])
    assert a.cmd_args == ["sh", "-c", "echo hi"] and a.command and a.port == 80


def test_unknown_resource_type(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["get", "foo", "--server", "127.0.0.1:1", "--insecure"]) == 1
    assert capsys.readouterr().err == 'error: the server doesn\'t have a resource type "foo"\n'


CFG = ClientConfig(masters=["127.0.1.1:7000", "127.0.1.2:7000"], token="t")


@pytest.mark.parametrize(
    ("error", "line"),
    [
        pytest.param(
            errors.NotFound('deployments.apps "x" not found'),
            'Error from server (NotFound): deployments.apps "x" not found',
            id="notfound",
        ),
        pytest.param(
            errors.AlreadyExists('pods "x" already exists'),
            'Error from server (AlreadyExists): pods "x" already exists',
            id="exists",
        ),
        pytest.param(errors.Conflict("stale"), "Error from server (Conflict): stale", id="conflict"),
        pytest.param(
            errors.PermissionDenied('role "viewer" may not write'),
            'Error from server (Forbidden): role "viewer" may not write',
            id="forbidden",
        ),
        pytest.param(
            errors.Unauthenticated("invalid bearer token"),
            "error: you must be logged in to the server (Unauthenticated): invalid bearer token",
            id="unauth",
        ),
        pytest.param(
            errors.Unavailable("no master answered (127.0.1.1:7000, 127.0.1.2:7000): connection\n refused"),
            "error: cannot reach any master (127.0.1.1:7000, 127.0.1.2:7000): connection refused",
            id="unavailable",
        ),
        pytest.param(
            errors.Unavailable("no quorum"),
            "error: cannot reach any master (127.0.1.1:7000, 127.0.1.2:7000): no quorum",
            id="no-quorum",
        ),
        pytest.param(
            c.FileInvalid(
                "d.yaml",
                'Failed to parse spec field: Message type "skiff.v1.DeploymentSpec" has no field named "foo" at "Deployment.spec"',
            ),
            'error: error validating "d.yaml": unknown field "foo" at spec (no field named "foo" in DeploymentSpec)',
            id="unknown-field",
        ),
        pytest.param(
            c.FileInvalid("d.yaml", "metadata.name: required value"),
            'error: error validating "d.yaml": metadata.name: required value',
            id="invalid",
        ),
        pytest.param(c.CliError("nope"), "error: nope", id="cli"),
    ],
)
def test_format_error(error: Exception, line: str) -> None:
    assert c.format_error(error, CFG) == line


@pytest.mark.parametrize(
    ("words", "want"),
    [
        pytest.param(["pods"], [("Pod", [])], id="kind"),
        pytest.param(["po", "a", "b"], [("Pod", ["a", "b"])], id="names"),
        pytest.param(
            ["deploy/a", "svc/b", "deployment/c"],
            [("Deployment", ["a", "c"]), ("Service", ["b"])],
            id="slash",
        ),
        pytest.param(["pods,svc"], [("Pod", []), ("Service", [])], id="comma"),
        pytest.param(
            ["all"], [("Pod", []), ("Service", []), ("Deployment", []), ("ReplicaSet", [])], id="all"
        ),
        pytest.param(["deployments.apps"], [("Deployment", [])], id="group"),
    ],
)
def test_parse_targets(words: list[str], want: list) -> None:
    assert c.parse_targets(words) == want


def test_parse_targets_mixed_forms_rejected() -> None:
    with pytest.raises(c.CliError):
        c.parse_targets(["pods", "deploy/x"])


@pytest.mark.parametrize(("text", "secs"), [("30s", 30), ("2m", 120), ("500ms", 0.5), ("1h", 3600), ("7", 7)])
def test_parse_duration(text: str, secs: float) -> None:
    assert c.parse_duration(text) == secs


def test_rollout_messages() -> None:
    def dep(gen: int, observed: int, want: int, **st: int) -> dict:
        return {
            "metadata": {"name": "demo", "generation": gen},
            "spec": {"replicas": want},
            "status": {"observedGeneration": observed, **st},
        }

    assert rollout_message(dep(2, 1, 3)) == ("Waiting for deployment spec update to be observed...", False)
    assert rollout_message(dep(1, 1, 3, updatedReplicas=1, replicas=3))[0].endswith(
        "1 out of 3 new replicas have been updated..."
    )
    assert rollout_message(dep(1, 1, 3, updatedReplicas=3, replicas=4))[0].endswith(
        "1 old replicas are pending termination..."
    )
    assert rollout_message(dep(1, 1, 3, updatedReplicas=3, replicas=3, availableReplicas=2))[0].endswith(
        "2 of 3 updated replicas are available..."
    )
    assert rollout_message(dep(1, 1, 3, updatedReplicas=3, replicas=3, availableReplicas=3)) == (
        'deployment "demo" successfully rolled out',
        True,
    )


@pytest.mark.parametrize(
    ("want", "have", "same"),
    [
        ({"spec": {"replicas": 1}}, {"spec": {"replicas": 1, "strategy": {}}}, True),
        ({"spec": {"replicas": 2}}, {"spec": {"replicas": 1}}, False),
        ({"a": [{"x": 1}]}, {"a": [{"x": 1, "y": 2}]}, True),
        ({"a": [{"x": 1}]}, {"a": [{"x": 1}, {"x": 2}]}, False),
        ({"metadata": {"resourceVersion": "3"}}, {"metadata": {"resourceVersion": "9"}}, False),
    ],
)
def test_is_subset(want: dict, have: dict, same: bool) -> None:
    assert apply.is_subset(want, have) is same


def test_deployment_manifest_like_kubectl_run() -> None:
    d = apply.deployment_manifest(
        "demo", "jweissig/alpine-k8s-pod-lb-demo:latest", "default", replicas=2, port=5005
    )
    assert d["spec"]["selector"]["matchLabels"] == {"app": "demo"}
    container = d["spec"]["template"]["spec"]["containers"][0]
    assert container == {
        "name": "alpine-k8s-pod-lb-demo",
        "image": "jweissig/alpine-k8s-pod-lb-demo:latest",
        "ports": [{"containerPort": 5005}],
    }
