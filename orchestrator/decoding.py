"""Bytes before structure: decode untrusted JSON and YAML bodies within fixed bounds.

Every body a server or the CLI reads passes through here. The size is checked before anything else,
then UTF-8, then the nesting depth, and only then is structure built. JSON nesting is measured with a
few C-speed byte passes before the (recursive) C scanner sees the text. YAML is built straight from
the parser's event stream with an explicit stack: no recursion anywhere, so depth, recursive aliases,
alias expansion ("billion laughs") and duplicate keys are refused the moment they appear. Results are
JSON-compatible: YAML timestamps stay strings, mapping keys become strings as sigs.k8s.io/yaml makes
them, and NaN, Infinity and lone surrogates are refused. Every refusal is a one-line DecodeError.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Callable
from itertools import accumulate
from typing import Any

import yaml
from yaml import events

MAX_BYTES = 3 * 1024 * 1024  # Kubernetes' limit for one object
MAX_DEPTH = 100  # nesting of mappings/lists
MAX_YAML_NODES = 1_000_000  # nodes a YAML stream may expand to (aliases counted each time they are used)

_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_CORE = "tag:yaml.org,2002:"
_STR, _INT, _FLOAT, _BOOL, _NULL, _MERGE = (
    _CORE + t for t in ("str", "int", "float", "bool", "null", "merge")
)
# YAML 1.1's implicit types without timestamps: a server stores JSON, so 2024-01-01 stays a string.
_IMPLICIT = {
    first: [(tag, rx) for tag, rx in rules if tag != _CORE + "timestamp"]
    for first, rules in yaml.resolver.Resolver.yaml_implicit_resolvers.items()
}
_CONSTRUCTOR = yaml.constructor.SafeConstructor()
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_NOT_STRUCTURE = bytes(c for c in range(256) if c not in b'[]{}"')
_SIGNS = bytes.maketrans(b"[]{}", b"\x01\xff\x01\xff")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _resolve(plain: str) -> str:
    """The implicit tag of a plain YAML scalar."""
    for tag, rx in _IMPLICIT.get(plain[:1], ()):
        if rx.match(plain):
            return tag
    return _STR


class DecodeError(ValueError):
    """A refused body. str() is one line. `limit` is True when a size/depth/expansion limit was hit
    (a server answers 413 for size, 400/422 otherwise); `too_large` only for the byte-size limit."""

    def __init__(self, message: str, *, limit: bool = False, too_large: bool = False) -> None:
        super().__init__(
            "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in message)
        )
        self.limit = limit or too_large
        self.too_large = too_large


def quote(value: Any, limit: int = 40) -> str:
    """A short, escaped, pure-ASCII, one-line rendering of `value` for messages. Never raises."""
    try:
        if isinstance(value, str):
            return json.dumps(value[:limit]) + ("..." if len(value) > limit else "")
        text = json.dumps(value, default=str)
        return text[:limit] + ("..." if len(text) > limit else "")
    except Exception:
        return "<unprintable " + type(value).__name__ + ">"


def _text(data: bytes | str, max_bytes: int, what: str) -> tuple[str, bytes]:
    """The input as text and as UTF-8 bytes, refusing it if too large or not UTF-8 (size first)."""
    if isinstance(data, str):
        size = len(data) if data.isascii() else len(data.encode("utf-8", "surrogatepass"))
        if size > max_bytes:
            raise DecodeError(f"{what} is {size} bytes; the limit is {max_bytes} bytes", too_large=True)
        try:
            return data, data.encode("utf-8")
        except UnicodeEncodeError as e:
            raise DecodeError(f"{what}: invalid Unicode (a lone surrogate) at offset {e.start}") from None
    if not isinstance(data, bytes | bytearray | memoryview):
        raise DecodeError(f"{what} must be bytes or str, not {type(data).__name__}")
    raw = bytes(data)
    if len(raw) > max_bytes:
        raise DecodeError(f"{what} is {len(raw)} bytes; the limit is {max_bytes} bytes", too_large=True)
    try:
        return raw.decode("utf-8"), raw
    except UnicodeDecodeError as e:
        raise DecodeError(
            f"{what} is not valid UTF-8: invalid byte 0x{raw[e.start]:02x} at offset {e.start}"
        ) from None


def _too_deep(what: str, max_depth: int) -> DecodeError:
    return DecodeError(f"{what} is nested more than {max_depth} levels deep", limit=True)


def _json_too_deep(raw: bytes, max_depth: int) -> bool:
    """Whether brackets outside JSON strings nest deeper than `max_depth`, found in C-speed passes."""
    raw = raw.replace(b"\\\\", b"").replace(b'\\"', b"")  # escaped backslashes, then escaped quotes
    marks = raw.translate(None, _NOT_STRUCTURE).replace(b'""', b"")  # only []{}" are left
    signs = memoryview(b"".join(marks.split(b'"')[::2]).translate(_SIGNS)).cast("b")  # outside strings
    depth = 0
    for start in range(0, len(signs), 1 << 16):  # in chunks, so that very deep input stops early
        depths = list(accumulate(signs[start : start + (1 << 16)], initial=depth))
        if max(depths) > max_depth:
            return True
        depth = depths[-1]
    return False


def _has_lone_surrogate(s: str) -> bool:
    if s.isascii():
        return False
    try:
        s.encode("utf-8")
        return False
    except UnicodeEncodeError:
        return True


def _path(path: Any) -> str:
    """Render a linked (parent, key) path as $.a.b[0]["c d"]."""
    parts = []
    while path is not None:
        path, key = path
        parts.append(
            f"[{key}]" if isinstance(key, int) else "." + key if _NAME.fullmatch(key) else f"[{quote(key)}]"
        )
    return "$" + "".join(reversed(parts))


class _Duplicates(dict[str, Any]):
    """A JSON object that repeats a key; reported with its path once the whole tree is known."""

    def __init__(self, items: list[tuple[str, Any]]) -> None:
        super().__init__(items)
        self.key = next(k for k, n in Counter(k for k, _ in items).items() if n > 1)


def _check_json_tree(value: Any, what: str) -> None:
    """Walk the parsed tree in document order (iteratively) for repeated keys and lone surrogates."""
    stack: list[tuple[Any, Any]] = [(value, None)]
    while stack:
        node, path = stack.pop()
        if isinstance(node, _Duplicates):
            raise DecodeError(f"{what}: duplicate key {quote(node.key)} at {_path(path)}")
        if isinstance(node, dict):
            for key in node:
                if _has_lone_surrogate(key):
                    raise DecodeError(f"{what}: invalid Unicode (a lone surrogate) in a key at {_path(path)}")
            stack.extend((v, (path, k)) for k, v in reversed(node.items()))
        elif isinstance(node, list):
            stack.extend((v, (path, i)) for i, v in reversed(list(enumerate(node))))
        elif isinstance(node, str) and _has_lone_surrogate(node):
            raise DecodeError(f"{what}: invalid Unicode (a lone surrogate) at {_path(path)}")


def load_json(
    data: bytes | str, *, max_bytes: int = MAX_BYTES, max_depth: int = MAX_DEPTH, what: str = "the body"
) -> Any:
    """Decode one strict JSON value: no NaN/Infinity, no duplicate keys, no lone surrogates."""
    text, raw = _text(data, max_bytes, what)
    if raw.count(b"[") + raw.count(b"{") > max_depth and _json_too_deep(raw, max_depth):
        raise _too_deep(what, max_depth)
    duplicates = False

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        nonlocal duplicates
        obj = dict(items)
        if len(obj) == len(items):
            return obj
        duplicates = True
        return _Duplicates(items)

    def constant(name: str) -> Any:
        raise DecodeError(f"{what}: {name} is not valid JSON")

    def number(s: str) -> float:
        if not math.isfinite(f := float(s)):
            raise DecodeError(f"{what}: the number {quote(s)} is out of range")
        return f

    try:
        value = json.loads(text, object_pairs_hook=pairs, parse_constant=constant, parse_float=number)
    except DecodeError:
        raise
    except json.JSONDecodeError as e:
        raise DecodeError(f"{what} is not valid JSON: {e}") from None
    except ValueError as e:  # e.g. an integer beyond sys.get_int_max_str_digits()
        raise DecodeError(f"{what} is not valid JSON: {str(e).split(':')[0]}") from None
    except RecursionError:
        raise _too_deep(what, max_depth) from None
    if duplicates or _SURROGATE_ESCAPE.search(raw):
        _check_json_tree(value, what)
    return value


_NO_KEY, _MERGE_KEY = object(), object()  # a mapping's pending key: none yet, or `<<`


def _line(event: events.Event) -> int:
    return event.start_mark.line + 1 if event.start_mark else 0


class _Frame:
    """An open YAML mapping or sequence on the builder's stack."""

    __slots__ = ("value", "anchor", "size", "height", "key", "merges")

    def __init__(self, value: Any, anchor: str | None) -> None:
        self.value, self.anchor, self.size, self.height = value, anchor, 1, 0
        self.key: Any = _NO_KEY
        self.merges: list[tuple[Any, int]] = []


class _YamlBuilder:
    """Builds documents from parser events with an explicit stack, refusing as soon as a rule breaks.

    `size` counts nodes with aliases expanded and `height` the nesting below a node, so an alias costs
    what its anchor's node costs without being walked again."""

    def __init__(self, max_depth: int, max_nodes: int, what: str, single: bool) -> None:
        self.max_depth, self.max_nodes, self.what, self.single = max_depth, max_nodes, what, single
        self.docs: list[Any] = []
        self.stack: list[_Frame] = []
        self.anchors: dict[str, Any] = {}  # name -> its open _Frame, or (value, size, height) once closed
        self.nodes = 0
        self.handlers: dict[type, Callable[[Any], None]] = {
            events.DocumentStartEvent: self.document,
            events.ScalarEvent: self.scalar,
            events.AliasEvent: self.alias,
            events.SequenceStartEvent: self.open,
            events.MappingStartEvent: self.open,
            events.SequenceEndEvent: self.close,
            events.MappingEndEvent: self.close,
        }

    def fail(self, line: int, problem: str) -> DecodeError:
        return DecodeError(f"{self.what}: line {line}: {problem}")

    def count(self, nodes: int, height: int) -> None:
        """Refuse before a node of `nodes` expanded nodes and `height` levels joins the stack's top."""
        self.nodes += nodes
        if self.nodes > self.max_nodes:
            message = f"{self.what} expands to more than {self.max_nodes} YAML nodes (aliases count each use)"
            raise DecodeError(message, limit=True)
        if len(self.stack) + height > self.max_depth:
            raise _too_deep(self.what, self.max_depth)

    def waits_for_key(self) -> bool:
        return bool(self.stack) and self.stack[-1].key is _NO_KEY and isinstance(self.stack[-1].value, dict)

    def document(self, event: events.DocumentStartEvent) -> None:
        if self.single and self.docs:
            raise DecodeError(f"{self.what} holds more than one YAML document; expected one")
        self.anchors = {}

    def scalar(self, event: events.ScalarEvent) -> None:
        line, value, tag = _line(event), event.value or "", event.tag
        if tag is None or tag == "!":  # untagged: plain scalars are typed as YAML 1.1 types them
            tag = _resolve(value) if tag is None and event.implicit[0] else _STR
        self.count(1, 0)
        if tag == _MERGE and self.waits_for_key():
            self.stack[-1].key = _MERGE_KEY
            return
        result = value if tag == _STR and value.isascii() else self.construct(tag, value, line)
        if event.anchor:
            self.anchors[event.anchor] = (result, 1, 0)
        self.add(result, 1, 0, line)

    def construct(self, tag: str, value: str, line: int) -> Any:
        """One scalar of the JSON-compatible core types; other tags are refused."""
        if tag in (_STR, _MERGE):
            if _has_lone_surrogate(value):
                raise self.fail(line, "invalid Unicode (a lone surrogate)")
            return value
        kind = {_NULL: "null", _BOOL: "bool", _INT: "int", _FLOAT: "float"}.get(tag)
        if kind is None:
            raise self.fail(line, f"the YAML tag {quote(tag.replace(_CORE, '!!'))} is not supported")
        try:
            result = getattr(_CONSTRUCTOR, "construct_yaml_" + kind)(yaml.ScalarNode(tag, value))
        except Exception:
            raise self.fail(line, f"{quote(value)} is not a valid {kind}") from None
        if isinstance(result, float) and not math.isfinite(result):
            raise self.fail(line, f"{quote(value)} is not a finite number, which JSON requires")
        if type(result) is int and result.bit_length() > 64:
            raise self.fail(line, f"the integer {quote(value)} is out of range")
        return result

    def alias(self, event: events.AliasEvent) -> None:
        line, name = _line(event), str(event.anchor)
        target = self.anchors.get(name)
        if target is None:
            raise self.fail(line, f"the YAML alias *{name[:40]} is not defined")
        if isinstance(target, _Frame):
            raise self.fail(line, f"the YAML alias *{name[:40]} refers to a node that contains it")
        value, size, height = target
        self.count(size, height)
        self.add(value, size, height, line)

    def open(self, event: events.CollectionStartEvent) -> None:
        line, seq = _line(event), isinstance(event, events.SequenceStartEvent)
        self.count(1, 1)
        if event.tag not in (None, "!", _CORE + ("seq" if seq else "map")):
            raise self.fail(
                line, f"the YAML tag {quote(str(event.tag).replace(_CORE, '!!'))} is not supported"
            )
        if self.waits_for_key():
            raise self.fail(line, f"a mapping key must be a string, not {'a list' if seq else 'a mapping'}")
        frame = _Frame([] if seq else {}, event.anchor)
        if event.anchor:
            self.anchors[event.anchor] = frame
        self.stack.append(frame)

    def close(self, event: events.CollectionEndEvent) -> None:
        frame = self.stack.pop()
        if frame.merges:
            frame.value = self.merged(frame)
        if frame.anchor and self.anchors.get(frame.anchor) is frame:
            self.anchors[frame.anchor] = (frame.value, frame.size, frame.height + 1)
        self.add(frame.value, frame.size, frame.height + 1, _line(event))

    def add(self, value: Any, size: int, height: int, line: int) -> None:
        """Place a finished node: a document root, a list item, a mapping key or a mapping value."""
        if not self.stack:
            self.docs.append(value)
            return
        top = self.stack[-1]
        top.size += size
        if height > top.height:
            top.height = height
        if isinstance(top.value, list):
            top.value.append(value)
        elif top.key is _NO_KEY:
            top.key = self.key(value, line)
            if top.key in top.value:
                raise self.fail(line, f"key {quote(top.key)} already set in map")
        else:
            if top.key is _MERGE_KEY:
                top.merges.append((value, line))
            else:
                top.value[top.key] = value
            top.key = _NO_KEY

    def key(self, value: Any, line: int) -> str:
        """A mapping key as a string, converted as sigs.k8s.io/yaml converts it (true -> "true", 1 -> "1")."""
        if isinstance(value, str):
            return value
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int | float):
            return repr(value).removesuffix(".0")
        kind = "null" if value is None else "a list" if isinstance(value, list) else "a mapping"
        raise self.fail(line, f"a mapping key must be a string, not {kind}")

    def merged(self, frame: _Frame) -> dict[str, Any]:
        """Apply `<<` merges: explicit keys win, then earlier merged mappings over later ones."""
        result: dict[str, Any] = {}
        for value, line in frame.merges:
            for source in value if isinstance(value, list) else [value]:
                if not isinstance(source, dict):
                    raise self.fail(line, "a YAML merge (<<) takes a mapping or a list of mappings")
                for k, v in source.items():
                    result.setdefault(k, v)
        result.update(frame.value)
        return result


def _yaml_problem(e: yaml.YAMLError, what: str) -> DecodeError:
    """One line from PyYAML's multi-line message: the problem and where it is."""
    mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
    problem = getattr(e, "problem", None) or getattr(e, "context", None) or (str(e).splitlines() or ["?"])[0]
    where = f"line {mark.line + 1}: " if mark is not None else ""
    return DecodeError(f"{what} is not valid YAML: {where}{problem}")


def _load_yaml(
    data: bytes | str, max_bytes: int, max_depth: int, max_nodes: int, what: str, single: bool
) -> list[Any]:
    text, _ = _text(data, max_bytes, what)
    builder = _YamlBuilder(max_depth, max_nodes, what, single)
    try:
        loader = _LOADER(text)
        try:
            while (event := loader.get_event()) is not None:  # an iterative parser: no recursion
                if (handler := builder.handlers.get(type(event))) is not None:
                    handler(event)
        finally:
            loader.dispose()
    except DecodeError:
        raise
    except yaml.YAMLError as e:
        if "maximum nesting depth" in str(e):  # libyaml's own bound (1000), met while scanning ahead
            raise _too_deep(what, max_depth) from None
        raise _yaml_problem(e, what) from None
    except RecursionError:
        raise _too_deep(what, max_depth) from None
    except Exception as e:  # the parser should raise only YAMLError; never let anything else escape
        raise DecodeError(f"{what} is not valid YAML: {type(e).__name__}") from None
    return builder.docs


def load_yaml(
    data: bytes | str,
    *,
    max_bytes: int = MAX_BYTES,
    max_depth: int = MAX_DEPTH,
    max_nodes: int = MAX_YAML_NODES,
    what: str = "the body",
) -> Any:
    """Decode exactly one YAML document (an empty input gives None)."""
    docs = _load_yaml(data, max_bytes, max_depth, max_nodes, what, single=True)
    return docs[0] if docs else None


def load_yaml_all(
    data: bytes | str,
    *,
    max_bytes: int = MAX_BYTES,
    max_depth: int = MAX_DEPTH,
    max_nodes: int = MAX_YAML_NODES,
    what: str = "the body",
) -> list[Any]:
    """Decode every YAML document, in order; an empty document (`---` alone) gives None."""
    return _load_yaml(data, max_bytes, max_depth, max_nodes, what, single=False)
