"""The unseal agent: a vault's keys held in one process's memory for a working day, so that k
people unseal once (`strongroom unseal VAULT --hold 8h`) and every later command of the same
user opens the vault without a passphrase or shares, until `strongroom seal VAULT` or the
timeout drops them. Like ssh-agent, and with its trust boundary: any process of the same
user may ask for the keys (it could read the agent's memory anyway); no other user can
(SO_PEERCRED on each connection), and nothing reaches the disk (memory locked where the
kernel allows it; core dumps off).

The agent listens on a Unix socket in a private 0700 directory of the user's runtime dir
(`$XDG_RUNTIME_DIR/strongroom`, else `/tmp/strongroom-<uid>`), named after the vault's signing
key fingerprint. One request per connection, one JSON line each way:
`{"op": "keys"}` → `{"bundle": "<base64 of the key bundle>"}`; `{"op": "seal"}` → `{"sealed":
true}` and the agent exits; `{"op": "status"}` → `{"expires": <unix time>}`.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from strongroom.errors import StrongroomError

#: The longest a vault may stay unsealed in an agent.
MAX_HOLD_S = 24 * 3600
_REPLY_LIMIT = 64 * 1024
_MCL_CURRENT, _MCL_FUTURE = 1, 2
#: sizeof(sockaddr_un.sun_path) on Linux, less its terminating NUL
_SUN_PATH_MAX = 107


def agent_dir(*, create: bool = False) -> Path:
    """The user's private directory for agent sockets (created 0700 with `create`); refused
    when someone else owns it or others may enter it (another user could plant a fake agent
    there)."""
    base = _base()
    if create:
        with contextlib.suppress(FileExistsError):
            base.mkdir(mode=0o700, parents=False)
    try:
        st = base.lstat()
    except OSError as exc:
        raise StrongroomError(f"{base}: {exc.strerror}") from None
    if not base.is_dir() or base.is_symlink() or st.st_uid != os.getuid() or \
            st.st_mode & 0o077:
        raise StrongroomError(f"{base} is not a private folder of this user: refusing to use "
                              "it for the unseal agent")
    return base


def _base() -> Path:
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    fallback = Path(f"/tmp/strongroom-{os.getuid()}")  # noqa: S108 - checked private
    return Path(runtime) / "strongroom" if runtime else fallback


def socket_path(fingerprint: str, *, create: bool = False, suffix: str = ".sock") -> Path:
    path = agent_dir(create=create) / (fingerprint.replace(":", "")[:16] + suffix)
    if len(os.fsencode(path)) > _SUN_PATH_MAX:
        raise StrongroomError(f"{path.parent} is too deep for a socket path (at most "
                              f"{_SUN_PATH_MAX} bytes): set XDG_RUNTIME_DIR to a shorter one")
    return path


def _request(fingerprint: str, op: str, timeout: float = 5.0,
             suffix: str = ".sock") -> dict[str, Any] | None:
    """One request to the agent of this vault; None when no agent runs."""
    try:
        path = socket_path(fingerprint, suffix=suffix)
    except StrongroomError:
        if not (_base().exists() or _base().is_symlink()):
            return None  # no agent ever started here
        raise
    if not path.exists():
        return None
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        try:
            s.connect(str(path))
        except (ConnectionRefusedError, FileNotFoundError):
            with contextlib.suppress(OSError):
                path.unlink()  # a dead agent's socket
            return None
        uid = _peer_uid(s)
        if uid != os.getuid():
            raise StrongroomError(f"the unseal agent at {path} runs as another user: refused")
        s.sendall(json.dumps({"op": op}).encode() + b"\n")
        data = b""
        while not data.endswith(b"\n") and len(data) < _REPLY_LIMIT:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    try:
        reply = json.loads(data)
    except ValueError:
        raise StrongroomError("the unseal agent gave no answer: `strongroom seal` it and "
                              "unseal again") from None
    return reply if isinstance(reply, dict) else None


def held_bundle(fingerprint: str) -> bytes | None:
    """The key bundle the agent of this vault holds, or None when no agent holds it."""
    reply = _request(fingerprint, "keys")
    if reply is None or "bundle" not in reply:
        return None
    return base64.b64decode(reply["bundle"])


def status(fingerprint: str) -> dict[str, Any] | None:
    return _request(fingerprint, "status")


def holding(fingerprint: str) -> bool:
    """Whether an agent of this user holds this vault's keys now. Any trouble finding one (no
    runtime dir, one that is not private, a dead socket) means none: the caller then asks for
    the passphrase as usual."""
    try:
        return status(fingerprint) is not None
    except (StrongroomError, OSError):
        return False


def seal(fingerprint: str) -> bool:
    """Tell the agent of this vault to drop its keys and exit; False when none ran."""
    reply = _request(fingerprint, "seal")
    return bool(reply and reply.get("sealed"))


#: The socket of a review server (`strongroom serve`) holding this vault's keys: it answers
#: `seal` (stop serving, dropping the keys) and `status`, never `keys`.
SERVING = ".serve.sock"


def seal_server(fingerprint: str) -> bool:
    """Tell a review server of this user holding this vault to stop; False when none runs."""
    reply = _request(fingerprint, "seal", suffix=SERVING)
    return bool(reply and reply.get("sealed"))


def listen_for_seal(fingerprint: str, on_seal: Any) -> Any:
    """Let `strongroom seal` reach this process (a review server): a thread answers `seal` by
    calling `on_seal()` and `status` with {"serving": true}, to this user only. Returns a
    function that stops listening."""
    import threading

    path = socket_path(fingerprint, create=True, suffix=SERVING)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)
    try:
        server.bind(str(path))
    finally:
        os.umask(old)
    server.listen(4)
    stopped = threading.Event()

    def loop() -> None:
        while not stopped.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                return  # closed
            with conn:
                if _answer_server(conn):
                    on_seal()

    threading.Thread(target=loop, daemon=True, name="strongroom-seal-listener").start()

    def stop() -> None:
        stopped.set()
        with contextlib.suppress(OSError):
            server.shutdown(socket.SHUT_RDWR)
        server.close()
        with contextlib.suppress(OSError):
            path.unlink()

    return stop


def _answer_server(conn: socket.socket) -> bool:
    """One request to a review server's socket; True for `seal` from this user."""
    op = _read_op(conn)
    if op is None:
        return False
    reply = {"sealed": True} if op == "seal" else {"serving": True} if op == "status" \
        else {"error": "unknown op"}
    with contextlib.suppress(OSError):
        conn.sendall(json.dumps(reply).encode() + b"\n")
    return bool(op == "seal")


def _read_op(conn: socket.socket) -> str | None:
    """The `op` of one JSON line from a process of this user; None for anyone else, or for
    anything that is not such a line."""
    conn.settimeout(5.0)
    try:
        if _peer_uid(conn) != os.getuid():
            return None
        line = b""
        while not line.endswith(b"\n") and len(line) < 1024:
            chunk = conn.recv(1024)
            if not chunk:
                return None
            line += chunk
        op = json.loads(line).get("op")
    except (OSError, ValueError, AttributeError):
        return None
    return op if isinstance(op, str) else None


def start(fingerprint: str, bundle: bytes, hold_s: float) -> float:
    """Start an agent holding `bundle` for `hold_s` seconds (in a new session, so that it
    outlives this command); returns when it listens. Returns its expiry (unix time)."""
    if not 0 < hold_s <= MAX_HOLD_S:
        raise StrongroomError(f"hold the keys for 1 s to {MAX_HOLD_S // 3600} h")
    if status(fingerprint) is not None:
        raise StrongroomError("an unseal agent already holds this vault's keys: `strongroom "
                              "seal` it first")
    path = socket_path(fingerprint, create=True)
    proc = subprocess.Popen(
        [sys.executable, "-m", "strongroom.vault.agent", str(path), str(hold_s)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        start_new_session=True, close_fds=True,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
             "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)})
    if proc.stdin is None or proc.stdout is None:  # pragma: no cover - PIPE gives both
        proc.kill()
        raise StrongroomError("the unseal agent did not start")
    try:
        proc.stdin.write(base64.b64encode(bundle) + b"\n")
        proc.stdin.close()
        ready = proc.stdout.readline()
    finally:
        proc.stdout.close()
    if not ready.startswith(b"ready "):
        proc.kill()
        why = ready.decode("utf-8", "replace").strip().removeprefix("error ")
        raise StrongroomError(f"the unseal agent did not start: {why or 'no reason given'}")
    return float(ready.split()[1])


def _peer_uid(s: socket.socket) -> int:
    creds = s.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return int(struct.unpack("3i", creds)[1])


def _lock_memory() -> None:
    """Keep the keys out of swap and core dumps (best effort: mlockall needs RLIMIT_MEMLOCK)."""
    import ctypes
    import resource

    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.mlockall(_MCL_CURRENT | _MCL_FUTURE)


def serve(path: Path, hold_s: float) -> None:  # pragma: no cover - runs in the agent process
    _lock_memory()
    bundle = sys.stdin.buffer.readline().strip()
    expires = time.time() + hold_s
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)
    try:
        server.bind(str(path))
    except OSError as exc:
        sys.stdout.write(f"error cannot listen on {path}: {exc.strerror}\n")
        sys.stdout.flush()
        return
    finally:
        os.umask(old)
    server.listen(8)
    sys.stdout.write(f"ready {expires}\n")
    sys.stdout.flush()
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    try:
        while (left := expires - time.time()) > 0:
            server.settimeout(min(left, 60.0))
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            with conn:
                if _handle(conn, bundle, expires):
                    break
    finally:
        bundle = b""
        with contextlib.suppress(OSError):
            path.unlink()
        server.close()


def _handle(conn: socket.socket, bundle: bytes, expires: float) -> bool:  # pragma: no cover
    """Answer one request; True when the agent must stop."""
    op = _read_op(conn)
    if op is None:
        return False
    reply: dict[str, Any]
    if op == "keys":
        reply = {"bundle": bundle.decode()}
    elif op == "seal":
        reply = {"sealed": True}
    elif op == "status":
        reply = {"expires": expires}
    else:
        reply = {"error": "unknown op"}
    with contextlib.suppress(OSError):
        conn.sendall(json.dumps(reply).encode() + b"\n")
    return bool(op == "seal")


if __name__ == "__main__":  # pragma: no cover
    serve(Path(sys.argv[1]), float(sys.argv[2]))
