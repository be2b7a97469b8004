"""A hostile user and a defence lawyer at the vault's door (issue 11): every case here broke
once, or guards a rule someone could walk around."""

from __future__ import annotations

import ast
import functools
import io
import json
import os
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from conftest import CLI, PASSPHRASE, cli, cli_env, cli_subprocess
from strongroom.catalogue.models import CustodyEvent, Derivative, Original
from strongroom.errors import MediaError, StrongroomError
from strongroom.ingest import ingest
from strongroom.vault import Vault
from test_door import swap_two_blobs

SRC = Path(__file__).resolve().parent.parent / "src" / "strongroom"


@pytest.fixture
def filled(vault: Vault, source: Path) -> Vault:
    ingest(vault, source, "USB stick 1")
    vault.checkpoint()
    return vault


def events(v: Vault, after: int = 0) -> list[dict[str, Any]]:
    with v.catalogue.read() as s:
        return [{"seq": e.seq, "action": e.action, "details": json.loads(e.details)}
                for e in s.scalars(select(CustodyEvent).where(CustodyEvent.seq > after)
                                   .order_by(CustodyEvent.seq))]


def last_seq(v: Vault) -> int:
    return max(e["seq"] for e in events(v))


def biggest(v: Vault) -> Original:
    with v.catalogue.read() as s:
        return s.scalars(select(Original).order_by(Original.size.desc()).limit(1)).one()


# -- cat -o: two at once, files planted beside the output ---------------------------------
def test_cat_does_not_remove_a_partial_file_another_cat_is_writing(
        filled: Vault, vault_path: Path, tmp_path: Path) -> None:
    """Broke: two `cat -o same` at once shared `.same.partial`; the second failed on it and
    its clean-up deleted the first's file, which then died with a raw 'No such file or
    directory' after its download had been recorded as complete."""
    sha = biggest(filled).sha256
    filled.close()
    out = tmp_path / "clip.bin"
    other = tmp_path / ".clip.bin.partial"
    other.write_bytes(b"the other cat's half-written plaintext")
    r = cli_subprocess("cat", vault_path, sha, "-o", out)
    assert r.returncode == 0, r.stderr
    assert other.read_bytes() == b"the other cat's half-written plaintext"
    assert out.stat().st_size == biggest(filled).size
    assert out.stat().st_mode & 0o777 == 0o600  # plaintext evidence: private
    assert sorted(p.name for p in tmp_path.iterdir() if "clip" in p.name) == [
        ".clip.bin.partial", "clip.bin"]


def test_the_second_of_two_writers_never_replaces_the_first(tmp_path: Path) -> None:
    """Broke: `os.replace` after a check made before decrypting: of two `cat -o same` at once
    the later silently replaced the earlier's file ("nothing is overwritten")."""
    from strongroom.fsio import new_private_file

    out = tmp_path / "clip.bin"
    with pytest.raises(StrongroomError, match="exists; nothing is overwritten"), \
            new_private_file(out) as first:
        first.write(b"first")
        with new_private_file(out) as second:  # started later, finished first
            second.write(b"second")
        assert out.read_bytes() == b"second"
    assert out.read_bytes() == b"second"
    assert [p.name for p in tmp_path.iterdir()] == ["clip.bin"]


def test_a_writer_that_finds_its_name_taken_says_so_and_leaves_nothing(tmp_path: Path) -> None:
    from strongroom.fsio import new_private_file

    out = tmp_path / "clip.bin"
    with pytest.raises(StrongroomError, match="exists; nothing is overwritten"), \
            new_private_file(out) as f:
        f.write(b"plaintext")
        out.write_bytes(b"someone else's file, made meanwhile")
    assert out.read_bytes() == b"someone else's file, made meanwhile"
    assert [p.name for p in tmp_path.iterdir()] == ["clip.bin"]


# -- contact-sheet: output checked before anything is decrypted ---------------------------
@pytest.fixture
def with_sheet(filled: Vault, vault_path: Path, tmp_path: Path) -> tuple[Vault, Original]:
    from PIL import Image

    o = biggest(filled)
    plain = tmp_path / "sheet-plain.jpg"
    Image.new("RGB", (64, 32), (200, 30, 30)).save(plain, format="JPEG")
    sealed = filled.worker_keys().seal(plain)
    plain.unlink()
    (name,) = filled.store_sealed([sealed])
    with filled.write() as s:
        s.add(Derivative(original_sha256=o.sha256, kind="contact_sheet", sha256=sealed.sha256,
                         size=sealed.size, blob_name=name, mime="image/jpeg", step="test",
                         step_version="1", command=None, created_at=datetime.now(UTC),
                         meta={}))
    return filled, o


def test_contact_sheet_never_overwrites_and_records_nothing_for_a_file_it_cannot_write(
        with_sheet: tuple[Vault, Original], tmp_path: Path) -> None:
    """Broke: `contact-sheet -o EXISTING` replaced the file silently; `-o FOLDER` recorded
    `viewed` (complete) and then failed with a raw 'Is a directory (/x/.dir.partial)'."""
    from strongroom.pipeline.views import write_contact_sheet

    v, o = with_sheet
    before = last_seq(v)
    existing = tmp_path / "sheet.jpg"
    existing.write_bytes(b"an earlier sheet, or anything else")
    with pytest.raises(StrongroomError, match="exists; nothing is overwritten"):
        write_contact_sheet(v, o.sha256, existing, reveal=False)
    assert existing.read_bytes() == b"an earlier sheet, or anything else"
    with pytest.raises(StrongroomError, match="is a folder"):
        write_contact_sheet(v, o.sha256, tmp_path, reveal=True)
    with pytest.raises(StrongroomError, match="not a folder"):
        write_contact_sheet(v, o.sha256, tmp_path / "missing" / "sheet.jpg", reveal=True)
    assert events(v, before) == []


def test_contact_sheet_is_not_written_through_a_symlink_planted_beside_it(
        with_sheet: tuple[Vault, Original], tmp_path: Path) -> None:
    """Broke: the sheet went to `.NAME.partial` with `write_bytes` (follows symlinks): a
    symlink planted there got the *revealed* sheet written, 0644, wherever it pointed, and
    the output became that symlink."""
    from strongroom.pipeline.views import write_contact_sheet

    v, o = with_sheet
    work = tmp_path / "shared"
    work.mkdir()
    elsewhere = tmp_path / "attacker"
    elsewhere.mkdir()
    (work / ".sheet.jpg.partial").symlink_to(elsewhere / "leak.jpg")
    before = last_seq(v)
    write_contact_sheet(v, o.sha256, work / "sheet.jpg", reveal=True)
    assert list(elsewhere.iterdir()) == []
    out = work / "sheet.jpg"
    assert not out.is_symlink() and out.stat().st_mode & 0o777 == 0o600
    assert out.read_bytes()[:2] == b"\xff\xd8"
    assert [e["action"] for e in events(v, before)] == ["revealed"]


# -- the passphrase never reaches a child process -------------------------------------------
def test_no_tool_inherits_the_passphrase(monkeypatch: pytest.MonkeyPatch) -> None:
    """Broke: `age -d` (and ffmpeg, tesseract, ...) inherited STRONGROOM_PASSPHRASE: anyone
    with the tool's /proc/PID/environ, or a tool taken over by a hostile file, had it."""
    from strongroom.media.run import run_tool, stream_tool

    monkeypatch.setenv("STRONGROOM_PASSPHRASE", "hunter2 hunter2 hunter2")
    monkeypatch.setenv("STRONGROOM_HOSTILE_MARK", "kept")
    env = run_tool(["env"]).stdout.decode()
    assert "STRONGROOM_HOSTILE_MARK=kept" in env and "hunter2" not in env
    with stream_tool(["env"]) as tool:
        streamed = tool.stdout.read().decode()
    assert "STRONGROOM_HOSTILE_MARK=kept" in streamed and "hunter2" not in streamed


def test_cat_decrypts_with_an_age_whose_environment_has_no_passphrase(
        filled: Vault, vault_path: Path, tmp_path: Path) -> None:
    """The real thing: while `strongroom cat` streams into a slow reader, the `age -d` it runs
    has no STRONGROOM_PASSPHRASE in /proc/PID/environ (found by its working directory)."""
    sha = biggest(filled).sha256
    filled.close()
    here = tmp_path / "cwd"
    here.mkdir()
    env = {**os.environ, "STRONGROOM_PASSPHRASE": PASSPHRASE}
    proc = subprocess.Popen([sys.executable, "-m", "strongroom.cli", "cat", str(vault_path),
                             sha], cwd=here, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        proc.stdout.read(1)  # type: ignore[union-attr]  # decrypting now; age is held by us
        found = []
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                if os.readlink(f"/proc/{pid}/cwd") != str(here):
                    continue
                argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
                environ = Path(f"/proc/{pid}/environ").read_bytes()
            except OSError:
                continue
            if Path(argv[0].decode()).name == "age":
                found.append(environ)
        assert found and all(PASSPHRASE.encode() not in e for e in found)
    finally:
        proc.stdout.close()  # type: ignore[union-attr]
        proc.wait(timeout=60)
        proc.stderr.close()  # type: ignore[union-attr]


# -- settings from the environment: one clear line ------------------------------------------
@pytest.mark.parametrize(("name", "value", "says"), [
    ("STRONGROOM_ACTOR", "alice\n  999  2026-01-01T00:00:00  bob  downloaded", "one line"),
    ("STRONGROOM_ACTOR", "\x1b[2Kmallory", "one line"),
    ("STRONGROOM_ACTOR", "A" * 10240, "at most"),
    ("STRONGROOM_WORKERS", "-1", "greater than or equal to 0"),
    ("STRONGROOM_INGEST_WORKERS", "-1", "greater than or equal to 1"),
    ("STRONGROOM_DATABASE_URL", "not a url :SECRETPW", "not a database URL"),
    ("STRONGROOM_DATABASE_URL", "bogus://u:SECRETPW@h/x", "no database driver"),
    ("STRONGROOM_DATABASE_URL", "mysql://u:SECRETPW@h/x", "no database driver"),
])
def test_a_hostile_setting_is_refused_in_one_line_naming_it(
        vault_path: Path, name: str, value: str, says: str) -> None:
    """Broke: a newline or escape in STRONGROOM_ACTOR was signed into the custody log and
    forged extra lines in `strongroom log`; 10 KB was accepted; STRONGROOM_INGEST_WORKERS=-1
    was accepted and STRONGROOM_WORKERS=-1 failed only in `process`, without naming it; a
    malformed STRONGROOM_DATABASE_URL was an 'unexpected error, please report it'. A password
    in the URL is never repeated."""
    r = cli("stats", vault_path, "--json", env={name: value})
    assert r.returncode == 2
    assert "SECRETPW" not in r.stderr + r.stdout
    assert r.stderr.startswith("error: ") and r.stderr.count("\n") == 1
    assert name in r.stderr and says in r.stderr
    assert json.loads(r.stdout)["exit_code"] == 2


def test_a_non_latin_actor_is_fine(vault_path: Path) -> None:
    r = cli("verify", vault_path, "--quick", env={"STRONGROOM_ACTOR": "Анна Б., юрист"})
    assert r.returncode == 0, r.stderr
    log = json.loads(cli("log", vault_path, "--json").stdout)
    assert log[-1]["actor"] == "Анна Б., юрист"


# -- Ctrl-C: one line, as promised ----------------------------------------------------------
def test_ctrl_c_is_one_error_line_and_a_json_object(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        vault_path: Path) -> None:
    """Broke: typer turns KeyboardInterrupt into a silent exit 130, so main()'s
    "interrupted" line (and the --json error object) never appeared."""
    from strongroom import cli as cli_module

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setenv("STRONGROOM_PASSPHRASE", PASSPHRASE)
    monkeypatch.setattr(cli_module, "_open", interrupted)
    with pytest.raises(SystemExit) as exit:
        cli_module.main(["cat", str(vault_path), "0" * 64, "-o", str(vault_path.parent / "x"),
                         "--json"])
    got = capsys.readouterr()
    assert exit.value.code == 130
    assert got.err.startswith("error: interrupted") and got.err.count("\n") == 1
    assert json.loads(got.out)["exit_code"] == 130


def test_ctrl_c_while_starting_up_is_no_traceback() -> None:
    """Broke: Ctrl-C during the imports (0.5 s or more on a loaded machine) printed a
    traceback."""
    code = ("import builtins, strongroom.__main__ as m\n"
            "real = builtins.__import__\n"
            "def imp(name, *a, **k):\n"
            "    if name == 'strongroom.cli': raise KeyboardInterrupt\n"
            "    return real(name, *a, **k)\n"
            "builtins.__import__ = imp\n"
            "m.main()\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 130
    assert r.stderr.startswith("error: interrupted") and "Traceback" not in r.stderr


# -- stall detection: slow is not stuck -----------------------------------------------------
@pytest.fixture
def quick_stall(monkeypatch: pytest.MonkeyPatch) -> float:
    """age killed after 1.5 s without progress of its own (instead of 120 s)."""
    import strongroom.vault.encryption as enc
    from strongroom.media.run import stream_tool

    monkeypatch.setattr(enc, "stream_tool", functools.partial(stream_tool, stall=1.5))
    return 1.5


def test_a_slow_reader_of_cat_is_not_taken_for_a_stalled_age(
        filled: Vault, quick_stall: float) -> None:
    """Held: a reader slower than the stall limit (a pager, a slow network copy) blocks
    `age -d` on its full stdout pipe; the watchdog sees it waits on us and lets it live."""
    o = biggest(filled)
    got = io.BytesIO()

    def slow(chunk: bytes) -> None:
        if got.tell() < 2 * 1024 * 1024:
            time.sleep(quick_stall * 1.6)
        got.write(chunk)

    before = last_seq(filled)
    with filled.open_original(o.sha256, to="stdout") as opened:
        opened.copy_to(slow)
    assert got.tell() == o.size
    (ev,) = events(filled, before)
    assert ev["details"]["complete"] is True


def test_a_slow_source_is_not_taken_for_a_stalled_age(
        vault: Vault, quick_stall: float) -> None:
    """Held: ingest from a source slower than the stall limit (a FIFO fed slowly, a USB
    stick that sleeps): age's stdin pipe is empty, so it waits on us and is left alone."""
    part = os.urandom(1024 * 1024)

    class Slow:
        def __init__(self) -> None:
            self.left = 3

        def read(self, n: int = -1) -> bytes:
            if not self.left:
                return b""
            self.left -= 1
            time.sleep(quick_stall * 1.6)
            return part

    stored = vault.store(Slow(), size=3 * len(part), what="a slow stick")
    assert stored.digests.size == 3 * len(part)
    vault.discard(stored)


def test_a_tool_that_really_stalls_is_killed() -> None:
    from strongroom.media.run import stream_tool

    r, w = os.pipe()  # the tool waits on a pipe nobody writes: no progress, not our fault
    started = time.monotonic()
    try:
        with pytest.raises(MediaError, match="stalled"), \
                stream_tool(["cat", f"/dev/fd/{r}"], pass_fds=(r,), stall=1.0) as tool:
            tool.stdout.read()
    finally:
        os.close(r)
        os.close(w)
    assert time.monotonic() - started < 20


def start_cat(v: Vault, vault_path: Path) -> tuple[Original, int, subprocess.Popen[bytes]]:
    """`strongroom cat` of the biggest original to a pipe, in its own process (the vault
    object is closed first); with the log's last seq before it started."""
    o = biggest(v)
    before = last_seq(v)
    v.close()
    return o, before, subprocess.Popen([*CLI, "cat", str(vault_path), o.sha256],
                                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                       env=cli_env())


# -- cat into a pipe closed early: on the record --------------------------------------------
def test_cat_into_head_records_an_incomplete_download(filled: Vault, vault_path: Path) -> None:
    """Held: `strongroom cat V SHA | head -c 10` records `downloaded` with complete false
    and at least the bytes the reader got; one error line, no BrokenPipe noise."""
    o, before, cat = start_cat(filled, vault_path)
    assert cat.stdout is not None and cat.stderr is not None
    head = cat.stdout.read(10)
    cat.stdout.close()
    err = cat.stderr.read().decode()
    cat.stderr.close()
    assert cat.wait(timeout=120) == 2 and len(head) == 10
    assert err.startswith("error: cannot write to standard output") and err.count("\n") == 1
    (ev,) = events(filled, before)
    assert ev["action"] == "downloaded" and ev["details"]["complete"] is False
    assert 10 <= ev["details"]["bytes"] < o.size


# -- the rules of test_door.py, walked around -----------------------------------------------
#: Modules whose import outside vault/ hands out keys, plaintext or unrecorded fixity.
GUARDED = {"strongroom.vault.blobs", "strongroom.vault.keys", "strongroom.vault.encryption",
           "strongroom.vault.passphrase", "strongroom.vault.worker",
           "strongroom.custody.verify"}
CRYPTO = ("pyrage", "cryptography", "hmac")
PRIVATE = {"keys", "blobs", "_keys", "_decrypt_blob", "_custody", "record", "worker_keys"}
#: Who may still use what PRIVATE names, outside vault/ and custody/.
#: `publish/drafts.py` decrypts as a pipeline worker does, into a private work dir: the
#: original to render a draft (recorded `derived`), the approved draft to sign it (recorded
#: `published` in the transaction that marks it so).
ALLOWED = {("pipeline/runner.py", "worker_keys"), ("pipeline/worker.py", "vault.worker"),
           ("publish/drafts.py", "worker_keys")}


def _absolute(rel: str, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    package = ["strongroom", *rel.split("/")[:-1]]
    base = package[:len(package) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def offenders(rel: str, tree: ast.Module) -> list[str]:
    """A stricter walk than test_door.py's: relative imports, `from package import module`,
    `importlib.import_module`/`__import__` with a constant, `getattr(x, "_keys")`,
    `vars(x)["_keys"]`, a bound `vault.record` passed around, and `worker_keys` outside the
    pipeline runner."""
    found = []

    def imported(name: str, line: int) -> None:
        if name.split(".")[0] in CRYPTO and not rel.startswith(("vault/", "intake/")) \
                and rel not in ("export/timestamp.py", "export/verifier.py"):
            found.append(f"{rel}:{line} imports {name}")
        if name in GUARDED and not rel.startswith(("vault/", "custody/")) \
                and not any(r == rel and name.endswith(n) for r, n in ALLOWED):
            found.append(f"{rel}:{line} imports {name}")

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                imported(a.name, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            module = _absolute(rel, node)
            imported(module, node.lineno)
            for a in node.names:
                imported(f"{module}.{a.name}", node.lineno)
        elif isinstance(node, ast.Call) and node.args:
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else \
                func.id if isinstance(func, ast.Name) else ""
            first = node.args[0]
            if name in ("import_module", "__import__") and isinstance(first, ast.Constant) \
                    and isinstance(first.value, str):
                imported(first.value, node.lineno)
            if name in ("getattr", "setattr", "hasattr") and len(node.args) > 1 \
                    and isinstance(node.args[1], ast.Constant) \
                    and node.args[1].value in PRIVATE \
                    and not rel.startswith(("vault/", "custody/")):
                found.append(f"{rel}:{node.lineno} {name}(…, {node.args[1].value!r})")
        elif isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant) \
                and node.slice.value in PRIVATE and not rel.startswith(("vault/", "custody/")):
            found.append(f"{rel}:{node.lineno} [{node.slice.value!r}]")
        elif isinstance(node, ast.Attribute) and node.attr in PRIVATE \
                and not rel.startswith(("vault/", "custody/")) \
                and (rel, node.attr) not in ALLOWED:
            found.append(f"{rel}:{node.lineno} uses .{node.attr}")
    return found


def test_the_stricter_rules_hold_for_src_today() -> None:
    got = []
    for p in sorted(SRC.rglob("*.py")):
        rel = str(p.relative_to(SRC))
        got += offenders(rel, ast.parse(p.read_text("utf-8"), str(p)))
    assert got == []


@pytest.mark.parametrize("code", [
    "from strongroom.vault import encryption\n",            # test_door: only 'strongroom.vault'
    "from ..vault.encryption import decrypt_stream\n",      # test_door: skips relative imports
    "from ..vault import keys\n",
    "import importlib\nimportlib.import_module('pyrage')\n",
    "__import__('cryptography.hazmat')\n",
    "def f(v):\n    return getattr(v, '_keys').identity_text()\n",
    "def f(v):\n    return vars(v)['_decrypt_blob']\n",
    "def f(v, s):\n    rec = v.record\n    rec(s, 'downloaded', 'x', {})\n",
    "def f(v, blob, sha, dest):\n    v.worker_keys().decrypt_original(blob, sha, dest)\n",
    "from strongroom.vault.worker import WorkerKeys\n",
    "from strongroom.custody.verify import verify\n",      # fixity with no fixity_checked
])
def test_a_future_web_app_walking_around_the_door_is_caught(code: str) -> None:
    """Each of these gets plaintext, keys or an unrecorded decryption past test_door.py's
    rules (checked: they report nothing for it); the stricter walk names every one."""
    assert offenders("web/app.py", ast.parse(code)) != []


def test_two_cats_of_one_original_at_once_are_both_on_the_record(
        filled: Vault, vault_path: Path, tmp_path: Path) -> None:
    """Held: two `cat`s of one original at once, to two files: both complete, both on the
    record, bit-exact."""
    o = biggest(filled)
    before = last_seq(filled)
    filled.close()
    results: dict[int, subprocess.CompletedProcess[str]] = {}

    def run(i: int) -> None:
        results[i] = cli_subprocess("cat", vault_path, o.sha256, "-o", tmp_path / f"c{i}.bin")

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(r.returncode == 0 for r in results.values()), results
    assert (tmp_path / "c0.bin").read_bytes() == (tmp_path / "c1.bin").read_bytes()
    got = events(filled, before)
    assert [e["action"] for e in got] == ["downloaded", "downloaded"]
    assert all(e["details"]["complete"] for e in got)


def test_an_opened_original_cannot_decrypt_another_one_under_its_name(filled: Vault) -> None:
    """Broke: `opened.access.original(other, sink)` inside `open_original(A)` decrypted B and
    recorded it on `original:A` only: whoever reads B's history never sees it."""
    with filled.catalogue.read() as s:
        a, b = s.scalars(select(Original).order_by(Original.size).limit(2)).all()
    before = last_seq(filled)
    got = io.BytesIO()
    with pytest.raises(StrongroomError, match="opened for"), \
            filled.open_original(a.sha256, to="file") as opened:
        opened.access.original(b, got.write)
    assert got.getvalue() == b""
    assert events(filled, before) == []
    with filled.open_original(a.sha256, to="file") as opened:
        opened.copy_to(got.write)  # its own row still opens
    assert [e["action"] for e in events(filled, before)] == ["downloaded"]


def test_a_swapped_blob_records_whose_content_actually_left(
        filled: Vault, vault_path: Path) -> None:
    """Broke: with A's and B's blobs swapped, `cat A` streams all of B to stdout and the log
    says only 'downloaded original:A, incomplete': B's disclosure is in nobody's history."""
    a, b = swap_two_blobs(filled, vault_path)
    before = last_seq(filled)
    got = io.BytesIO()
    with pytest.raises(StrongroomError), \
            filled.open_original(a.sha256, to="stdout") as opened:
        opened.copy_to(got.write)
    assert got.tell() == b.size  # all of B left
    (ev,) = events(filled, before)
    assert b.sha256 in json.dumps(ev["details"])


def test_a_forged_derivative_row_cannot_open_an_original_as_a_harmless_view(
        filled: Vault) -> None:
    """Broke: `open_derivative` takes any `Derivative` object: one made up with another
    original's blob name and digest decrypts that whole original, recorded as `viewed` of a
    'poster' on an unrelated original."""
    with filled.catalogue.read() as s:
        a, b = s.scalars(select(Original).order_by(Original.size).limit(2)).all()
    forged = Derivative(original_sha256=a.sha256, kind="poster", sha256=b.sha256, size=b.size,
                        blob_name=b.blob_name, mime="image/jpeg", step="x", step_version="1",
                        command=None, meta={})
    got = io.BytesIO()
    with pytest.raises(StrongroomError), \
            filled.open_derivative(forged, purpose="viewed", to="screen") as opened:
        opened.copy_to(got.write)
    assert got.getvalue() == b""


@pytest.mark.parametrize("sig", ["SIGTERM", "SIGHUP"])
def test_a_cat_stopped_by_sigterm_or_sighup_records_what_left(
        filled: Vault, vault_path: Path, sig: str) -> None:
    """Broke: `timeout 60 strongroom cat V SHA | upload` (SIGTERM), or the ssh session closing
    (SIGHUP), killed cat at once: megabytes of plaintext had reached the reader and nothing
    was on the record. Now it unwinds like Ctrl-C: `downloaded`, incomplete, one line."""
    import signal

    o, before, cat = start_cat(filled, vault_path)
    assert cat.stdout is not None and cat.stderr is not None
    got = len(cat.stdout.read(2 * 1024 * 1024))
    cat.send_signal(getattr(signal, sig))
    got += len(cat.stdout.read())
    err = cat.stderr.read().decode()
    cat.stdout.close()
    cat.stderr.close()
    assert cat.wait(timeout=120) == 128 + getattr(signal, sig)
    assert err.startswith(f"error: stopped by {sig}") and err.count("\n") == 1
    (ev,) = events(filled, before)
    assert ev["action"] == "downloaded" and ev["details"]["complete"] is False
    assert got <= ev["details"]["bytes"] < o.size
