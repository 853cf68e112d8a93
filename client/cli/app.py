"""Running a command: parse, dispatch to its handler, and turn failures into one line.

Exit statuses: 0 done, 1 failed (the system said no, or is unreachable), 2 a usage mistake
or input the API rejects as bad (a `bad-input` problem), 130 interrupted. No stack traces
for anything a user can act on. A reader that stops early (`refundflow list | head -1`)
ends the command quietly, with status 0.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Callable, Sequence

from client.cli.acting import DevTokens
from client.cli.arguments import EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, UserError
from client.cli.commands import CLIENT_COMMANDS, build_parser
from client.cli.handlers import HANDLERS, Handler
from client.cli.usage_hints import DIRECT
from client.errors import InvalidRefundRequest, RefundflowError, TemporalUnavailable
from client.settings import ConfigurationError, find_stack


def call(handler: Handler, args: argparse.Namespace) -> int:
    """Run a handler, in a fresh event loop if it is a coroutine function."""
    result = handler(args)
    return result if isinstance(result, int) else asyncio.run(result)


def report(message: str, status: int, as_json: bool = False) -> int:
    """One line on stderr: `error: ...`, or with --json the same as a JSON object."""
    if as_json:
        print(json.dumps({"error": message, "exit_status": status}), file=sys.stderr)
    else:
        print(f"error: {message}", file=sys.stderr)
    return status


INTERRUPTED = (
    "interrupted: what was already sent may have taken effect, or may still take effect in"
    " the next seconds; asking again is safe (the same request returns the same refund), and"
    " `refundflow list` shows what exists"
)
READS_ONLY = frozenset(
    {"status", "track", "events", "list", "audit", "report", "anomalies", "eligibility", "policy"}
)
"""Commands that change nothing (and `subscribers list`)."""
INTERRUPTED_ACTING = (
    "interrupted: the action may have taken effect, or may still take effect in the next"
    " seconds;"
    " `refundflow status` of the refund shows whether it did (asked again once it has, the"
    " refund refuses it as already done: nothing happens twice)"
)
"""An action on a refund: asking again is not "the same answer" as for a request (a trial
was told so, then read a refusal, exit 1, as a failure)."""
INTERRUPTED_READING = "interrupted: nothing was changed (this command only reads)"
INTERRUPTED_OTHER = (
    "interrupted: what was already sent may have taken effect; look before running it again"
)


def interrupted_words(args: argparse.Namespace) -> str:
    """What an interrupted command may have done, for the command it is."""
    listing = getattr(args, "subscribers_command", None) == "list"
    if args.command in READS_ONLY or listing:
        return INTERRUPTED_READING
    if args.command == "request":
        return INTERRUPTED
    if args.command in {"approve", "reject", "cancel", "received", "operator"}:
        return INTERRUPTED_ACTING
    return INTERRUPTED_OTHER


def guarded(
    action: Callable[[], int],
    failures: tuple[type[Exception], ...] = (),
    as_json: bool = False,
    interrupted: str = INTERRUPTED,
) -> int:
    """Run `action`; report a failure on one line (JSON with --json) and return its status.

    `failures` are further exceptions that carry a sentence for the user, such as the dev
    stack's, which the client does not know of.
    """
    one_line: tuple[type[Exception], ...] = (
        RefundflowError,
        ConfigurationError,
        TemporalUnavailable,
        OSError,
        *failures,
    )
    try:
        return action()
    except BrokenPipeError:
        # The reader has gone (`refundflow list | head -1`): it took what it wanted.
        return _reader_gone()
    except (UserError, InvalidRefundRequest) as err:
        return report(str(err), EXIT_USAGE, as_json)
    except one_line as err:
        return report(str(err), EXIT_FAILURE, as_json)
    except KeyboardInterrupt:
        return report(interrupted, EXIT_INTERRUPTED, as_json)
    except Exception as err:
        # Not a user mistake: a bug or an outage. One line here; the traceback on request.
        if os.environ.get("REFUNDFLOW_DEBUG"):
            raise
        from activities.ports import error_text

        unexpected = f"unexpected {error_text(err)} (set REFUNDFLOW_DEBUG=1 for details)"
        return report(unexpected, EXIT_FAILURE, as_json)


def _reader_gone() -> int:
    """Quiet, status 0: point stdout at /dev/null, so that the final flush of what is still
    buffered for the closed pipe does not fail again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return EXIT_OK


def execute(args: argparse.Namespace, dev_tokens: DevTokens | None = None) -> int:
    """Run a client command that has been parsed (also for the worker's CLI, which signs
    the dev stack's tokens: `dev_tokens`)."""
    args.dev_tokens = dev_tokens
    as_json = bool(getattr(args, "json", False))
    return guarded(
        lambda: call(_acting_checked(args), args),
        as_json=as_json,
        interrupted=interrupted_words(args),
    )


def _acting_checked(args: argparse.Namespace) -> Handler:
    direct = args.command in DIRECT or (args.command == "audit" and args.verify)
    if direct and getattr(args, "acting_as", None):
        what = "audit --verify" if args.command == "audit" else args.command
        raise UserError(
            f"--as has no effect on `{what}`: it works on the stack directly, with its own"
            " credentials (drop --as)"
        )
    if direct and args.command != "policy":
        _refuse_a_stopped_home(os.environ)
    return HANDLERS[args.command]


# What addresses a stack without a stack file: with one of them set, the command goes where
# it says, whatever REFUNDFLOW_HOME names.
_ADDRESSED = (
    "TEMPORAL_ADDRESS",
    "TEMPORAL_PROFILE",
    "TEMPORAL_CONFIG_FILE",
    "DATABASE_URL",
    "SANDBOX_URL",
)


def _refuse_a_stopped_home(env: os._Environ[str] | dict[str, str]) -> None:
    """REFUNDFLOW_HOME names a stack that is not running: a command that works on the stack
    directly must not fall back to the default ports, where another stack may run (a trial:
    `sandbox order` and `reconcile` went to 8088 and 7233). Exit 1, as the API commands."""
    home = env.get("REFUNDFLOW_HOME")
    if not home or any(env.get(name) for name in _ADDRESSED) or find_stack(home)[1]:
        return
    raise RefundflowError(
        f"no dev stack runs from REFUNDFLOW_HOME={home} (start `refundflow dev` with it set,"
        " or unset it), or set the addresses it would give (TEMPORAL_ADDRESS, DATABASE_URL,"
        " SANDBOX_URL)"
    )


def run(argv: Sequence[str] | None = None) -> int:
    return execute(build_parser(CLIENT_COMMANDS).parse_args(argv))


def finish(command_line: Callable[[Sequence[str] | None], int], argv: Sequence[str] | None) -> None:
    """Run a command line and end the process with its status, through os._exit: Temporal's
    runtime threads can crash CPython's finalisation after all work is done, which would
    turn a success into a core dump."""
    try:
        status = command_line(argv)
    except SystemExit as exit_:  # argparse: usage errors and --help
        status = exit_.code if isinstance(exit_.code, int) else EXIT_USAGE
    except KeyboardInterrupt:  # while parsing, before a command runs (its own are guarded)
        print("error: interrupted while starting: nothing was done", file=sys.stderr)
        status = EXIT_INTERRUPTED
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BrokenPipeError:  # what was left for a reader that has gone: nobody reads it
            pass
    os._exit(status)


def main(argv: Sequence[str] | None = None) -> None:
    """`python -m client`: the client's commands (`refundflow` adds the stack's own)."""
    finish(run, argv)
