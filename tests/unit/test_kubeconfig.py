"""kubeconfig merge/remove rules, the file kubectl writes into, atomic 0600 saves, and real kubectl reads."""

from __future__ import annotations

import base64
import copy
import json
import os
import shutil
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from orchestrator import kubeconfig
from orchestrator.kubeconfig import Config

PEM = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
SKIFF = kubeconfig.entry("skiff", "https://127.0.31.1:6443", PEM, "token-1", namespace="default")
SKIFF_AGAIN = kubeconfig.entry("skiff", "https://127.0.33.1:6443", PEM, "token-2")


def named(section: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, section: body}


# Someone's existing kubeconfig: another cluster, current, with keys Skiff knows nothing about.
OTHER: Config = {
    "apiVersion": "v1",
    "kind": "Config",
    "clusters": [named("cluster", "prod", {"server": "https://10.0.0.1", "proxy-url": "http://proxy:3128"})],
    "users": [named("user", "prod", {"exec": {"command": "aws-iam"}})],
    "contexts": [named("context", "prod", {"cluster": "prod", "user": "prod"})],
    "current-context": "prod",
    "preferences": {"colors": True},
    "extensions": [{"name": "x", "extension": {"a": 1}}],
}


def summary(config: Config) -> dict[str, Any]:
    """What a merge or remove decides: the entries in order (with what tells versions apart) and current."""
    return {
        "clusters": [(c["name"], c["cluster"].get("server")) for c in config.get("clusters") or []],
        "users": [(u["name"], u["user"].get("token")) for u in config.get("users") or []],
        "contexts": [c["name"] for c in config.get("contexts") or []],
        "current": config.get("current-context"),
    }


def with_sections(base: Config, **sections: list[dict[str, Any]]) -> Config:
    return {**copy.deepcopy(base), **sections}


# ---------------------------------------------------------------------------------------------------
# entry


def test_entry_is_a_complete_config() -> None:
    assert SKIFF == {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "skiff",
                "cluster": {
                    "server": "https://127.0.31.1:6443",
                    "certificate-authority-data": base64.b64encode(PEM).decode(),
                },
            }
        ],
        "users": [{"name": "skiff", "user": {"token": "token-1"}}],
        "contexts": [
            {"name": "skiff", "context": {"cluster": "skiff", "user": "skiff", "namespace": "default"}}
        ],
        "current-context": "skiff",
        "preferences": {},
    }
    assert "namespace" not in SKIFF_AGAIN["contexts"][0]["context"]


# ---------------------------------------------------------------------------------------------------
# merge

MERGES: list[tuple[str, Config | None, Config, bool, dict[str, Any]]] = [
    (
        "into-nothing",
        None,
        SKIFF,
        True,
        {
            "clusters": [("skiff", "https://127.0.31.1:6443")],
            "users": [("skiff", "token-1")],
            "contexts": ["skiff"],
            "current": "skiff",
        },
    ),
    (
        "beside-an-unrelated-cluster",
        OTHER,
        SKIFF,
        True,
        {
            "clusters": [("prod", "https://10.0.0.1"), ("skiff", "https://127.0.31.1:6443")],
            "users": [("prod", None), ("skiff", "token-1")],
            "contexts": ["prod", "skiff"],
            "current": "skiff",
        },
    ),
    (
        "without-making-current",
        OTHER,
        SKIFF,
        False,
        {
            "clusters": [("prod", "https://10.0.0.1"), ("skiff", "https://127.0.31.1:6443")],
            "users": [("prod", None), ("skiff", "token-1")],
            "contexts": ["prod", "skiff"],
            "current": "prod",
        },
    ),
    (
        "re-merge-replaces",
        kubeconfig.merge(OTHER, SKIFF, make_current=False),
        SKIFF_AGAIN,
        True,
        {
            "clusters": [("prod", "https://10.0.0.1"), ("skiff", "https://127.0.33.1:6443")],
            "users": [("prod", None), ("skiff", "token-2")],
            "contexts": ["prod", "skiff"],
            "current": "skiff",
        },
    ),
    (
        "replaced-in-place",
        kubeconfig.merge(SKIFF, OTHER),
        SKIFF_AGAIN,
        False,
        {
            "clusters": [("skiff", "https://127.0.33.1:6443"), ("prod", "https://10.0.0.1")],
            "users": [("skiff", "token-2"), ("prod", None)],
            "contexts": ["skiff", "prod"],
            "current": "prod",
        },
    ),
    (
        "same-name-only-in-users",
        with_sections(OTHER, users=[named("user", "skiff", {"token": "stale"}), *OTHER["users"]]),
        SKIFF,
        True,
        {
            "clusters": [("prod", "https://10.0.0.1"), ("skiff", "https://127.0.31.1:6443")],
            "users": [("skiff", "token-1"), ("prod", None)],
            "contexts": ["prod", "skiff"],
            "current": "skiff",
        },
    ),
    (
        "duplicate-names-collapse",
        with_sections(
            OTHER,
            clusters=[named("cluster", "skiff", {"server": "a"}), named("cluster", "skiff", {"server": "b"})],
        ),
        SKIFF,
        True,
        {
            "clusters": [("skiff", "https://127.0.31.1:6443")],
            "users": [("prod", None), ("skiff", "token-1")],
            "contexts": ["prod", "skiff"],
            "current": "skiff",
        },
    ),
    (
        "null-lists-as-kubectl-writes-them",
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": None,
            "users": None,
            "contexts": None,
            "current-context": "",
        },
        SKIFF,
        True,
        {
            "clusters": [("skiff", "https://127.0.31.1:6443")],
            "users": [("skiff", "token-1")],
            "contexts": ["skiff"],
            "current": "skiff",
        },
    ),
    (
        "new-without-current-keeps-current",
        OTHER,
        {**SKIFF, "current-context": ""},
        True,
        {
            "clusters": [("prod", "https://10.0.0.1"), ("skiff", "https://127.0.31.1:6443")],
            "users": [("prod", None), ("skiff", "token-1")],
            "contexts": ["prod", "skiff"],
            "current": "prod",
        },
    ),
]


@pytest.mark.parametrize(
    ("existing", "new", "make_current", "want"), [c[1:] for c in MERGES], ids=[c[0] for c in MERGES]
)
def test_merge(existing: Config | None, new: Config, make_current: bool, want: dict[str, Any]) -> None:
    before = copy.deepcopy((existing, new))
    merged = kubeconfig.merge(existing, new, make_current=make_current)
    assert summary(merged) == want
    assert (existing, new) == before  # inputs untouched
    assert (merged["apiVersion"], merged["kind"]) == ("v1", "Config")


def test_merge_keeps_unknown_keys_and_the_other_entries_exactly() -> None:
    merged = kubeconfig.merge(OTHER, SKIFF)
    assert merged["extensions"] == OTHER["extensions"] and merged["preferences"] == {"colors": True}
    for section in ("clusters", "users", "contexts"):
        assert merged[section][0] == OTHER[section][0]
        assert merged[section][1] == SKIFF[section][0]
    assert list(merged) == list(OTHER)  # top-level key order kept
    merged["clusters"][1]["cluster"]["server"] = "changed"
    assert SKIFF["clusters"][0]["cluster"]["server"] == "https://127.0.31.1:6443"  # no shared structure


@pytest.mark.parametrize(
    "bad",
    [
        [1, 2],
        {"clusters": {"skiff": {}}},
        {"users": [{"user": {}}]},
        {"contexts": [{"name": "x", "context": "y"}]},
    ],
    ids=["not-a-mapping", "section-not-a-list", "entry-without-name", "body-not-a-mapping"],
)
def test_merge_rejects_malformed_configs(bad: Any) -> None:
    with pytest.raises(ValueError):
        kubeconfig.merge(bad, SKIFF)
    with pytest.raises(ValueError):
        kubeconfig.merge(OTHER, bad)


# ---------------------------------------------------------------------------------------------------
# remove

BOTH = kubeconfig.merge(OTHER, SKIFF)
REMOVES: list[tuple[str, Config, dict[str, str], dict[str, Any]]] = [
    (
        "current-cluster-removed-clears-current",
        BOTH,
        {},
        {
            "clusters": [("prod", "https://10.0.0.1")],
            "users": [("prod", None)],
            "contexts": ["prod"],
            "current": "",
        },
    ),
    (
        "other-current-kept",
        kubeconfig.merge(OTHER, SKIFF, make_current=False),
        {},
        {
            "clusters": [("prod", "https://10.0.0.1")],
            "users": [("prod", None)],
            "contexts": ["prod"],
            "current": "prod",
        },
    ),
    (
        "absent-name-is-a-no-op",
        OTHER,
        {},
        {
            "clusters": [("prod", "https://10.0.0.1")],
            "users": [("prod", None)],
            "contexts": ["prod"],
            "current": "prod",
        },
    ),
    (
        "same-name-only-in-users",
        with_sections(OTHER, users=[*OTHER["users"], named("user", "skiff", {"token": "stale"})]),
        {},
        {
            "clusters": [("prod", "https://10.0.0.1")],
            "users": [("prod", None)],
            "contexts": ["prod"],
            "current": "prod",
        },
    ),
    (
        "explicit-entry-names",
        with_sections(
            BOTH,
            clusters=[*BOTH["clusters"], named("cluster", "skiff-c", {"server": "s"})],
            users=[*BOTH["users"], named("user", "skiff-u", {"token": "t"})],
            contexts=[
                *BOTH["contexts"],
                named("context", "skiff-x", {"cluster": "skiff-c", "user": "skiff-u"}),
            ],
        ),
        {"cluster": "skiff-c", "user": "skiff-u", "context": "skiff-x"},
        {
            "clusters": [("prod", "https://10.0.0.1"), ("skiff", "https://127.0.31.1:6443")],
            "users": [("prod", None), ("skiff", "token-1")],
            "contexts": ["prod", "skiff"],
            "current": "skiff",  # it named "skiff", not the removed "skiff-x"
        },
    ),
    (
        "all-duplicates-removed",
        with_sections(BOTH, clusters=[*BOTH["clusters"], named("cluster", "skiff", {"server": "again"})]),
        {},
        {
            "clusters": [("prod", "https://10.0.0.1")],
            "users": [("prod", None)],
            "contexts": ["prod"],
            "current": "",
        },
    ),
    (
        "null-lists",
        {"apiVersion": "v1", "kind": "Config", "clusters": None, "current-context": "skiff"},
        {},
        {"clusters": [], "users": [], "contexts": [], "current": ""},
    ),
]


@pytest.mark.parametrize(("existing", "names", "want"), [c[1:] for c in REMOVES], ids=[c[0] for c in REMOVES])
def test_remove(existing: Config, names: dict[str, str], want: dict[str, Any]) -> None:
    before = copy.deepcopy(existing)
    removed = kubeconfig.remove(existing, "skiff", **names)
    assert summary(removed) == want
    assert existing == before
    assert {
        k: v for k, v in removed.items() if k not in ("clusters", "users", "contexts", "current-context")
    } == {k: v for k, v in existing.items() if k not in ("clusters", "users", "contexts", "current-context")}


def test_merge_then_remove_restores_the_unrelated_config() -> None:
    restored = kubeconfig.remove(kubeconfig.merge(OTHER, SKIFF, make_current=False), "skiff")
    assert restored == OTHER


# ---------------------------------------------------------------------------------------------------
# path_for_write

HOME = Path("/home/u")
PATHS: list[tuple[str, dict[str, str], set[str], str | None, str]] = [
    ("no-env-uses-home", {}, set(), None, "/home/u/.kube/config"),
    ("empty-env-uses-home", {"KUBECONFIG": ""}, set(), None, "/home/u/.kube/config"),
    ("only-separators-uses-home", {"KUBECONFIG": "::"}, set(), None, "/home/u/.kube/config"),
    ("single-missing-file", {"KUBECONFIG": "/k/a"}, set(), None, "/k/a"),
    ("single-existing-file", {"KUBECONFIG": "/k/a"}, {"/k/a"}, None, "/k/a"),
    ("none-exist-takes-last", {"KUBECONFIG": "/k/a:/k/b"}, set(), None, "/k/b"),
    ("first-existing-wins", {"KUBECONFIG": "/k/a:/k/b:/k/c"}, {"/k/b", "/k/c"}, None, "/k/b"),
    ("first-exists", {"KUBECONFIG": "/k/a:/k/b"}, {"/k/a", "/k/b"}, None, "/k/a"),
    ("empty-items-dropped", {"KUBECONFIG": ":/k/a::"}, set(), None, "/k/a"),
    ("repeats-dropped", {"KUBECONFIG": "/k/a:/k/a"}, set(), None, "/k/a"),
    ("relative-kept", {"KUBECONFIG": "kc"}, set(), None, "kc"),
    ("explicit-flag-wins", {"KUBECONFIG": "/k/a:/k/b"}, {"/k/a"}, "/flag/config", "/flag/config"),
]


@pytest.mark.parametrize(
    ("environ", "existing", "explicit", "want"), [c[1:] for c in PATHS], ids=[c[0] for c in PATHS]
)
def test_path_for_write(environ: dict[str, str], existing: set[str], explicit: str | None, want: str) -> None:
    def exists(path: Path) -> bool:
        return str(path) in existing

    assert kubeconfig.path_for_write(environ, HOME, explicit=explicit, exists=exists) == Path(want)


# ---------------------------------------------------------------------------------------------------
# load and save


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def files_in(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


@pytest.mark.parametrize(
    "content", [None, "", "\n", "# nothing yet\n"], ids=["missing", "empty", "blank", "comment-only"]
)
def test_load_of_nothing_is_an_empty_config(tmp_path: Path, content: str | None) -> None:
    path = tmp_path / "config"
    if content is not None:
        path.write_text(content)
    assert kubeconfig.load(path) == kubeconfig.empty()


def test_load_rejects_a_non_mapping(tmp_path: Path) -> None:
    (tmp_path / "config").write_text("- a\n- b\n")
    with pytest.raises(ValueError, match="mapping"):
        kubeconfig.load(tmp_path / "config")


def test_save_creates_kube_dir_0700_and_file_0600(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Record the file's mode while the token is being flushed into it, before the rename.
    modes_while_written: list[int] = []
    real_fsync = os.fsync

    def spy(fd: int) -> None:
        modes_while_written.append(stat.S_IMODE(os.fstat(fd).st_mode))
        real_fsync(fd)

    monkeypatch.setattr(kubeconfig.os, "fsync", spy)
    path = tmp_path / "home" / ".kube" / "config"
    (tmp_path / "home").mkdir()
    old = os.umask(0)
    try:
        kubeconfig.save(path, BOTH)
    finally:
        os.umask(old)
    assert (mode(path.parent), mode(path)) == (0o700, 0o600)
    assert modes_while_written == [0o600]
    assert kubeconfig.load(path) == BOTH
    assert files_in(path.parent) == ["config"]


def test_save_replaces_a_readable_file_with_a_0600_one(tmp_path: Path) -> None:
    path = tmp_path / "config"
    path.write_text("old: true\n")
    path.chmod(0o644)
    kubeconfig.save(path, SKIFF)
    assert mode(path) == 0o600 and kubeconfig.load(path) == SKIFF


def test_save_through_a_symlink_keeps_the_link(tmp_path: Path) -> None:
    real = tmp_path / "dotfiles" / "kubeconfig"
    real.parent.mkdir()
    real.write_text("")
    link = tmp_path / "config"
    link.symlink_to(real)
    kubeconfig.save(link, SKIFF)
    assert link.is_symlink() and kubeconfig.load(real) == SKIFF


@pytest.mark.parametrize("failure", ["unrepresentable-value", "rename-fails"], ids=str)
def test_a_failed_save_leaves_the_old_file_and_no_partial_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failure: str
) -> None:
    path = tmp_path / "config"
    kubeconfig.save(path, OTHER)
    before = path.read_bytes()
    config: Config = kubeconfig.merge(OTHER, SKIFF)
    expected: type[Exception] = yaml.YAMLError
    if failure == "unrepresentable-value":
        config["preferences"] = {"bad": object()}
    else:

        def fail(src: str, dst: str) -> None:
            raise OSError("disk full")

        monkeypatch.setattr(kubeconfig.os, "replace", fail)
        expected = OSError
    with pytest.raises(expected):
        kubeconfig.save(path, config)
    assert path.read_bytes() == before
    assert files_in(tmp_path) == ["config"]


# (value, quoted?): what Go's YAML 1.1 reader would not read back as that string gets quoted.
DUMPS = [
    *[(v, True) for v in ["y", "N", "on", "null", "true", "1e3", "0x1F", "017", "1_000", "-1", ".5", ""]],
    *[(v, False) for v in ["skiff", "https://127.0.0.1:1", "kind-y"]],
]


@pytest.mark.parametrize(("value", "quoted"), DUMPS, ids=[repr(v) for v, _ in DUMPS])
def test_dump_keeps_strings_strings(value: str, quoted: bool) -> None:
    rendered = kubeconfig.dump({"name": value})
    assert yaml.safe_load(rendered) == {"name": value}
    assert (rendered.removeprefix("name: ")[:1] in ("'", '"')) == quoted, rendered


# ---------------------------------------------------------------------------------------------------
# The real kubectl reads what we write

KUBECTL = shutil.which("kubectl")
needs_kubectl = pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed")


def kubectl(
    home: Path, *args: str, environ: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    assert KUBECTL is not None
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), **(environ or {})}
    return subprocess.run(
        ["timeout", "20", KUBECTL, *args], env=env, capture_output=True, text=True, timeout=30, check=False
    )


@needs_kubectl
@pytest.mark.parametrize(
    ("name", "token"), [("skiff", "s3cr3t-token"), ("y", "12e45")], ids=["plain", "yaml-1.1-lookalikes"]
)
def test_kubectl_reads_our_kubeconfig(tmp_path: Path, name: str, token: str) -> None:
    home = tmp_path / "home"
    home.mkdir()
    path = tmp_path / "kubeconfig"
    ours = kubeconfig.entry(name, "https://127.0.0.1:1", PEM, token, namespace="default")
    kubeconfig.save(path, kubeconfig.merge(OTHER, ours))

    view = kubectl(home, "config", "view", "--minify", "-o", "json", "--kubeconfig", str(path))
    assert view.returncode == 0, view.stderr
    assert json.loads(view.stdout) == {
        "kind": "Config",
        "apiVersion": "v1",
        "preferences": {"colors": True},  # the unrelated config's, kept
        "extensions": OTHER["extensions"],
        "clusters": [
            {
                "name": name,
                "cluster": {"server": "https://127.0.0.1:1", "certificate-authority-data": "DATA+OMITTED"},
            }
        ],
        "users": [{"name": name, "user": {"token": "REDACTED"}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name, "namespace": "default"}}],
        "current-context": name,
    }

    current = kubectl(home, "config", "current-context", "--kubeconfig", str(path))
    assert (current.returncode, current.stdout) == (0, f"{name}\n"), current.stderr

    raw = kubectl(home, "config", "view", "--raw", "-o", "json", "--kubeconfig", str(path))
    assert raw.returncode == 0, raw.stderr
    seen = json.loads(raw.stdout)
    assert [c["name"] for c in seen["clusters"]] == ["prod", name]  # the unrelated cluster survived
    cluster = next(c["cluster"] for c in seen["clusters"] if c["name"] == name)
    assert base64.b64decode(cluster["certificate-authority-data"]) == PEM
    assert next(u["user"] for u in seen["users"] if u["name"] == name) == {"token": token}


@needs_kubectl
@pytest.mark.parametrize(
    ("files", "existing"),
    [(["a"], []), (["a", "b"], []), (["a", "b", "c"], ["b", "c"]), (["a", "b"], ["a", "b"])],
    ids=["single-missing", "none-exist", "middle-exists", "both-exist"],
)
def test_kubectl_writes_into_the_file_path_for_write_names(
    tmp_path: Path, files: list[str], existing: list[str]
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    for name in existing:
        kubeconfig.save(tmp_path / name, OTHER)
    environ = {"KUBECONFIG": os.pathsep.join(str(tmp_path / f) for f in files)}
    predicted = kubeconfig.path_for_write(environ, home)

    done = kubectl(home, "config", "set-context", "probe", "--cluster=prod", environ=environ)
    assert done.returncode == 0, done.stderr
    written = [
        f for f in files if "probe" in [c["name"] for c in kubeconfig.load(tmp_path / f)["contexts"] or []]
    ]
    assert [tmp_path / f for f in written] == [predicted]
