"""A minimal receiver for refundflow's event webhooks: verify, deduplicate, then act.

Copy this into your service. Python standard library only. Run it with
    REFUNDFLOW_SUBSCRIBER_SECRET=whsec_... python examples/subscriber_receiver.py 9000
after `refundflow subscribers add my-service http://127.0.0.1:9000/` (which prints the secret).

Every delivery carries:
    Refundflow-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + raw body)>
                          (while a secret is rotated, one v1 per valid secret: any may match)
    Refundflow-Event-Id:  <refund id>:<sequence>   (the same as the body's "id")
Deliveries are at least once, and in order per refund until an event is parked (after the
subscriber's retry budget; the refund's next events then go on, and a replayed event comes
later): answer 2xx only once the event is safely handled; anything else, a redirect too, is
retried with backoff. A repeated event id is a repeat; order by "seq" where order matters.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

TOLERANCE_SECONDS = 300


class ForgedEvent(Exception):
    """The request was not signed by refundflow with our secret (or is too old)."""


def verify_event(secret: str, signature_header: str | None, body: bytes) -> dict:
    """Return the event if `signature_header` proves refundflow sent `body`; else raise."""
    if not secret:  # an empty key is one anybody can sign with
        raise ForgedEvent("no secret configured: set REFUNDFLOW_SUBSCRIBER_SECRET")
    if not signature_header:
        raise ForgedEvent("no Refundflow-Signature header")
    pairs = [part.split("=", 1) for part in signature_header.split(",") if "=" in part]
    signatures = [value for key, value in pairs if key == "v1"]  # several during a rotation
    try:
        (timestamp,) = [int(value) for key, value in pairs if key == "t"]
    except ValueError:
        raise ForgedEvent("malformed Refundflow-Signature header") from None
    if abs(time.time() - timestamp) > TOLERANCE_SECONDS:
        raise ForgedEvent("signature too old (replayed?)")
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    digest = expected.hexdigest().encode()
    if not any(hmac.compare_digest(digest, given.encode()) for given in signatures):
        raise ForgedEvent("signature does not match")
    return json.loads(body)


class Receiver(BaseHTTPRequestHandler):
    secret = os.environ.get("REFUNDFLOW_SUBSCRIBER_SECRET", "")
    seen: set[str] = set()  # use a database table with a unique key in a real service

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        try:
            event = verify_event(self.secret, self.headers.get("Refundflow-Signature"), body)
        except ForgedEvent as err:
            self.send_response(401)
            self.end_headers()
            self.wfile.write(str(err).encode())
            return
        if event["id"] not in self.seen:
            self.seen.add(event["id"])
            print(f"{event['type']:<22} {event['refund_id']}: {event['notification']['body']}")
        self.send_response(204)
        self.end_headers()


if __name__ == "__main__":
    if not Receiver.secret:
        sys.exit("set REFUNDFLOW_SUBSCRIBER_SECRET (`refundflow subscribers add` prints it)")
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 9000
    HTTPServer(("127.0.0.1", port), Receiver).serve_forever()
