"""The unseal agent (issue 13, point 1): `unseal --hold` keeps the keys in one process's
memory; this user's commands then open the vault without a passphrase until `seal` or the
timeout; both ends are custody events; nothing reaches the disk."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import cli, cli_json, poll

NO_PASSPHRASE = {"STRONGROOM_PASSPHRASE": ""}


@pytest.fixture
def runtime() -> Iterator[dict[str, str]]:
    """A private runtime dir per test (vaults copied from one template share a fingerprint,
    so they would share an agent socket otherwise), short enough for a socket path; every
    agent started in it is killed afterwards."""
    import shutil
    import tempfile

    run = Path(tempfile.mkdtemp(prefix="sr-run-"))
    env = {"XDG_RUNTIME_DIR": str(run)}
    yield env
    for sock in (run / "strongroom").glob("*.sock") if (run / "strongroom").is_dir() else []:
        pid = agent_pid(sock)
        if pid:
            os.kill(pid, 9)
    shutil.rmtree(run, ignore_errors=True)


def agent_pid(sock: Path) -> int | None:
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmd = (proc / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"strongroom.vault.agent" in cmd and str(sock).encode() in cmd:
                return int(proc.name)
    return None


def test_a_held_vault_opens_without_a_passphrase_until_sealed(
        vault_path: Path, runtime: dict[str, str]) -> None:
    r = cli("unseal", vault_path, "--hold", "1h", "--json", env=runtime)
    assert r.returncode == 0, r.stderr
    assert "held_until" in json.loads(r.stdout)
    ok = cli("stats", vault_path, "--json", env={**runtime, **NO_PASSPHRASE})
    assert ok.returncode == 0, ok.stderr
    again = cli("unseal", vault_path, "--hold", "1h", env=runtime)
    assert again.returncode == 2 and "already holds" in again.stderr
    sealed = cli("seal", vault_path, "--json", env=runtime)
    assert sealed.returncode == 0 and json.loads(sealed.stdout)["sealed"] is True
    after = cli("stats", vault_path, env={**runtime, **NO_PASSPHRASE})
    assert after.returncode == 2 and "passphrase" in after.stderr
    events = cli_json("log", vault_path)
    assert isinstance(events, list)
    assert [e["action"] for e in events][-2:] == ["unsealed", "sealed"]
    assert cli("seal", vault_path, env=runtime).stdout.startswith("No unseal agent")


def test_the_agent_drops_the_keys_when_its_time_runs_out(
        vault_path: Path, runtime: dict[str, str]) -> None:
    assert cli("unseal", vault_path, "--hold", "2s", env=runtime).returncode == 0
    poll(lambda: cli("stats", vault_path, env={**runtime, **NO_PASSPHRASE}).returncode == 2,
         timeout=20, interval=0.5, what="the agent to time out")
    sockets = list((Path(runtime["XDG_RUNTIME_DIR"]) / "strongroom").iterdir())
    assert sockets == []


def test_the_agent_keeps_nothing_on_disk_and_cannot_dump_core(
        vault_path: Path, runtime: dict[str, str]) -> None:
    assert cli("unseal", vault_path, "--hold", "1h", env=runtime).returncode == 0
    folder = Path(runtime["XDG_RUNTIME_DIR"]) / "strongroom"
    assert folder.stat().st_mode & 0o777 == 0o700
    (sock,) = folder.iterdir()
    assert sock.is_socket() and sock.stat().st_mode & 0o077 == 0
    pid = agent_pid(sock)
    assert pid is not None
    limits = Path(f"/proc/{pid}/limits").read_text()
    core = next(ln for ln in limits.splitlines() if ln.startswith("Max core file size"))
    assert core.split()[4:6] == ["0", "0"]
    environ = Path(f"/proc/{pid}/environ").read_bytes()
    assert b"STRONGROOM_PASSPHRASE" not in environ
    assert cli("seal", vault_path, env=runtime).returncode == 0


def test_a_vault_unsealed_by_shares_is_held_too(tmp_path: Path,
                                                 runtime: dict[str, str]) -> None:
    path = tmp_path / "vault"
    out = json.loads(cli("init", path, "--shares", "2-of-3", "--no-passphrase",
                         "--json").stdout)
    shares = tmp_path / "two.txt"
    shares.write_text("\n".join(out["shares"]["mnemonics"][:2]) + "\n")
    r = cli("unseal", path, "--shares-file", shares, "--hold", "10m", "--json", env=runtime)
    assert r.returncode == 0 and json.loads(r.stdout)["with"] == "shares", r.stderr
    assert cli("stats", path, env={**runtime, **NO_PASSPHRASE}).returncode == 0
    assert cli("seal", path, env=runtime).returncode == 0


def test_a_runtime_dir_too_deep_for_a_socket_is_one_clear_line(vault_path: Path,
                                                                tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True, mode=0o700)
    r = cli("unseal", vault_path, "--hold", "1h", env={"XDG_RUNTIME_DIR": str(deep)})
    assert r.returncode == 2 and "too deep for a socket path" in r.stderr


def test_an_agent_folder_others_can_enter_is_refused(vault_path: Path, tmp_path: Path) -> None:
    run = tmp_path / "shared-run"
    (run / "strongroom").mkdir(parents=True)
    (run / "strongroom").chmod(0o777)
    r = cli("unseal", vault_path, "--hold", "1h", env={"XDG_RUNTIME_DIR": str(run)})
    assert r.returncode == 2 and "not a private folder" in r.stderr


@pytest.mark.parametrize("hold", ["0s", "25h", "forever", "-5m"])
def test_a_bad_hold_is_one_clear_line(vault_path: Path, runtime: dict[str, str],
                                      hold: str) -> None:
    r = cli("unseal", vault_path, "--hold", hold, env=runtime)
    assert r.returncode == 2 and r.stderr.startswith("error: ") and r.stderr.count("\n") == 1


def test_a_planted_agent_folder_never_stops_the_passphrase(vault_path: Path,
                                                            tmp_path: Path) -> None:
    run = tmp_path / "shared-run"
    (run / "strongroom").mkdir(parents=True)
    (run / "strongroom").chmod(0o777)
    r = cli("stats", vault_path, env={"XDG_RUNTIME_DIR": str(run)})
    assert r.returncode == 0, r.stderr
