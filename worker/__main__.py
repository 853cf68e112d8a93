"""`python -m worker`: same as `refundflow worker`."""

from worker.cli import main

main(["worker"])
