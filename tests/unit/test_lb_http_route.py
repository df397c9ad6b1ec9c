"""Parsing the first request head on the HTTP entry port."""

from __future__ import annotations

import pytest

from lb.http_route import HeadError, head_end, parse_head, response


@pytest.mark.parametrize(
    ("raw", "method", "path", "host"),
    [
        pytest.param(b"GET / HTTP/1.1\r\nHost: demo.local\r\n\r\n", "GET", "/", "demo.local", id="simple"),
        pytest.param(
            b"GET /a/b?x=1#f HTTP/1.1\r\nhost: Demo.Local:8080\r\n\r\n",
            "GET",
            "/a/b",
            "demo.local",
            id="query-port-case",
        ),
        pytest.param(b"POST /x HTTP/1.0\r\nUser-Agent: t\r\n\r\n", "POST", "/x", "", id="no-host"),
        pytest.param(
            b"GET http://abs.local:81/p/q HTTP/1.1\r\n\r\n", "GET", "/p/q", "abs.local", id="absolute-form"
        ),
        pytest.param(b"GET / HTTP/1.1\nHost: lf.local\n\n", "GET", "/", "lf.local", id="bare-lf"),
        pytest.param(b"GET / HTTP/1.1\r\nHost: [::1]:80\r\n\r\n", "GET", "/", "[::1]", id="ipv6-host"),
    ],
)
def test_parse_head(raw: bytes, method: str, path: str, host: str) -> None:
    end = head_end(raw)
    assert end == len(raw)
    head = parse_head(raw[:end])
    assert (head.method, head.path, head.host) == (method, path, host)


@pytest.mark.parametrize(
    "raw", [b"hello\r\n\r\n", b"GET /\r\n\r\n", b"GET / SPDY/3\r\n\r\n", b"GET / HTTP/1.1\r\nbroken\r\n\r\n"]
)
def test_bad_heads(raw: bytes) -> None:
    with pytest.raises(HeadError):
        parse_head(raw)


def test_incomplete_head() -> None:
    assert head_end(b"GET / HTTP/1.1\r\nHost: x\r\n") == -1


def test_response() -> None:
    r = response(404, "Not Found", "nope\n")
    assert r.startswith(b"HTTP/1.1 404 Not Found\r\n") and r.endswith(b"\r\n\r\nnope\n")
    assert b"content-length: 5\r\n" in r
