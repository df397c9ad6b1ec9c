"""Reading manifests: files, directories and stdin; multi-document YAML and JSON (also `kind: List`)."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from orchestrator import decoding

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
MAX_MANIFEST = 8 * 1024 * 1024  # bytes per file: several objects, each at most 3 MiB at the server


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


def parse_documents(text: str | bytes, source: str) -> list[dict[str, Any]]:
    """The objects in `text` (YAML or JSON, several documents, `kind: List` expanded); empty ones skipped.

    Decoded bytes first (orchestrator.decoding): at most MAX_MANIFEST bytes, UTF-8, bounded depth and
    YAML alias expansion, no duplicate keys; a JSON document takes the fast JSON decoder."""
    what = f'"{source}"'
    try:
        head = text[:64].lstrip()
        if head[:1] in ("{", b"{"):
            docs = [decoding.load_json(text, max_bytes=MAX_MANIFEST, what=what)]
        else:
            docs = decoding.load_yaml_all(text, max_bytes=MAX_MANIFEST, what=what)
    except decoding.DecodeError as e:
        if e.too_large:
            raise ManifestError(str(e)) from None  # '"f.yaml" is N bytes; the limit is M bytes'
        detail = str(e).removeprefix(what)
        for form in (" is not valid YAML: ", " is not valid JSON: ", ": "):
            if detail.startswith(form):
                detail = detail[len(form) :]
                break
        raise ManifestError(f"error parsing {what}: {detail.strip()}") from None
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
            out.append(doc)
    return out


def load_manifests(paths: list[str], stdin: IO[str] | None = None) -> list[Manifest]:
    """Every object in the given files, directories ('*.yaml', '*.yml', '*.json') or '-' (stdin)."""
    out: list[Manifest] = []
    for path in paths:
        if path == "-":
            data: str | bytes = stdin.read() if stdin is not None else sys.stdin.buffer.read()
            out.extend(Manifest("-", o) for o in parse_documents(data, "STDIN"))
            continue
        for f in _files(path):
            try:
                data = f.read_bytes()  # bytes: decoding checks the size and the UTF-8 itself
            except OSError as e:
                raise ManifestError(f'error reading "{f}": {e.strerror or e}') from None
            out.extend(Manifest(str(f), o) for o in parse_documents(data, str(f)))
    if not out:
        raise ManifestError(f"no objects passed to apply (read {', '.join(paths)})")
    return out
