"""Loading manifests: multi-document YAML, JSON, directories, stdin, and one-line parse errors."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from orchestrator.cli.manifests import ManifestError, load_manifests

CM = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {}\n"


def test_multi_document_yaml(tmp_path: Path) -> None:
    f = tmp_path / "two.yaml"
    f.write_text(CM.format("a") + "---\n---\n" + CM.format("b"))
    assert [m.obj["metadata"]["name"] for m in load_manifests([str(f)])] == ["a", "b"]


def test_json_and_list(tmp_path: Path) -> None:
    f = tmp_path / "l.json"
    f.write_text(json.dumps({"kind": "List", "items": [{"kind": "ConfigMap", "metadata": {"name": "x"}}]}))
    [m] = load_manifests([str(f)])
    assert m.obj["metadata"]["name"] == "x" and m.source == str(f)


def test_directory_reads_manifest_files_sorted(tmp_path: Path) -> None:
    (tmp_path / "b.yml").write_text(CM.format("b"))
    (tmp_path / "a.yaml").write_text(CM.format("a"))
    (tmp_path / "notes.txt").write_text("ignored")
    assert [m.obj["metadata"]["name"] for m in load_manifests([str(tmp_path)])] == ["a", "b"]


def test_stdin() -> None:
    [m] = load_manifests(["-"], stdin=io.StringIO(CM.format("s")))
    assert m.source == "-" and m.obj["metadata"]["name"] == "s"


def test_yaml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text("kind: ConfigMap\nmetadata:\n  name: [x\n")
    with pytest.raises(ManifestError) as e:
        load_manifests([str(f)])
    msg = str(e.value)
    assert "\n" not in msg and f'error parsing "{f}": line' in msg


def test_missing_path_and_non_object(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="does not exist"):
        load_manifests([str(tmp_path / "nope.yaml")])
    f = tmp_path / "scalar.yaml"
    f.write_text("just a string\n")
    with pytest.raises(ManifestError, match="not an object"):
        load_manifests([str(f)])


def test_examples_are_valid() -> None:
    from orchestrator.model import ValidationError, validate

    root = Path(__file__).resolve().parents[2] / "examples"
    by_file = {Path(m.source).name: m.obj for m in load_manifests([str(root)])}
    for name in ("demo-deployment.yaml", "demo-service.yaml", "basic-ingress.yaml", "basic-ingress-v1.yaml"):
        validate(by_file[name])
    with pytest.raises(ValidationError, match="replica"):
        validate(by_file["bad-manifest.yaml"])
