"""`skiff`: kubectl's verbs for a Skiff cluster, plus `up`/`down`/`start`/`stop`/`kill` for a local one.

Every error is one line on stderr and exit status 1.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import traceback
from collections.abc import Sequence
from typing import Any

from orchestrator import errors
from orchestrator.cli import (
    apply,
    certs,
    cluster,
    expose,
    get,
    label,
    launcher,
    logs,
    nodes,
    rollout,
    run,
    scale,
    set_image,
)
from orchestrator.cli.common import (
    MAX_DURATION,
    CliError,
    Ctx,
    FileInvalid,
    format_error,
    one_line,
    parse_duration,
)
from orchestrator.cli.config import ConfigError, load_config
from orchestrator.cli.manifests import ManifestError
from orchestrator.cli.parser import GLOBAL_DEFAULTS, Parser, Subcommands, UsageError, global_flags
from orchestrator.model import DEFAULT_NAMESPACE, ValidationError

# Every verb module, in the order `skiff --help` lists their verbs; each adds its own with register(sub).
VERBS = (get, apply, run, scale, expose, set_image, rollout, logs, nodes, label, cluster, launcher, certs)


def build_parser() -> Parser:
    parser = Parser(prog="skiff", description="Command-line client of a Skiff cluster (kubectl's verbs).")
    global_flags(parser, suppress=False)
    sub = Subcommands(parser, dest="verb", metavar="COMMAND")
    for verbs in VERBS:
        verbs.register(sub)
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
    # Everything after "--" belongs to the verb's after_dashes (skiff run NAME ... -- CMD ARGS), never to
    # argparse.
    after: list[str] | None = None
    if "--" in argv:
        i = argv.index("--")
        argv, after = argv[:i], argv[i + 1 :]
    _check_words(parser, argv)
    args, extra = parser.parse_known_args(argv)
    if after is not None:
        dest = getattr(args, "after_dashes", None)
        if dest is None:
            raise UsageError(
                f"unexpected arguments after '--'; see 'skiff {getattr(args, 'command_path', '')} --help'"
            )
        setattr(args, dest, list(getattr(args, dest) or []) + after)
    path = getattr(args, "command_path", None) or "skiff"
    if extra:
        flag = next((x for x in extra if x.startswith("-")), None)
        where = f"skiff {path}" if path != "skiff" else "skiff"
        if flag:
            raise UsageError(f"unknown flag {flag.split('=', 1)[0]}; see '{where} --help'")
        raise UsageError(f"unexpected argument {extra[0]!r}; see '{where} --help'")
    check = getattr(args, "check", None)
    if check is not None:
        check(args)
    for k, v in GLOBAL_DEFAULTS.items():
        if not hasattr(args, k):
            setattr(args, k, v)
    if getattr(args, "handler", None) is None and getattr(args, "local", None) is None:
        if args.verb is None:
            raise UsageError("a command is required; see 'skiff --help'")
        raise UsageError(f"a subcommand is required; see 'skiff {args.verb} --help'")
    return args


async def _run(args: argparse.Namespace) -> int:
    from orchestrator.client import ApiClient

    config = load_config(args.config, args.server, args.token, ca_file=args.ca_file, insecure=args.insecure)
    timeout = parse_duration(args.request_timeout) or MAX_DURATION  # 0: no timeout, as kubectl
    namespace = args.namespace or os.environ.get("SKIFF_NAMESPACE") or DEFAULT_NAMESPACE
    client = ApiClient(
        config.masters, config.token, tls=config.tls(), timeout=timeout, call_timeout=min(timeout, 5.0)
    )
    ctx = Ctx(args, config, client, namespace, all_namespaces=bool(getattr(args, "all_namespaces", False)))
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
    """Print an error as one line (escaped, cut: it may quote a huge or hostile argument); status 1."""
    print(one_line(line), file=sys.stderr, flush=True)
    return 1


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        args = parse_args(argv)
    except UsageError as e:
        return fail(f"error: {e}")
    try:
        if args.local is not None:
            return int(args.local(args))
        return asyncio.run(_run(args))
    except KeyboardInterrupt:
        return 130
    except UsageError as e:
        return fail(f"error: {e}")
    except _WithConfig as e:
        return fail(format_error(e.error, e.config))
    except (CliError, ConfigError, ManifestError, ValidationError, FileInvalid, errors.SkiffError) as e:
        return fail(format_error(e))
    except BrokenPipeError:
        return 0
    except Exception as e:  # a bug: one line, and the traceback only when asked for
        if args.debug:
            traceback.print_exc()
        text = " ".join(f"{type(e).__name__}: {e}".split())[:300]
        return fail(f"error: internal error: {text} (run with --debug for the traceback)")


if __name__ == "__main__":
    sys.exit(main())
