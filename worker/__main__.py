"""`python -m worker`: same as `refundflow worker`."""

from client.cli import main

main(["worker"])
