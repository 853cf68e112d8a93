"""The `refundflow` console script: imports the command line, then runs it.

Importing it takes a few tenths of a second (pydantic and our models; Temporal's SDK, aiohttp
and asyncpg are imported by the commands that use them). A Ctrl-C in that time would end in a
traceback of the import; here it ends in one line, since nothing has been sent anywhere yet.
"""

from __future__ import annotations

import sys

EXIT_INTERRUPTED = 130  # as client.cli.arguments says, without importing it


def main() -> None:
    try:
        from worker.cli import main as run_command_line
    except KeyboardInterrupt:
        sys.stderr.write("error: interrupted while starting: nothing was done\n")
        sys.exit(EXIT_INTERRUPTED)
    run_command_line()
