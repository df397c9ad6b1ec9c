"""Bytes before structure: bounded, strict decoding of JSON and YAML bodies, one-line refusals."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator import decoding
from orchestrator.decoding import (
    MAX_BYTES,
    DecodeError,
    load_json,
    load_yaml,
    load_yaml_all,
    quote,
)

LOADERS = [load_json, load_yaml, load_yaml_all]
BILLION_LAUGHS = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + "".join(
    f"{c}: &{c} [" + ", ".join([f"*{p}"] * 10) + "]\n" for p, c in zip("abcdefgh", "bcdefghi", strict=True)
)


@pytest.fixture(params=["libyaml", "python"])
def yaml_parser(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a YAML test with libyaml's parser and again with PyYAML's pure-Python fallback."""
    if request.param == "python":
        monkeypatch.setattr(decoding, "_LOADER", yaml.SafeLoader)
    return str(request.param)


def refusal(load: Callable[..., Any], data: Any, **kw: Any) -> DecodeError:
    """The DecodeError `load` raises for `data`, checked to be one line."""
    with pytest.raises(DecodeError) as info:
        load(data, **kw)
    assert "\n" not in str(info.value) and "\r" not in str(info.value)
    return info.value


def elapsed(f: Callable[[], object]) -> float:
    start = time.perf_counter()
    try:
        f()
    except DecodeError:
        pass
    return time.perf_counter() - start


# --- size and encoding, checked before any parsing ---


@pytest.mark.parametrize("load", LOADERS)
def test_size_limit(load: Callable[..., Any]) -> None:
    assert load(b"[1, 22]", max_bytes=7) in ([1, 22], [[1, 22]])
    e = refusal(load, b"[1, 222]", max_bytes=7, what="the manifest")
    assert str(e) == "the manifest is 8 bytes; the limit is 7 bytes"
    assert e.too_large and e.limit
    e = refusal(load, "[\u00e9\u00e9]", max_bytes=5)  # 4 characters, 6 bytes in UTF-8
    assert "is 6 bytes" in str(e) and e.too_large


@pytest.mark.parametrize("load", LOADERS)
def test_a_50_mb_body_is_refused_without_parsing(load: Callable[..., Any]) -> None:
    big = b"[" * (50 * 1024 * 1024)
    assert elapsed(lambda: load(big)) < 1.0
    assert "limit is 3145728 bytes" in str(refusal(load, big))


@pytest.mark.parametrize("load", LOADERS)
def test_utf8_only(load: Callable[..., Any]) -> None:
    assert load('["caf\u00e9"]'.encode()) in (["caf\u00e9"], [["caf\u00e9"]])
    e = refusal(load, b"\xff")
    assert str(e) == "the body is not valid UTF-8: invalid byte 0xff at offset 0" and not e.limit
    assert "invalid byte 0xe9 at offset 5" in str(refusal(load, b'["caf\xe9"]'))  # Latin-1


@pytest.mark.parametrize("load", LOADERS)
def test_a_str_with_a_lone_surrogate_is_refused(load: Callable[..., Any]) -> None:
    assert "invalid Unicode (a lone surrogate) at offset 2" in str(refusal(load, '["\ud800"]'))


@pytest.mark.parametrize("load", LOADERS)
def test_only_bytes_or_str(load: Callable[..., Any]) -> None:
    assert "must be bytes or str, not int" in str(refusal(load, 5))
    assert load(bytearray(b"[1]")) in ([1], [[1]])


# --- JSON ---


def test_json_surrogate_escapes() -> None:
    assert load_json('"\\ud83d\\ude00"') == "\U0001f600"  # a pair is one character
    assert str(refusal(load_json, b'"\\ud800"')) == "the body: invalid Unicode (a lone surrogate) at $"
    e = refusal(load_json, b'{"a": [1, {"b": "x\\udc00"}]}')
    assert "lone surrogate) at $.a[1].b" in str(e)
    assert "in a key at $.a" in str(refusal(load_json, b'{"a": {"\\ud800": 1}}'))
    assert load_json(b'"\\\\ud800"') == "\\ud800"  # an escaped backslash, then plain text


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_json_has_no_nan_or_infinity(constant: str) -> None:
    assert str(refusal(load_json, f"[1, {constant}]")) == f"the body: {constant} is not valid JSON"
    assert load_json(f'["{constant}"]') == [constant]


def test_json_numbers_out_of_range() -> None:
    assert load_json("[1.5e300, -2]") == [1.5e300, -2]
    assert 'the number "1e999" is out of range' in str(refusal(load_json, "[1e999]"))
    assert "not valid JSON: Exceeds the limit" in str(refusal(load_json, "1" * 5000))


def test_json_duplicate_keys() -> None:
    assert load_json(b'{"a": {"x": 1}, "b": {"x": 2}}') == {"a": {"x": 1}, "b": {"x": 2}}
    assert str(refusal(load_json, b'{"a": 1, "a": 2}')) == 'the body: duplicate key "a" at $'
    e = refusal(load_json, b'{"spec": {"app.kubernetes.io/x": [{"n": 1, "m": 0, "n": 2}]}}')
    assert str(e) == 'the body: duplicate key "n" at $.spec["app.kubernetes.io/x"][0]'


def test_json_syntax_errors() -> None:
    e = refusal(load_json, b"[1, 2 3]")
    assert str(e) == "the body is not valid JSON: Expecting ',' delimiter: line 1 column 7 (char 6)"
    assert "not valid JSON: Expecting value" in str(refusal(load_json, b""))
    assert "Invalid control character" in str(refusal(load_json, '"a\nb"'))  # strict=True


def test_json_depth() -> None:
    assert load_json("[" * 100 + "]" * 100) is not None
    e = refusal(load_json, "[" * 101 + "]" * 101)
    assert str(e) == "the body is nested more than 100 levels deep" and e.limit and not e.too_large
    assert refusal(load_json, '{"a":' * 3 + "1}}}", max_depth=2).limit
    # Brackets inside strings, escaped quotes and backslashes included, are not nesting.
    assert load_json('["' + "[{" * 1000 + '"]') == ["[{" * 1000]
    assert load_json('["\\"' + "[" * 1000 + '\\\\", "x"]') == ['"' + "[" * 1000 + "\\", "x"]


@pytest.mark.parametrize("deep", ["[" * 200_000, '{"a":' * 200_000, "[" * 200_000 + "]" * 200_000])
def test_very_deep_json_is_too_deep_not_a_recursion_error(deep: str) -> None:
    assert refusal(load_json, deep).limit
    assert elapsed(lambda: load_json(deep)) < 1.0


def test_a_3_mib_json_document_decodes_quickly() -> None:
    items = [{"name": f"pod-{i}", "labels": {"app": "web"}, "ports": [80, 443]} for i in range(45_000)]
    body = json.dumps({"items": items}).encode()
    assert 3_000_000 < len(body) <= MAX_BYTES
    assert elapsed(lambda: load_json(body)) < 1.0
    assert load_json(body)["items"][-1]["name"] == "pod-44999"


# --- YAML ---


@pytest.mark.usefixtures("yaml_parser")
def test_yaml_documents() -> None:
    stream = "a: 1\n---\n---\n- b\n...\n--- c\n"
    assert load_yaml_all(stream) == [{"a": 1}, None, ["b"], "c"]
    assert load_yaml_all(b"") == [] and load_yaml(b"") is None and load_yaml("# only a comment\n") is None
    assert load_yaml("a: 1\n") == {"a": 1}
    assert "holds more than one YAML document" in str(refusal(load_yaml, stream))


@pytest.mark.usefixtures("yaml_parser")
def test_yaml_types_are_json_types() -> None:
    doc = "d: 2024-01-01\nt: 2001-12-14t21:59:43.10-05:00\nn: [1, 0x10, 1.5, ~, yes, 'yes', '1']\n"
    assert load_yaml(doc) == {
        "d": "2024-01-01",
        "t": "2001-12-14t21:59:43.10-05:00",
        "n": [1, 16, 1.5, None, True, "yes", "1"],
    }
    assert load_yaml("!!str 12") == "12" and load_yaml("! 12") == "12" and load_yaml("!!int '12'") == 12


@pytest.mark.parametrize(
    ("doc", "phrase"),
    [
        ("a: !!timestamp 2024-01-01", 'line 1: the YAML tag "!!timestamp" is not supported'),
        ("a: !!binary aGk=", '"!!binary" is not supported'),
        ("!!python/object:os.system ls", '"!!python/object:os.system" is not supported'),
        ("a: !!set {x: ~}", '"!!set" is not supported'),
        ("a: !Ref x", '"!Ref" is not supported'),
        ("a: !!int abc", '"abc" is not a valid int'),
        ("a:\n  b: .nan", 'line 2: ".nan" is not a finite number'),
        ("a: -.inf", "not a finite number"),
        ("a: 0x" + "f" * 20, "is out of range"),
    ],
)
@pytest.mark.usefixtures("yaml_parser")
def test_yaml_refuses_what_json_cannot_hold(doc: str, phrase: str) -> None:
    assert phrase in str(refusal(load_yaml, doc))


@pytest.mark.usefixtures("yaml_parser")
def test_yaml_keys_become_strings_as_kubernetes_makes_them() -> None:
    assert load_yaml("1: a\ntrue: b\n1.5: c\n2.0: d\n") == {"1": "a", "true": "b", "1.5": "c", "2": "d"}
    assert "line 2: a mapping key must be a string, not a list" in str(
        refusal(load_yaml, "a: 1\n? [a]\n: b\n")
    )
    assert "a mapping key must be a string, not a mapping" in str(refusal(load_yaml, "{{a: 1}: b}"))
    assert "a mapping key must be a string, not null" in str(refusal(load_yaml, "~: x"))
    assert "not a list" in str(refusal(load_yaml, "k: &k [1]\n? *k\n: v\n"))


@pytest.mark.usefixtures("yaml_parser")
def test_yaml_duplicate_keys_name_the_line() -> None:
    doc = "apiVersion: apps/v1\nkind: Deployment\nspec:\n  replicas: 1\n  replicas: 2\n"
    assert str(refusal(load_yaml, doc)) == 'the body: line 5: key "replicas" already set in map'
    assert 'key "1" already set' in str(refusal(load_yaml, "1: a\n'1': b\n"))  # the same once a string
    assert load_yaml("a: {x: 1}\nb: {x: 2}\n") == {"a": {"x": 1}, "b": {"x": 2}}


@pytest.mark.usefixtures("yaml_parser")
def test_yaml_aliases_and_merges() -> None:
    doc = "base: &b {a: 1, b: 2}\nx: {<<: *b, b: 3}\ny:\n  <<: [{c: 1}, *b, {a: 9}]\nz: [*b, '<<']\n"
    got = load_yaml(doc)
    assert got["x"] == {"a": 1, "b": 3} and got["y"] == {"c": 1, "a": 1, "b": 2}
    assert got["z"] == [{"a": 1, "b": 2}, "<<"]
    assert "a YAML merge (<<) takes a mapping" in str(refusal(load_yaml, "a: {<<: 1}"))
    assert load_yaml("a: &x [1]\nb: &x 2\nc: *x\n") == {"a": [1], "b": 2, "c": 2}  # the latest anchor
    assert "line 2: the YAML alias *nope is not defined" in str(refusal(load_yaml, "a: 1\nb: *nope\n"))


@pytest.mark.usefixtures("yaml_parser")
def test_a_recursive_alias_is_refused() -> None:
    assert "line 1: the YAML alias *a refers to a node that contains it" in str(refusal(load_yaml, "&a [*a]"))
    assert "refers to a node that contains it" in str(refusal(load_yaml, "a: &a\n  b:\n    c: *a\n"))
    assert load_yaml("a: &a [&a x, *a]") == {"a": ["x", "x"]}  # *a is the later, finished anchor


@pytest.mark.usefixtures("yaml_parser")
def test_billion_laughs_is_refused_quickly() -> None:
    e = refusal(load_yaml, BILLION_LAUGHS)
    assert str(e) == "the body expands to more than 1000000 YAML nodes (aliases count each use)" and e.limit
    assert elapsed(lambda: load_yaml(BILLION_LAUGHS)) < 1.0
    shared = "a: &a [x, y]\nb: [*a, *a]\n"  # 13 nodes: 7 written, and 3 for each use of *a
    assert load_yaml(shared, max_nodes=13) == {"a": ["x", "y"], "b": [["x", "y"]] * 2}
    assert refusal(load_yaml, shared, max_nodes=12).limit
    assert refusal(load_yaml_all, "[a, b]\n---\n[c, d]\n", max_nodes=5).limit  # counted over the stream


@pytest.mark.parametrize(
    "deep",
    [
        "{a: " * 5000 + "}" * 5000,
        "[" * 5000 + "]" * 5000,
        "[" * 300_000,
        "- " * 5000 + "x",
        "a:\n" + "".join(" " * i + "a:\n" for i in range(1, 200)),
    ],
)
def test_deep_yaml_is_refused(deep: str, yaml_parser: str) -> None:
    e = refusal(load_yaml, deep)
    assert str(e) == "the body is nested more than 100 levels deep" and e.limit
    if yaml_parser == "libyaml":  # PyYAML's Python scanner is slower here, though bounded (~0.5 s)
        assert elapsed(lambda: load_yaml(deep)) < 1.0


@pytest.mark.usefixtures("yaml_parser")
def test_yaml_depth_counts_through_aliases() -> None:
    nested = "[" * 60 + "]" * 60
    assert load_yaml(f"a: &x {nested}\nb: {{c: *x}}\n") is not None
    assert refusal(load_yaml, f"a: &x {nested}\nb: {'[' * 40}*x{']' * 40}\n").limit
    assert load_yaml("[" * 100 + "]" * 100) is not None


@pytest.mark.usefixtures("yaml_parser")
def test_yaml_syntax_errors_are_one_line() -> None:
    assert "the body is not valid YAML: line 1: mapping values are not allowed" in str(
        refusal(load_yaml, "a: b: c")
    )
    e = refusal(load_yaml, "a:\n  - b\n c: d\n", what="web.yaml")
    assert str(e).startswith("web.yaml is not valid YAML: line 3: ")
    tab = str(refusal(load_yaml, "a:\n\tb: c\n"))  # the Python parser quotes the tab: escaped
    assert "line 2: found character" in tab and "that cannot start any token" in tab
    assert str(DecodeError("a\tb\nc\u2028")) == "a\\tb\\nc\\u2028"  # control characters escaped
    assert "not valid YAML: unacceptable character #x0000" in str(refusal(load_yaml, "a: b\x00"))


def test_yaml_surrogate_escapes(yaml_parser: str) -> None:
    assert load_yaml('a: "\\U0001F600 \\u00e9"') == {"a": "\U0001f600 \u00e9"}
    e = str(refusal(load_yaml, 'a: "\\ud800"'))
    if yaml_parser == "libyaml":  # libyaml refuses the escape itself; Python's parser decodes it
        assert "not valid YAML: line 1: found invalid Unicode character escape code" in e
    else:
        assert e == "the body: line 1: invalid Unicode (a lone surrogate)"


# --- robustness and quote() ---


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64) | st.text(max_size=64).map(str.encode))
def test_only_decode_errors_escape(data: bytes) -> None:
    for load in LOADERS:
        try:
            load(data)
        except DecodeError as e:
            assert "\n" not in str(e)


def test_quote() -> None:
    assert quote("web") == '"web"'
    assert quote("x" * 50_000_000) == '"' + "x" * 40 + '"...'
    assert quote("\ud800\n") == '"\\ud800\\n"' and quote("\ud800\n").isascii()
    assert quote("caf\u00e9\u2028", limit=10) == '"caf\\u00e9\\u2028"'
    assert quote({"a": [1, 2]}) == '{"a": [1, 2]}' and quote(3) == "3"
    assert quote(list(range(100)), limit=10) == "[0, 1, 2, ..."
    loop: list[Any] = []
    loop.append(loop)
    assert quote(loop) == "<unprintable list>"
    assert quote(object()).startswith('"<object object')
