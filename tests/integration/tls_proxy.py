"""A test-only TLS-terminating proxy that requires a client certificate, in front of the
dev server's plaintext gRPC port: what a Temporal cluster with mTLS looks like to a client.

Blocking sockets, a thread per connection: the handshake runs in OpenSSL's own blocking
call, which sends its alert ("certificate required", "unknown CA") before the socket closes,
as a real server does. (asyncio's SSL transport aborts without sending it, and the client
then sees only a reset connection.)
"""

from __future__ import annotations

import contextlib
import select
import socket
import ssl
import threading
from pathlib import Path

from tests.integration.tls_certs import Issued


def server_context(server: Issued, client_ca: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(client_ca))
    context.load_cert_chain(server.cert, server.key)
    context.verify_mode = ssl.CERT_REQUIRED  # no certificate, or another CA's: no handshake
    context.set_alpn_protocols(["h2"])  # gRPC is HTTP/2, chosen by ALPN
    return context


class MtlsProxy:
    def __init__(self, upstream_port: int, server: Issued, client_ca: Path) -> None:
        self.upstream_port = upstream_port
        self.context = server_context(server, client_ca)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def __enter__(self) -> MtlsProxy:
        self._spawn(self._accept)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopping.set()
        self._listener.close()
        for thread in list(self._threads):
            thread.join(5)

    def _spawn(self, target: object, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)  # type: ignore[arg-type]
        self._threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        self._listener.settimeout(0.2)
        while not self._stopping.is_set():
            try:
                raw, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._spawn(self._serve, raw)

    def _serve(self, raw: socket.socket) -> None:
        raw.settimeout(10)  # the handshake; then the pump waits in select
        try:
            tls = self.context.wrap_socket(raw, server_side=True)
        except (ssl.SSLError, OSError):
            raw.close()  # the alert is already on its way to the client
            return
        try:
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=10)
        except OSError:
            tls.close()
            return
        tls.settimeout(None)
        upstream.settimeout(None)
        with tls, upstream:
            self._pump(tls, upstream)

    def _pump(self, tls: ssl.SSLSocket, upstream: socket.socket) -> None:
        other = {tls: upstream, upstream: tls}
        while not self._stopping.is_set():
            # Bytes OpenSSL already decrypted do not make the socket readable again.
            ready = [tls] if tls.pending() else select.select([tls, upstream], [], [], 0.2)[0]
            for source in ready:
                with contextlib.suppress(ssl.SSLWantReadError):
                    try:
                        data = source.recv(65536)
                    except (OSError, ssl.SSLError):
                        return
                    if not data:
                        return
                    try:
                        other[source].sendall(data)
                    except (OSError, ssl.SSLError):
                        return
