"""What a usage mistake is said with: argparse's message, and what the line likely meant (a
command or an option misspelt, --as after the command, a value that reads as an option)."""

from __future__ import annotations

import argparse
import difflib
import re
from collections.abc import Collection


def explained(parser: argparse.ArgumentParser, message: str, command: str | None) -> str:
    """The one line a usage mistake is said in (without the pointer to --help)."""
    commands = _commands_of(parser, message)
    message = f"a command is required: one of {commands}" if commands else message
    words: list[str] = getattr(parser, "words_given", [])
    hint = (
        _did_you_mean(message)
        or _option_meant(message, _options_of(parser, command))
        or _required_meant(message, words, _options_of(parser, command))
        or _dash_value(message, words)
    )
    after = _after_command(parser, command)
    if "--as" in _own_options(parser, command):  # `token --as li`: its own --as, not misplaced
        after = []
    return f"{message}{hint}{_as_first(message, after, command)}"


def _own_options(parser: argparse.ArgumentParser, command: str | None) -> set[str]:
    """The options `command`'s own parser defines (not the top level's); the parser's own
    when it is a command's (it reports its own mistakes: `refundflow token ...`)."""
    if " " in parser.prog:
        return _options_of(parser)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) and command in action.choices:
            return _options_of(action.choices[command])
    return set()


def command_path(parser: argparse.ArgumentParser, words: list[str]) -> list[str]:
    """The command and subcommands the line named, in order (`sandbox`, `inbox`)."""
    path: list[str] = []
    while True:
        choices = next(
            (a.choices for a in parser._actions if isinstance(a, argparse._SubParsersAction)),
            None,
        )
        named = next((w for w in words if choices and w in choices), None)
        if choices is None or named is None:
            return path
        path.append(named)
        parser = choices[named]
        words = words[words.index(named) + 1 :]


def _after_command(parser: argparse.ArgumentParser, command: str | None) -> list[str]:
    """The words after the command: all a command's own parser was given."""
    words: list[str] = getattr(parser, "words_given", [])
    if " " in parser.prog:
        return words
    return words[words.index(command) + 1 :] if command in words else []


# Commands that read or change the stack directly (no API route yet): whoever runs them has
# the stack's own credentials, so --as would be a claim nothing checks. Refused, not ignored.
DIRECT = frozenset(
    {"subscribers", "reconcile", "report", "anomalies", "acknowledge", "sandbox", "policy"}
)


def _as_first(message: str, after_command: list[str], command: str | None = None) -> str:
    """`refundflow approve rf_… --as li`: say where --as goes instead of only refusing it;
    also when its name was read as the command's argument (`status --as li rf_…`: "'li' is
    not a refund id", a trial). Not for a command --as has no effect on: moved before it,
    it was refused there (a trial was sent back and forth)."""
    hint = "; --as goes before the command: `refundflow --as NAME COMMAND …`"
    if command in DIRECT:
        hint = f"; --as has no effect on `{command}`, which works on the stack directly (drop it)"
    unrecognized = message.startswith("unrecognized arguments") and "--as" in message.split()
    return hint if unrecognized or "--as" in after_command else ""


def _commands_of(parser: argparse.ArgumentParser, message: str) -> str:
    """`refundflow operator` alone: the commands it takes, when they are few (else "")."""
    if not message.endswith("required: COMMAND"):
        return ""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) and len(action.choices) <= 8:
            return ", ".join(action.choices)
    return ""


def _did_you_mean(message: str) -> str:
    """argparse's "invalid choice: 'staus' (choose from ...)" with the likely command named."""
    found = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
    if not found:
        return ""
    given, choices = found.group(1).lower(), re.findall(r"'?([\w-]+)'?", found.group(2))
    # The start of a name (`pending` for pending_review) before a merely similar one.
    starting = [choice for choice in choices if choice.startswith(given)]
    close = starting or difflib.get_close_matches(given, choices, n=1)
    return f"; did you mean {close[0]!r}?" if len(close) == 1 else ""


def _dash_value(message: str, words: list[str]) -> str:
    """`--overlap -5m`: argparse reads a value that starts with '-' as an option and says
    only "expected one argument"; name the value and how to give it. A positional's value
    (`fast-forward rf_… -5h`): "required: DURATION"; name the value read as an option."""
    missing = re.fullmatch(r"the following arguments are required: ([A-Za-z_]+)", message)
    dashed = [w for w in words if re.fullmatch(r"-\d\S*", w)]
    if missing and dashed:  # `fast-forward rf_… -5h`: a positional's value read as an option
        return f"; {dashed[0]!r} reads as an option, not as {missing.group(1)}"
    found = re.search(r"argument (--[\w-]+)(?:/\S+)?: expected one argument", message)
    if not found or found.group(1) not in words:
        return ""
    after = words[words.index(found.group(1)) + 1 :][:1]
    if not after or not after[0].startswith("-"):
        return ""
    return (
        f"; {after[0]!r} reads as an option: if it is the value, write {found.group(1)}={after[0]}"
    )


def _options_of(parser: argparse.ArgumentParser, command: str | None = None) -> set[str]:
    """The options of `parser` and of `command`'s parser (all its commands' when None):
    argparse reports an unknown option from the top, which does not know the command's."""
    found: set[str] = set()
    for action in parser._actions:
        found.update(o for o in action.option_strings if o.startswith("--"))
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                if command is None or name == command:
                    found |= _options_of(sub)
    return found


def _option_meant(message: str, options: set[str]) -> str:
    """ "unrecognized arguments: --jsno" with the likely option named."""
    if not message.startswith("unrecognized arguments:"):
        return ""
    # A known option is skipped: it is only in the wrong place.
    meant = _nearest_option(message.split(":", 1)[1].split(), options)
    return f"; did you mean {meant[1]!r}?" if meant else ""


def _required_meant(message: str, words: list[str], known: set[str]) -> str:
    """ "the following arguments are required: --order" when the line gave --ordr: argparse
    names the missing option before the unknown one, so the typo went unnamed (a trial).
    Not an option the command has (`--refund` given, `--reason` missing: a trial). Also
    "one of the arguments --refund --order is required" when the line gave --refnd."""
    prefix = "the following arguments are required:"
    one_of = re.fullmatch(r"one of the arguments (.*) is required", message)
    if one_of:
        required = one_of.group(1).split()
    elif message.startswith(prefix):
        required = [name.strip() for name in message.removeprefix(prefix).split(",")]
    else:
        return ""
    unknown = [word for word in words if word.split("=")[0] not in known]
    meant = _nearest_option(unknown, required)
    return f" ({meant[0]!r} is not an option: did you mean {meant[1]!r}?)" if meant else ""


def _nearest_option(words: list[str], options: Collection[str]) -> tuple[str, str] | None:
    """(the first --word given that is none of `options`, the option it most looks like)."""
    for given in words:
        name = given.split("=")[0]
        if not name.startswith("--") or name in options:
            continue
        # Closer than difflib's default: `status … --reason x` is not a typo of --json (a
        # trial); --jsn, --refnd and --amout are.
        close = difflib.get_close_matches(name, sorted(options), n=1, cutoff=0.75)
        if close:
            return name, close[0]
    return None
