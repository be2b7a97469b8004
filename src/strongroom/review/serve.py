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

from strongroom.vault import Vault


def serve_app(vault: Vault, *, host: str, port: int, certfile: Path | None,
              keyfile: Path | None, hours: float, heartbeat: float = 10.0) -> None:
    import uvicorn

    from strongroom.review.app import create_app

    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # no core file holding the keys
    app = create_app(vault.settings, vault, heartbeat_seconds=heartbeat,
                     secure_cookies=True if certfile else None)
    config = uvicorn.Config(app, host=host, port=port, log_level="warning",
                            ssl_certfile=str(certfile) if certfile else None,
                            ssl_keyfile=str(keyfile) if keyfile else None,
                            server_header=False, date_header=False, proxy_headers=False)
    server = uvicorn.Server(config)
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
