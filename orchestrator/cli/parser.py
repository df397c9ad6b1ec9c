"""The `skiff` command line's parts: argparse that raises one-line UsageErrors, the global flags, and
Subcommands, the one way a verb module's `register(sub)` adds its verbs and their flags.

Each verb's parser carries, as defaults, what main dispatches on:
- `handler`: an async function of a Ctx (a verb that talks to the cluster), or
- `local`: a function of the parsed arguments (a verb that needs no cluster, e.g. `up`);
- `command_path`: its words ("set image"), for "see 'skiff set image --help'";
and, set by the verb module where it needs them:
- `check`: a function of the parsed arguments that may raise UsageError;
- `after_dashes`: the attribute that takes the words after "--" (only `run` accepts them).
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    from orchestrator.cli.common import Ctx

Handler = Callable[["Ctx"], Awaitable[int]]
Local = Callable[[argparse.Namespace], int]

GLOBAL_DEFAULTS = {
    "config": None,
    "server": None,
    "token": None,
    "ca_file": None,
    "insecure": False,
    "debug": False,
    "namespace": None,
    "request_timeout": "10s",
}


class UsageError(Exception):
    """A command line argparse rejected; printed as one line pointing at `--help`."""


class Parser(argparse.ArgumentParser):
    """argparse that raises UsageError (one line) instead of printing usage and exiting 2."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message}; see '{self.prog} --help'")


def global_flags(parser: argparse.ArgumentParser, suppress: bool) -> None:
    """The flags every verb takes too; `suppress` keeps a verb's copy from overriding the top-level value."""
    d = (lambda v: argparse.SUPPRESS) if suppress else (lambda v: v)
    g = parser.add_argument_group("global flags")
    g.add_argument(
        "--config", default=d(None), help="client config file (default $SKIFF_CONFIG or ~/.skiff/config.json)"
    )
    g.add_argument(
        "--server", "-s", default=d(None), help="master addresses HOST:PORT[,HOST:PORT...] (or $SKIFF_SERVER)"
    )
    g.add_argument("--token", default=d(None), help="bearer token (or $SKIFF_TOKEN)")
    g.add_argument(
        "--ca-file",
        default=d(None),
        help="CA that the masters' certificates are checked against (or $SKIFF_CA_FILE)",
    )
    g.add_argument(
        "--insecure",
        action="store_true",
        default=d(False),
        help="plaintext gRPC, for masters started with --insecure",
    )
    g.add_argument(
        "--debug", action="store_true", default=d(False), help="show the traceback of an unexpected error"
    )
    g.add_argument("-n", "--namespace", default=d(None), help="namespace (default: default)")
    g.add_argument("--request-timeout", default=d("10s"), help="give up on a call after this long (e.g. 5s)")


def all_namespaces_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("-A", "--all-namespaces", action="store_true", help="across all namespaces")


class Subcommands:
    """The subcommands of one parser: skiff's verbs, or those of a verb with its own (`set image`)."""

    def __init__(self, parser: argparse.ArgumentParser, dest: str, metavar: str, path: str = "") -> None:
        self._action = parser.add_subparsers(dest=dest, metavar=metavar, parser_class=Parser)
        self._path = path

    def add(
        self,
        name: str,
        help_: str,
        handler: Handler | None = None,
        *,
        local: Local | None = None,
        description: str | None = None,
    ) -> Parser:
        """A verb's parser, with the global flags; its help is also its description unless given."""
        p: Parser = self._action.add_parser(
            name, help=help_, description=help_ if description is None else description
        )
        global_flags(p, suppress=True)
        p.set_defaults(handler=handler, local=local, command_path=f"{self._path} {name}".strip())
        return p

    def group(self, name: str, help_: str, *, dest: str, metavar: str) -> Subcommands:
        """A verb that only has subcommands (`skiff set`, `skiff cluster`)."""
        return Subcommands(self.add(name, help_), dest, metavar, path=f"{self._path} {name}".strip())
