"""`python -m client ...`: same as the `refundflow` command."""

from client.cli import main

main()
