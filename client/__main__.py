"""`python -m client ...`: the client's `refundflow` commands (those for support staff and
operators); the dev stack's own, such as `dev` and `worker`, are in `python -m worker.cli`."""

from client.cli import main

main()
