"""`skiff`: kubectl's verbs for a Skiff cluster, plus `up`/`down`/`start`/`stop`/`kill` for a local one.

Every error is one line on stderr and exit status 1.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, NoReturn

from orchestrator import errors
from orchestrator.cli import commands as c
from orchestrator.cli.config import ConfigError, load_config
from orchestrator.cli.manifests import ManifestError
from orchestrator.model import DEFAULT_NAMESPACE, ValidationError


class UsageError(Exception):
    """A command line argparse rejected; printed as one line pointing at `--help`."""


class Parser(argparse.ArgumentParser):
    """argparse that raises UsageError (one line) instead of printing usage and exiting 2."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message}; see '{self.prog} --help'")


def _global_flags(parser: argparse.ArgumentParser, suppress: bool) -> None:
    d = (lambda v: argparse.SUPPRESS) if suppress else (lambda v: v)
    g = parser.add_argument_group("global flags")
    g.add_argument(
        "--config", default=d(None), help="client config file (default $SKIFF_CONFIG or ~/.skiff/config.json)"
    )
    g.add_argument(
        "--server", "-s", default=d(None), help="master addresses HOST:PORT[,HOST:PORT...] (or $SKIFF_SERVER)"
    )
    g.add_argument("--token", default=d(None), help="bearer token (or $SKIFF_TOKEN)")
    g.add_argument("-n", "--namespace", default=d(None), help="namespace (default: default)")
    g.add_argument("--request-timeout", default=d("10s"), help="give up on a call after this long (e.g. 5s)")


GLOBAL_DEFAULTS = {"config": None, "server": None, "token": None, "namespace": None, "request_timeout": "10s"}


def validate_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--validate",
        default=True,
        type=lambda v: v.lower() not in ("false", "0", "no"),
        help="check manifests against the schema before sending (the server always does); --validate=false",
    )


Handler = Callable[[c.Ctx], Awaitable[int]]


def build_parser() -> Parser:
    parser = Parser(prog="skiff", description="Command-line client of a Skiff cluster (kubectl's verbs).")
    _global_flags(parser, suppress=False)
    sub = parser.add_subparsers(dest="verb", metavar="COMMAND", parser_class=Parser)

    def cmd(name: str, help_: str, handler: Handler | None = None, **kw: Any) -> Parser:
        p = sub.add_parser(name, help=help_, description=help_, **kw)
        _global_flags(p, suppress=True)
        p.set_defaults(handler=handler, command_path=name)
        return p

    def all_ns(p: argparse.ArgumentParser) -> None:
        p.add_argument("-A", "--all-namespaces", action="store_true", help="across all namespaces")

    p = cmd("get", "Display one or many resources", c.cmd_get)
    p.add_argument("resources", nargs="*", metavar="TYPE[/NAME] [NAME...]")
    p.add_argument("-o", "--output", choices=["wide", "yaml", "json", "name"])
    p.add_argument("-l", "--selector", help="label selector, e.g. app=demo,tier!=db")
    p.add_argument("--field-selector", help="field selector, e.g. spec.nodeName=worker-1")
    p.add_argument("-w", "--watch", action="store_true", help="after listing, watch for changes")
    p.add_argument("--show-labels", action="store_true")
    p.add_argument("--no-headers", action="store_true")
    all_ns(p)

    p = cmd("describe", "Show details of a resource", c.cmd_describe)
    p.add_argument("resources", nargs="+", metavar="TYPE[/NAME] [NAME...]")
    p.add_argument("-l", "--selector")
    all_ns(p)

    p = cmd("apply", "Apply a configuration from files or stdin", c.cmd_apply)
    p.add_argument("-f", "--filename", action="append", required=True, help="file, directory or - (stdin)")
    validate_flag(p)

    p = cmd("create", "Create a resource from a file or from arguments", c.cmd_create)
    p.add_argument("what", nargs="?", metavar="TYPE", help="deployment or configmap")
    p.add_argument("name", nargs="?", metavar="NAME")
    p.add_argument("-f", "--filename", action="append")
    p.add_argument("--image")
    p.add_argument("--replicas", type=int)
    p.add_argument("--port", type=int)
    p.add_argument("--from-literal", action="append")
    validate_flag(p)

    p = cmd("delete", "Delete resources by file, type and name, or selector", c.cmd_delete)
    p.add_argument("resources", nargs="*", metavar="TYPE[/NAME] [NAME...]")
    p.add_argument("-f", "--filename", action="append")
    p.add_argument("-l", "--selector")
    p.add_argument("--all", action="store_true")
    p.add_argument("--ignore-not-found", action="store_true")
    all_ns(p)

    p = cmd("run", "Run an image in a Deployment (or a bare Pod with --restart=Never)", c.cmd_run)
    p.add_argument("name", metavar="NAME")
    p.add_argument("--image", required=True)
    p.add_argument("--port", type=int)
    p.add_argument("--replicas", type=int, default=1)
    p.add_argument("--labels", help="k=v,k2=v2 (default app=NAME)")
    p.add_argument("--env", action="append", help="KEY=VALUE (repeatable)")
    p.add_argument("--restart", default="Always", help="Always (Deployment), OnFailure or Never (Pod)")
    p.add_argument("--command", action="store_true", help="the arguments after -- are the command, not args")
    p.add_argument("cmd_args", nargs="*", metavar="-- ARGS")

    p = cmd("scale", "Set a new size for a deployment or replica set", c.cmd_scale)
    p.add_argument("resources", nargs="+", metavar="TYPE/NAME")
    p.add_argument("--replicas", type=int, required=True)

    p = cmd("expose", "Expose a deployment, pod or service as a new Service", c.cmd_expose)
    p.add_argument("resources", nargs="+", metavar="TYPE/NAME")
    p.add_argument("--port", type=int)
    p.add_argument("--target-port")
    p.add_argument("--type", default="ClusterIP", choices=["ClusterIP", "NodePort", "LoadBalancer"])
    p.add_argument("--name", dest="svc_name")
    p.add_argument("--protocol", default="TCP")
    p.add_argument("--node-port", type=int)

    p = cmd("set", "Set specific features on objects")
    setsub = p.add_subparsers(dest="set_what", metavar="image", parser_class=Parser)
    sp = setsub.add_parser(
        "image",
        help="Update the image of a pod template",
        description="skiff set image deployment/NAME CONTAINER=IMAGE",
    )
    _global_flags(sp, suppress=True)
    sp.add_argument("args", nargs="+", metavar="TYPE/NAME CONTAINER=IMAGE")
    sp.set_defaults(handler=c.cmd_set_image, command_path="set image")

    p = cmd("rollout", "Manage the rollout of a deployment", c.cmd_rollout)
    p.add_argument("action", choices=["status", "history", "undo", "restart"])
    p.add_argument("resources", nargs="+", metavar="TYPE/NAME")
    p.add_argument("--to-revision", type=int, default=0)
    p.add_argument("--revision", type=int, default=0)
    p.add_argument("--timeout", default="", help="status: give up after this long (e.g. 2m)")
    p.add_argument("-w", "--watch", dest="watch_status", default=True, type=lambda v: v.lower() != "false")

    p = cmd("logs", "Print the logs of a container", c.cmd_logs)
    p.add_argument("pod", metavar="POD | TYPE/NAME")
    p.add_argument("-c", "--container")
    p.add_argument("-f", "--follow", action="store_true")
    p.add_argument("--tail", type=int)
    p.add_argument("-p", "--previous", action="store_true")

    for verb, text in (("cordon", "Mark node as unschedulable"), ("uncordon", "Mark node as schedulable")):
        p = cmd(verb, text, c.cmd_cordon)
        p.add_argument("nodes", nargs="+", metavar="NODE")

    p = cmd("drain", "Cordon a node and evict its pods", c.cmd_drain)
    p.add_argument("node", metavar="NODE")
    p.add_argument("--ignore-daemonsets", action="store_true")
    p.add_argument("--force", action="store_true", help="also delete pods without a controller")
    p.add_argument("--delete-emptydir-data", action="store_true", help="accepted for kubectl compatibility")
    p.add_argument("--timeout", default="120s")

    for verb in ("label", "annotate"):
        p = cmd(
            verb,
            f"Update the {verb}s on a resource"
            if verb == "label"
            else "Update the annotations on a resource",
            c.cmd_label,
        )
        p.add_argument("args", nargs="+", metavar="TYPE/NAME KEY=VAL|KEY-")
        p.add_argument("--overwrite", action="store_true")

    cmd("version", "Print the client and server versions", c.cmd_version)
    cmd("cluster-info", "Display addresses of the masters and the balancer", c.cmd_cluster_info)
    p = cmd("cluster", "Cluster-level information")
    csub = p.add_subparsers(dest="cluster_what", metavar="status", parser_class=Parser)
    sp = csub.add_parser(
        "status",
        help="Every master's Raft view, and the balancer's health",
        description="Every master's Raft view, and the balancer's health",
    )
    _global_flags(sp, suppress=True)
    sp.set_defaults(handler=c.cmd_cluster_status, command_path="cluster status")

    from orchestrator.cli import launcher

    launcher.add_commands(sub, lambda p: _global_flags(p, suppress=True))
    return parser


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _check_words(parser: argparse.ArgumentParser, argv: list[str]) -> None:
    """Name an unknown command or flag before argparse's longer messages (e.g. a missing required flag)."""
    path = ["skiff"]
    current = parser
    i = 0
    while i < len(argv):
        word = argv[i]
        if word == "--":
            break
        subs = _subparsers(current)
        takes_value = {
            o for a in current._actions if a.option_strings and a.nargs != 0 for o in a.option_strings
        }
        if word.startswith("-") and len(word) > 1 and not word[1:2].isdigit():
            flag = word.split("=", 1)[0]
            known = {o for a in current._actions for o in a.option_strings}
            if flag not in known and not (flag[:2] in known and not flag.startswith("--")):
                where = " ".join(path)
                raise UsageError(f"unknown flag {flag}; see '{where} --help'")
            if (
                flag in takes_value
                and "=" not in word
                and not (flag[:2] != flag and not flag.startswith("--"))
            ):
                i += 1
        elif subs:
            if word not in subs:
                raise UsageError(
                    f'unknown command "{word}" for "{" ".join(path)}"; see \'{" ".join(path)} --help\''
                )
            current = subs[word]
            path.append(word)
        i += 1


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = build_parser()
    argv = list(argv)
    # Everything after "--" belongs to the container (skiff run NAME ... -- CMD ARGS), never to argparse.
    after: list[str] | None = None
    if "--" in argv:
        i = argv.index("--")
        argv, after = argv[:i], argv[i + 1 :]
    _check_words(parser, argv)
    args, extra = parser.parse_known_args(argv)
    if after is not None:
        if getattr(args, "verb", None) != "run":
            raise UsageError(
                f"unexpected arguments after '--'; see 'skiff {getattr(args, 'command_path', '')} --help'"
            )
        args.cmd_args = list(args.cmd_args or []) + after
    path = getattr(args, "command_path", None) or "skiff"
    if extra:
        flag = next((x for x in extra if x.startswith("-")), None)
        where = f"skiff {path}" if path != "skiff" else "skiff"
        if flag:
            raise UsageError(f"unknown flag {flag.split('=', 1)[0]}; see '{where} --help'")
        raise UsageError(f"unexpected argument {extra[0]!r}; see '{where} --help'")
    if getattr(args, "verb", None) == "get" and not args.resources:
        raise UsageError("you must specify the type of resource to get, e.g. 'skiff get pods'")
    for k, v in GLOBAL_DEFAULTS.items():
        if not hasattr(args, k):
            setattr(args, k, v)
    if getattr(args, "handler", None) is None and not getattr(args, "launcher", None):
        if args.verb is None:
            raise UsageError("a command is required; see 'skiff --help'")
        raise UsageError(f"a subcommand is required; see 'skiff {args.verb} --help'")
    return args


async def _run(args: argparse.Namespace) -> int:
    from orchestrator.client import ApiClient

    config = load_config(args.config, args.server, args.token)
    timeout = c.parse_duration(args.request_timeout)
    namespace = args.namespace or os.environ.get("SKIFF_NAMESPACE") or DEFAULT_NAMESPACE
    client = ApiClient(config.masters, config.token, timeout=timeout, call_timeout=min(timeout, 5.0))
    ctx = c.Ctx(args, config, client, namespace, all_namespaces=bool(getattr(args, "all_namespaces", False)))
    try:
        return await args.handler(ctx)
    except errors.SkiffError as e:
        raise _WithConfig(e, config) from None
    finally:
        await client.close()


class _WithConfig(Exception):
    def __init__(self, error: BaseException, config: Any) -> None:
        super().__init__(str(error))
        self.error = error
        self.config = config


def fail(line: str) -> int:
    print(line, file=sys.stderr, flush=True)
    return 1


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        args = parse_args(argv)
    except UsageError as e:
        return fail(f"error: {e}")
    try:
        if getattr(args, "launcher", None):
            return int(args.launcher(args))
        return asyncio.run(_run(args))
    except KeyboardInterrupt:
        return 130
    except _WithConfig as e:
        return fail(c.format_error(e.error, e.config))
    except (c.CliError, ConfigError, ManifestError, ValidationError, c.FileInvalid, errors.SkiffError) as e:
        return fail(c.format_error(e))
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
