"""Reading manifests: files, directories and stdin; multi-document YAML and JSON (also `kind: List`)."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import yaml

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")


class ManifestError(Exception):
    """A manifest cannot be read or parsed; the message is one line naming the file (and line)."""


@dataclass(frozen=True)
class Manifest:
    source: str  # the file name as the user gave it, "-" for stdin
    obj: dict[str, Any]


def _files(path: str) -> list[Path]:
    p = Path(path)
    if p.is_dir():
        return sorted(f for f in p.iterdir() if f.is_file() and f.suffix in MANIFEST_SUFFIXES)
    if not p.exists():
        raise ManifestError(f'the path "{path}" does not exist')
    return [p]


def parse_documents(text: str, source: str) -> list[dict[str, Any]]:
    """The objects in `text` (YAML or JSON, several documents, `kind: List` expanded); empty ones skipped."""
    try:
        docs = list(yaml.safe_load_all(text))
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f" line {mark.line + 1}" if mark else ""
        problem = e.problem or e.context or "invalid YAML"
        raise ManifestError(f'error parsing "{source}":{where}: {problem}') from None
    except yaml.YAMLError as e:
        raise ManifestError(f'error parsing "{source}": {" ".join(str(e).split())}') from None
    out: list[dict[str, Any]] = []
    for i, doc in enumerate(docs):
        if doc is None:
            continue
        if not isinstance(doc, dict):
            raise ManifestError(
                f'error parsing "{source}": document {i + 1} is a {type(doc).__name__}, not an object'
            )
        if doc.get("kind") == "List" and isinstance(doc.get("items"), list):
            out.extend(item for item in doc["items"] if isinstance(item, dict))
        else:
            # Round-trip through JSON so YAML-only types (dates) become what the server would see.
            out.append(json.loads(json.dumps(doc, default=str)))
    return out


def load_manifests(paths: list[str], stdin: IO[str] | None = None) -> list[Manifest]:
    """Every object in the given files, directories ('*.yaml', '*.yml', '*.json') or '-' (stdin)."""
    out: list[Manifest] = []
    for path in paths:
        if path == "-":
            text = (stdin or sys.stdin).read()
            out.extend(Manifest("-", o) for o in parse_documents(text, "STDIN"))
            continue
        for f in _files(path):
            try:
                text = f.read_text()
            except OSError as e:
                raise ManifestError(f'error reading "{f}": {e.strerror or e}') from None
            out.extend(Manifest(str(f), o) for o in parse_documents(text, str(f)))
    if not out:
        raise ManifestError(f"no objects passed to apply (read {', '.join(paths)})")
    return out
