"""`strongroom serve`: the review app under uvicorn, for one unsealed vault.

The keys live in this process's memory only (core dumps off, like the unseal agent); when the
server stops — Ctrl-C, SIGTERM, or after its hours — the vault is closed and the keys go with
the process. Decrypted video never touches the disk: ranges are decrypted chunk by chunk in
memory (`Vault.read_range`).
"""

from __future__ import annotations

import resource
import signal
import threading
from pathlib import Path
from typing import Any

from strongroom.vault import Vault

#: Seconds a connection may take to send its request line and headers: a client that stalls
#: inside them (slowloris) is dropped instead of holding a connection as long as it likes.
HEADER_TIMEOUT = 5.0
#: Connections served at once; more get 503 (a laptop serves a handful of people).
MAX_CONNECTIONS = 64


def check_address(host: str, tls: bool) -> None:
    """Refuse to serve anywhere but this machine without TLS: session tokens and footage
    would cross the network in clear, and the cookies could not be Secure."""
    import ipaddress

    from strongroom.errors import StrongroomError

    if tls or host == "localhost":
        return
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise StrongroomError(f"serving on {host} needs TLS (--ssl-certfile and "
                              "--ssl-keyfile), or serve on 127.0.0.1 behind a TLS proxy")


def uvicorn_config(app: Any, host: str, port: int, certfile: Path | None = None,
                   keyfile: Path | None = None) -> Any:
    """How Strongroom runs uvicorn: h11 with a deadline for each request's headers, a cap
    on connections, no server banner, no proxy headers trusted."""
    import uvicorn
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class HeaderDeadline(H11Protocol):
        """Each request's line and headers must arrive within HEADER_TIMEOUT of the
        connection opening or of the previous response ending (a keep-alive connection
        that trickles a second request's headers is closed like a first one)."""

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._arm()

        def _arm(self) -> None:
            self._waiting_since = self.cycle  # a new cycle means the headers arrived
            self._deadline = self.loop.call_later(HEADER_TIMEOUT, self._too_slow)

        def handle_events(self) -> None:
            super().handle_events()
            if self.cycle is not self._waiting_since:
                self._deadline.cancel()  # a whole request line and headers arrived

        def on_response_complete(self) -> None:
            self._deadline.cancel()
            self._arm()
            super().on_response_complete()

        def connection_lost(self, exc: Exception | None) -> None:
            self._deadline.cancel()
            super().connection_lost(exc)

        def _too_slow(self) -> None:
            if self.cycle is self._waiting_since and not self.transport.is_closing():
                self.transport.close()

    return uvicorn.Config(app, host=host, port=port, log_level="warning", http=HeaderDeadline,
                          ssl_certfile=str(certfile) if certfile else None,
                          ssl_keyfile=str(keyfile) if keyfile else None,
                          limit_concurrency=MAX_CONNECTIONS, server_header=False,
                          date_header=False, proxy_headers=False)


def serve_app(vault: Vault, *, host: str, port: int, certfile: Path | None,
              keyfile: Path | None, hours: float, heartbeat: float = 10.0) -> None:
    import uvicorn

    from strongroom.review.app import create_app

    check_address(host, certfile is not None)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # no core file holding the keys
    app = create_app(vault.settings, vault, heartbeat_seconds=heartbeat,
                     secure_cookies=True if certfile else None)
    server = uvicorn.Server(uvicorn_config(app, host, port, certfile, keyfile))
    why = ["stopped (signal)"]

    def stop(reason: str) -> None:
        why[0] = reason
        server.should_exit = True

    timer = threading.Timer(hours * 3600, stop, args=(f"its {hours:g} h ran out",))
    timer.daemon = True
    timer.start()
    scheme_host = f"{'https' if certfile else 'http'}://{host}:{port}/"
    stopped = vault.serving(lambda: stop("`strongroom seal`"), hours=hours, where=scheme_host)
    print(f"Serving the review app of {vault.settings.vault} on {scheme_host} for at most "
          f"{hours:g} h (Ctrl-C or `strongroom seal` stops it and drops the keys).", flush=True)
    # uvicorn stops gracefully on SIGINT/SIGTERM, then raises the signal again under the
    # handlers it found: these turn that into a normal return, so the vault closes.
    previous = {sig: signal.signal(sig, _stop) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        server.run()
    except (_Stopped, KeyboardInterrupt):
        pass
    finally:
        timer.cancel()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        stopped(why[0])
    print(f"Stopped ({why[0]}); the keys are dropped with this process.", flush=True)


class _Stopped(Exception):
    """SIGTERM or SIGHUP after uvicorn's graceful shutdown."""


def _stop(signum: int, frame: object) -> None:
    raise _Stopped(signum)
