"""Client config precedence: --config > $SKIFF_CONFIG > ~/.skiff/config.json; --server/--token override."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator.cli.config import ConfigError, load_config


def write(path: Path, masters: list[str], token: str) -> str:
    path.write_text(
        json.dumps({"masters": masters, "token": token, "lb": {"address": "127.0.0.1", "httpPort": 8080}})
    )
    return str(path)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / ".skiff").mkdir()
    write(tmp_path / ".skiff" / "config.json", ["home:1"], "home-token")
    return tmp_path


def test_default_is_home(home: Path) -> None:
    cfg = load_config(env={})
    assert (cfg.masters, cfg.token, cfg.lb_http_address) == (["home:1"], "home-token", "127.0.0.1:8080")


def test_env_config_beats_home_and_flag_beats_env(home: Path) -> None:
    env_file = write(home / "env.json", ["env:1"], "env-token")
    flag_file = write(home / "flag.json", ["flag:1"], "flag-token")
    assert load_config(env={"SKIFF_CONFIG": env_file}).masters == ["env:1"]
    assert load_config(flag_file, env={"SKIFF_CONFIG": env_file}).masters == ["flag:1"]


def test_server_and_token_override(home: Path) -> None:
    env = {"SKIFF_SERVER": "e:1,e:2", "SKIFF_TOKEN": "env-tok"}
    assert load_config(env=env).masters == ["e:1", "e:2"]
    assert load_config(env=env).token == "env-tok"
    cfg = load_config(server="s:1", token="flag-tok", env=env)
    assert (cfg.masters, cfg.token) == (["s:1"], "flag-tok")
    assert load_config(token="", env=env).token == ""


def test_missing_explicit_config_and_no_masters(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(str(tmp_path / "nope.json"), env={})
    with pytest.raises(ConfigError, match="no masters configured"):
        load_config(env={})
    assert load_config(server="x:1", env={}).masters == ["x:1"]
