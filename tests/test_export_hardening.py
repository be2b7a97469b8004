"""A hostile recipient's bag, a careless `--to`, a vault whose checkpoint lags: the handover
must stay inside its bag and never vouch for what it did not check.

The bags here hold random bytes (no media, no PDFs): what is under test is the bag's
structure, the verifier (in this interpreter and as the shipped `verify.py` under Debian's
`python3 -I`), `receipt` and `export`'s refusals.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from conftest import Template, cli, open_vault
from strongroom.export.bag import ExportOptions, export
from strongroom.export.verifier import NotABag, summary, verify_bag
from strongroom.ingest import ingest

DEBIAN_PYTHON = "/usr/bin/python3"


@dataclass
class Handover:
    vault_path: Path
    template: Template
    bag: Path
    root: Path


def _stick(folder: Path, files: dict[str, int]) -> Path:
    folder.mkdir(parents=True)
    for name, size in files.items():
        (folder / name).write_bytes(os.urandom(size))
    return folder


@pytest.fixture(scope="module")
def handover(template: Template, tmp_path_factory: pytest.TempPathFactory) -> Handover:
    root = tmp_path_factory.mktemp("hardening")
    stick = _stick(root / "usb", {"cam01.mp4": 300_000, "cam02.mp4": 120_000})
    path = root / "vault"
    shutil.copytree(template.path, path)
    with open_vault(path, template.keys) as v:
        ingest(v, stick, "USB stick 1")
        export(v, root / "handover", ExportOptions(everything=True, pdf=False,
                                                    organisation="Test NGO"))
    bag = root / "handover" / "bag"
    assert verify_bag(bag).ok
    return Handover(path, template, bag, root)


@pytest.fixture
def bag(handover: Handover, tmp_path: Path) -> Path:
    """A fresh copy of the good bag, in its own folder (so `bag.parent` is this test's)."""
    dst = tmp_path / "received" / "bag"
    shutil.copytree(handover.bag, dst)
    return dst


def originals(bag: Path) -> list[Path]:
    return sorted((bag / "data" / "originals").iterdir())


def standalone(bag: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The shipped verify.py, under Debian's interpreter, isolated (no venv, no strongroom)."""
    return subprocess.run([DEBIAN_PYTHON, "-I", str(bag / "verify.py"), str(bag), *args],
                          capture_output=True, text=True, timeout=120)


def standalone_at(verifier: Path, target: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([DEBIAN_PYTHON, "-I", str(verifier), str(target), *args],
                          capture_output=True, text=True, timeout=120)


def reseal(bag: Path, template: Template) -> None:
    """Rebuild the tag manifests and sign them with the vault's own key: what a buggy or
    malicious vault could hand over, so the bag verifies and only later checks can refuse it."""
    for alg in ("sha256", "sha512"):
        tm = bag / f"tagmanifest-{alg}.txt"
        lines = []
        for line in tm.read_text("utf-8").splitlines():
            rel = line.split("  ", 1)[1]
            lines.append(f"{hashlib.new(alg, (bag / rel).read_bytes()).hexdigest()}  {rel}\n")
        tm.write_text("".join(lines), "utf-8")
        (bag / f"signatures/tagmanifest-{alg}.txt.sig").write_bytes(
            template.keys.sign(tm.read_bytes()))


def _problems_name(result_problems: list[str], *needles: str) -> bool:
    return any(all(n in p for n in needles) for p in result_problems)


def _one_line_error(r: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in r.stderr, r.stderr
    assert r.stderr.count("\n") == 1, r.stderr


# -- symlinks -------------------------------------------------------------------------------
def _replace_with_link(bag: Path, rel: str, elsewhere: Path) -> None:
    """Move `rel` out of the bag (an identical copy) and leave a symlink to it behind."""
    target = elsewhere / rel.replace("/", "_")
    shutil.move(str(bag / rel), str(target))
    (bag / rel).symlink_to(target)


LINKED = ["data/originals/*", "data", "data/custody/events.jsonl", "bag-info.txt",
          "manifest-sha256.txt", "tagmanifest-sha256.txt", "verify.py", "signatures",
          "signatures/tagmanifest-sha256.txt.sig"]


@pytest.mark.parametrize("what", LINKED)
def test_bag_with_symlinked_original_fails_verification(what: str, bag: Path,
                                                        tmp_path: Path) -> None:
    """Each kind of entry, replaced by a link to an identical copy outside, is named; the bag
    no longer holds the evidence, even though every digest would still match."""
    rel = str(originals(bag)[0].relative_to(bag)) if what == "data/originals/*" else what
    verifier = tmp_path / "verify.py"
    shutil.copy(bag / "verify.py", verifier)  # the bag's own copy may be the link under test
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    _replace_with_link(bag, rel, elsewhere)
    result = verify_bag(bag)
    assert not result.ok
    assert _problems_name(result.problems, "regular files only", rel, "symbolic link"), \
        result.problems
    r = standalone_at(verifier, bag)
    assert r.returncode == 1, r.stdout + r.stderr
    assert f"{rel} is a symbolic link" in r.stdout


def test_bag_whose_data_folder_is_a_symlink_fails_verify_export(bag: Path,
                                                                tmp_path: Path) -> None:
    _replace_with_link(bag, "data", tmp_path)
    r = cli("verify-export", bag)
    assert r.returncode == 1
    assert "data is a symbolic link" in r.stdout
    assert "Traceback" not in r.stderr


def test_symlink_to_a_folder_inside_data_is_reported_not_skipped(bag: Path,
                                                                 tmp_path: Path) -> None:
    outside = tmp_path / "outside-folder"
    outside.mkdir()
    (outside / "clip.mp4").write_bytes(b"x" * 100)
    (bag / "data" / "originals" / "more").symlink_to(outside)
    (bag / "data" / "dangling").symlink_to(tmp_path / "nothing-here")
    result = verify_bag(bag)
    assert _problems_name(result.problems, "data/originals/more is a symbolic link")
    assert _problems_name(result.problems, "data/dangling is a symbolic link")
    r = standalone(bag)
    assert r.returncode == 1 and "data/originals/more is a symbolic link" in r.stdout


def test_fifo_in_the_bag_is_named_and_never_waited_on(bag: Path) -> None:
    """Opening a FIFO for reading blocks until someone writes: a planted one must be named,
    not opened (the timeout would fail this test)."""
    os.mkfifo(bag / "data" / "originals" / "pipe.mp4")
    os.mkfifo(bag / "signatures" / "tagmanifest-sha256.txt.tsa1.tsr")
    r = standalone(bag)
    assert r.returncode == 1
    assert "data/originals/pipe.mp4 is a FIFO, not a regular file" in r.stdout
    assert "signatures/tagmanifest-sha256.txt.tsa1.tsr is a FIFO" in r.stdout


# -- fixed names only -------------------------------------------------------------------------
def test_verifier_opens_only_known_names_inside_the_bag(bag: Path, tmp_path: Path) -> None:
    """A crafted `signatures/timestamps.json` names files outside the bag; the verifier reports
    each entry and opens none of them (every open is audited, in this process)."""
    secret = tmp_path / "outside-secret.bin"
    secret.write_bytes(b"OUTSIDE " * 1000)
    listing = [{"tsa": "http://x", "data": str(secret), "token": "../../outside-token"},
               {"tsa": "http://y", "data": "tagmanifest-sha256.txt",
                "token": "../../../outside-x.tsr"},
               {"data": "data/originals", "token": "tagmanifest-sha256.txt.tsa1.tsr"},
               "outside-string"]
    (bag / "signatures" / "timestamps.json").write_text(json.dumps(listing), "utf-8")
    (tmp_path / "outside-token").write_bytes(b"token")
    opened: list[str] = []
    recording = [True]

    def audit(event: str, args: tuple[object, ...]) -> None:
        if recording[0] and event == "open" and args and isinstance(args[0], (str, bytes)):
            opened.append(os.fsdecode(args[0]))

    sys.addaudithook(audit)  # cannot be removed; `recording` switches it off
    given: list[tuple[bytes, bytes]] = []

    def check_token(token: bytes, data: bytes, cert: Path) -> str:
        given.append((token, data))
        return "never"

    try:
        result = verify_bag(bag, tsa_cert=tmp_path / "ca.pem", verify_token=check_token)
    finally:
        recording[0] = False
    assert not result.ok
    assert [n for n in opened if "outside" in n] == [], opened
    assert all(not os.path.isabs(n) or Path(n).resolve().is_relative_to(bag.resolve())
               or n.startswith(("/proc", "/dev", sys.prefix, sys.base_prefix))
               for n in opened), opened
    assert given == [], "no token was checked: the bag has none"
    for n in (1, 2, 3, 4):
        assert _problems_name(result.problems, "RFC 3161 timestamps",
                              f"timestamps.json entry {n} names"), result.problems
    # the standalone verifier says the same, with exit 1 and no traceback
    r = standalone(bag, "--tsa-cert", str(tmp_path / "ca.pem"))
    assert r.returncode == 1 and "timestamps.json entry 1 names" in r.stdout
    assert "Traceback" not in r.stderr


def test_file_added_outside_the_signed_manifests_is_named_not_opened(bag: Path) -> None:
    (bag / "README-court.txt").write_text("trust me\n", "utf-8")
    (bag / "signatures" / "extra.sig").write_bytes(b"\0" * 64)
    result = verify_bag(bag)
    assert _problems_name(result.problems, "README-court.txt is covered by no signed manifest")
    assert _problems_name(result.problems, "signatures/extra.sig is covered by no signed")


def test_removed_or_added_timestamp_token_is_named(handover: Handover, tmp_path: Path) -> None:
    """The number of tokens is in the signed bag-info.txt, so removing one is noticed, and a
    token nobody announced is too; the listing itself carries no authority."""
    from tsa import LocalTSA

    with LocalTSA(tmp_path / "tsa") as tsa, open_vault(handover.vault_path,
                                                       handover.template.keys) as v:
        export(v, tmp_path / "out", ExportOptions(everything=True, pdf=False,
                                                  tsa_urls=[tsa.url, tsa.url]))
        ca = tsa.ca_pem_path
    bag = tmp_path / "out" / "bag"
    assert "Strongroom-Timestamp-Tokens: 2" in (bag / "bag-info.txt").read_text("utf-8")
    good = verify_bag(bag, tsa_cert=ca)
    assert good.ok, good.problems
    token = bag / "signatures" / "tagmanifest-sha256.txt.tsa2.tsr"
    shutil.copy(token, bag / "signatures" / "tagmanifest-sha256.txt.tsa3.tsr")
    token.unlink()
    (bag / "signatures" / "timestamps.json").unlink()  # the unsigned listing can go too
    for result in (verify_bag(bag), verify_bag(bag, tsa_cert=ca)):
        assert _problems_name(result.problems, "tsa2.tsr is missing", "announces 2")
        assert _problems_name(result.problems, "tsa3.tsr is not announced")
    assert handover.bag.is_dir()


def test_bag_without_timestamps_announces_none(bag: Path) -> None:
    assert "Strongroom-Timestamp-Tokens: 0" in (bag / "bag-info.txt").read_text("utf-8")
    (bag / "signatures" / "tagmanifest-sha256.txt.tsa1.tsr").write_bytes(b"late token")
    assert _problems_name(verify_bag(bag).problems, "tsa1.tsr is not announced")


# -- not a bag: usage error -----------------------------------------------------------------
@pytest.mark.parametrize("kind", ["missing", "file", "empty folder", "folder of files"])
def test_verify_export_of_something_that_is_not_a_bag_is_a_usage_error(
        kind: str, handover: Handover, tmp_path: Path) -> None:
    target = tmp_path / "nobag"
    if kind == "file":
        target.write_text("hello\n")
    elif kind == "empty folder":
        target.mkdir()
    elif kind == "folder of files":
        _stick(target, {"a.mp4": 10, "notes.txt": 5})
    with pytest.raises(NotABag):
        verify_bag(target)
    r = cli("verify-export", target)
    assert r.returncode == 2 and r.stdout == ""
    _one_line_error(r)
    assert r.stderr.startswith("error: ") and "nobag" in r.stderr
    r = cli("verify-export", target, "--json")
    assert r.returncode == 2
    assert "nobag" in json.loads(r.stdout)["error"]
    r = standalone_at(handover.bag / "verify.py", target)
    assert r.returncode == 2 and r.stdout == ""
    _one_line_error(r)
    r = standalone_at(handover.bag / "verify.py", target, "--json")
    assert r.returncode == 2 and "nobag" in json.loads(r.stdout)["error"]


# -- crafted content: a named check, never a traceback ----------------------------------------
def _bad_name(bag: Path) -> None:
    (bag / os.fsdecode(b"data/originals/clip\xff.mp4")).write_bytes(b"x")


def _json_surrogate(bag: Path) -> None:
    with (bag / "data/custody/events.jsonl").open("a") as f:
        f.write('{"seq": 99, "action": "\\ud800"}\n')


def _bagit_folder(bag: Path) -> None:
    (bag / "bagit.txt").unlink()
    (bag / "bagit.txt").mkdir()


def _signatures_file(bag: Path) -> None:
    shutil.rmtree(bag / "signatures")
    (bag / "signatures").write_text("x")


CRAFTED: dict[str, tuple[Callable[[Path], object], str]] = {
    "file name not UTF-8": (_bad_name, "clip\\xff.mp4 is in the bag but not in manifest"),
    "lone surrogate in custody JSON": (_json_surrogate, "custody chain"),
    "bagit.txt is a folder": (_bagit_folder, "bagit.txt is missing"),
    "signatures is a file": (_signatures_file, "signatures/tagmanifest-sha256.txt.sig is missing"),
    "timestamps.json not a list": (lambda b: (b / "signatures/timestamps.json").write_text(
        '{"data": "/etc/passwd"}'), "timestamps.json is not a JSON list"),
    "timestamps.json huge": (lambda b: (b / "signatures/timestamps.json").write_bytes(
        b"[" + b" " * (2 * 1024 * 1024) + b"]"), "timestamps.json is not a JSON list"),
    "vault key huge": (lambda b: (b / "data/custody/vault-public.json").write_bytes(
        b" " * (2 * 1024 * 1024)), "cannot read data/custody/vault-public.json"),
    "tag manifest lists the payload": (lambda b: (b / "tagmanifest-sha512.txt").open("a").write(
        "00  data/custody/events.jsonl\n"), "lists data/custody/events.jsonl, which is not a "
                                             "tag file"),
    "tag manifest drops bag-info": (lambda b: (b / "tagmanifest-sha256.txt").write_text("".join(
        ln + "\n" for ln in (b / "tagmanifest-sha256.txt").read_text().splitlines()
        if "bag-info" not in ln)), "bag-info.txt is not listed in tagmanifest-sha256.txt"),
}


@pytest.mark.parametrize("case", sorted(CRAFTED))
def test_crafted_bag_content_gives_a_named_failed_check(case: str, bag: Path) -> None:
    craft, expected = CRAFTED[case]
    craft(bag)
    result = verify_bag(bag)
    assert not result.ok
    assert _problems_name(result.problems, expected), result.problems
    # the report can be printed and written as JSON whatever the bag held
    summary(result).encode("utf-8")
    json.dumps(result.to_json(), ensure_ascii=False).encode("utf-8")


def test_crafted_bag_never_crashes_the_standalone_verifier(bag: Path) -> None:
    for craft, _ in CRAFTED.values():
        if craft not in (_bagit_folder, _signatures_file):
            craft(bag)
    r = standalone(bag, "--json")
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert json.loads(r.stdout)["ok"] is False


# -- receipts -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def recipient_key(tmp_path_factory: pytest.TempPathFactory) -> Path:
    key = tmp_path_factory.mktemp("prosecutor") / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    return key


def _set_identifier(bag: Path, identifier: str) -> None:
    info = bag / "bag-info.txt"
    info.write_text("".join(
        f"External-Identifier: {identifier}\n" if ln.startswith("External-Identifier:")
        else ln + "\n" for ln in info.read_text("utf-8").splitlines()), "utf-8")


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and not p.is_symlink()}


def test_receipt_never_writes_outside_the_bag(handover: Handover, bag: Path,
                                              recipient_key: Path) -> None:
    """`External-Identifier: ../important` must not become `../important.receipt.json`: not
    when the edit breaks the signature (the bag does not verify), and not when the vault's
    own key signed it (the identifier is refused as a file name)."""
    important = bag.parent.parent / "important.receipt.json"
    important.write_text("someone's own file\n")
    before = _tree(bag.parent.parent)
    _set_identifier(bag, "../important")
    r = cli("receipt", bag, "--sign-with", recipient_key, "--name", "Juge X")
    assert r.returncode == 1 and "does not verify" in r.stderr
    _one_line_error(r)
    reseal(bag, handover.template)  # now signed by the vault's key: it verifies
    assert verify_bag(bag).ok
    r = cli("receipt", bag, "--sign-with", recipient_key, "--name", "Juge X")
    assert r.returncode == 1 and "External-Identifier '../important'" in r.stderr, r.stderr
    _one_line_error(r)
    after = _tree(bag.parent.parent)
    assert important.read_text() == "someone's own file\n"
    assert set(after) == set(before)


def test_receipt_is_refused_for_a_bag_that_does_not_verify(bag: Path,
                                                           recipient_key: Path) -> None:
    data = bytearray(originals(bag)[0].read_bytes())
    data[0] ^= 1
    originals(bag)[0].write_bytes(bytes(data))
    r = cli("receipt", bag, "--sign-with", recipient_key, "--json")
    assert r.returncode == 1 and json.loads(r.stdout)["exit_code"] == 1  # --json: JSON error
    assert "the bag does not verify" in r.stderr and "payload digests" in r.stderr
    _one_line_error(r)
    assert list(bag.parent.glob("*.receipt.json")) == []


def test_receipt_never_overwrites_an_existing_file(bag: Path, recipient_key: Path,
                                                   tmp_path: Path) -> None:
    mine = tmp_path / "mine.json"
    mine.write_text("keep me\n")
    r = cli("receipt", bag, "--sign-with", recipient_key, "-o", mine)
    assert r.returncode == 2 and "already exists" in r.stderr
    _one_line_error(r)
    assert mine.read_text() == "keep me\n"
    # nor through a link planted at the name: the link's target is not created
    planted = tmp_path / "planted.json"
    planted.symlink_to(tmp_path / "target-of-link")
    r = cli("receipt", bag, "--sign-with", recipient_key, "-o", planted)
    assert r.returncode == 2 and not (tmp_path / "target-of-link").exists()
    # nor at the default place beside the bag
    r = cli("receipt", bag, "--sign-with", recipient_key, "--json")
    assert r.returncode == 0, r.stderr
    written = Path(json.loads(r.stdout)["file"])
    first = written.read_bytes()
    r = cli("receipt", bag, "--sign-with", recipient_key)
    assert r.returncode == 2 and "already exists" in r.stderr
    assert written.read_bytes() == first
    assert [p.name for p in bag.parent.iterdir() if p.name.endswith(".tmp")] == []


def test_receipt_names_the_verified_bag_beside_it(bag: Path, recipient_key: Path) -> None:
    r = cli("receipt", bag, "--sign-with", recipient_key, "--name", "Juge X", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    bag_id = doc["receipt"]["bag_id"]
    assert Path(doc["file"]) == bag.parent.resolve() / f"{bag_id}.receipt.json"
    assert doc["receipt"]["bag_verified"] is True
    assert doc["receipt"]["tagmanifest_sha256"] == hashlib.sha256(
        (bag / "tagmanifest-sha256.txt").read_bytes()).hexdigest()
    # a receipt written into the bag would change the bag: refused
    r = cli("receipt", bag, "--sign-with", recipient_key, "-o", bag / "receipt.json")
    assert r.returncode == 2 and "inside the bag" in r.stderr
    assert verify_bag(bag).ok


# -- export: where it writes, and what it vouches for ---------------------------------------
def _listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_export_refuses_a_destination_inside_the_vault(handover: Handover,
                                                       tmp_path: Path) -> None:
    """Inside means after resolving links and `..`, and by device and inode: the vault
    itself, any folder under it (blobs too), a link to it, or a parent plus a --name that
    lands on it. Nothing is written and nothing is logged."""
    vault = handover.vault_path
    before = _listing(vault)
    events = len(_events(vault))
    link = tmp_path / "innocent-looking"
    link.symlink_to(vault)
    dotted = tmp_path / ".." / tmp_path.name / link.name
    recipient = handover.template.keys.public.age_recipient
    attempts: list[tuple[Path, list[str]]] = [
        (vault, []), (vault / "handover", []), (vault / "blobs", []),
        (link, []), (link / "deeper" / "still", []), (dotted, []),
        (vault.parent, ["--name", vault.name]),
        (vault / "enc", ["--recipient", recipient]),  # ciphertext, but still not in there
    ]
    for dest, extra in attempts:
        r = cli("export", vault, "--all", "--no-pdf", "--to", dest, *extra)
        assert r.returncode == 2, (dest, r.stdout, r.stderr)
        _one_line_error(r)
        assert "inside the vault folder" in r.stderr or "already exists" in r.stderr, r.stderr
    assert _listing(vault) == before
    assert len(_events(vault)) == events
    # the refusal is export's own, not only the command line's
    from strongroom.errors import StrongroomError

    with open_vault(vault, handover.template.keys) as v, \
            pytest.raises(StrongroomError, match="inside the vault folder"):
        export(v, link / "x", ExportOptions(everything=True, pdf=False))
    assert _listing(vault) == before


def _events(vault: Path) -> list[tuple[object, ...]]:
    from conftest import sql

    return sql(vault, "SELECT seq, action FROM custody_event ORDER BY seq")


def test_export_refuses_a_bag_whose_custody_does_not_cover_its_originals(
        template: Template, tmp_path: Path) -> None:
    """When the vault's last checkpoint is older than an `ingested` event (as after the ingest
    that ended on an empty batch), the custody extract would stop before that original and
    the bag would fail its own verification: export refuses before writing anything."""
    from conftest import drop_append_only_triggers, sql

    vault = tmp_path / "vault"
    shutil.copytree(template.path, vault)
    with open_vault(vault, template.keys) as v:
        ingest(v, _stick(tmp_path / "usb1", {"early.mp4": 50_000}), "stick 1")
        covered = max(int(str(row[0])) for row in sql(vault, "SELECT seq FROM custody_checkpoint"))
        ingest(v, _stick(tmp_path / "usb2", {"late.mp4": 60_000}), "stick 2")
    # the newest checkpoints vanish, from the catalogue and from the file alike
    drop_append_only_triggers(vault)
    sql(vault, "DELETE FROM custody_checkpoint WHERE seq > ?", (covered,))
    cps = vault / "custody-checkpoints.jsonl"
    cps.write_text("".join(ln + "\n" for ln in cps.read_text().splitlines()
                           if json.loads(ln)["seq"] <= covered))
    late = hashlib.sha256((tmp_path / "usb2" / "late.mp4").read_bytes()).hexdigest()
    early = hashlib.sha256((tmp_path / "usb1" / "early.mp4").read_bytes()).hexdigest()
    events = len(_events(vault))
    out = tmp_path / "out"
    r = cli("export", vault, "--all", "--no-pdf", "--to", out)
    assert r.returncode == 1, r.stderr
    _one_line_error(r)
    assert "custody extract would not cover" in r.stderr and late in r.stderr
    assert early not in r.stderr
    assert not out.exists() or _listing(out) == []
    assert len(_events(vault)) == events, "a refused export is not logged as exported"
    # what the checkpoint does cover still exports, and that bag verifies
    r = cli("export", vault, "--original", early, "--no-pdf", "--to", out)
    assert r.returncode == 0, r.stderr
    assert verify_bag(out / "bag").ok


def test_export_never_follows_a_link_at_the_bag_name(handover: Handover, tmp_path: Path) -> None:
    """A link planted at `--to/NAME` is not replaced, and one at the scratch name
    `.NAME.incomplete` is removed, not followed: the folder it points to keeps its files."""
    out = tmp_path / "out"
    out.mkdir()
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "file.txt").write_text("mine\n")
    (out / "bag").symlink_to(tmp_path / "nowhere")
    with open_vault(handover.vault_path, handover.template.keys) as v:
        from strongroom.errors import StrongroomError

        with pytest.raises(StrongroomError, match="already exists"):
            export(v, out, ExportOptions(everything=True, pdf=False))
        (out / "bag").unlink()
        (out / ".bag.incomplete").symlink_to(precious)
        export(v, out, ExportOptions(everything=True, pdf=False))
    assert (precious / "file.txt").read_text() == "mine\n"
    assert verify_bag(out / "bag").ok


class _Killed(BaseException):
    """Stands in for SIGKILL at one instant: nothing after it runs, not even `except`."""


@pytest.mark.parametrize("encrypted", [False, True], ids=["folder", "age-volumes"])
def test_a_bag_under_its_name_is_always_on_the_record(
        handover: Handover, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        encrypted: bool) -> None:
    """The export is recorded while the finished bag still has its scratch name, and only
    then renamed: killed between the two, the log holds the export and no unrecorded bag
    sits under its real name; the next export of that name clears the scratch and verifies.
    (The crash campaign found the opposite order: a complete bag with no `exported` event.)"""
    from strongroom.export.sinks import DirSink, TarAgeSink

    vault = tmp_path / "vault"
    shutil.copytree(handover.vault_path, vault)
    out = tmp_path / "out"
    import pyrage

    recipient = str(pyrage.x25519.Identity.generate().to_public())
    opts = ExportOptions(everything=True, pdf=False, recipients=[recipient] if encrypted else [])
    sink = TarAgeSink if encrypted else DirSink

    def named() -> list[str]:
        return sorted(p.name for p in out.iterdir() if not p.name.startswith(".")
                      and not p.name.endswith(".partial")) if out.exists() else []

    seen_at_record: list[list[str]] = []
    from strongroom.vault.vault import Vault

    record = Vault.record_export

    def spy(self: Vault, *args: Any) -> None:
        seen_at_record.append(named())
        record(self, *args)

    def killed(self: object) -> None:
        raise _Killed

    events = len(_events(vault))
    with open_vault(vault, handover.template.keys) as v:
        monkeypatch.setattr(Vault, "record_export", spy)
        monkeypatch.setattr(sink, "publish", killed)
        with pytest.raises(_Killed):
            export(v, out, opts)
    assert seen_at_record == [[]], "recorded only after the bag had its name"
    assert named() == [], "no bag under its real name before publish"
    assert [a for _, a in _events(vault)[events:]] == ["exported"]
    monkeypatch.undo()
    with open_vault(vault, handover.template.keys) as v:
        report = export(v, out, opts)
    assert named() and all(Path(o).exists() for o in report.output)
    assert [a for _, a in _events(vault)[events:]] == ["exported", "exported"]
    leftovers = [p.name for p in out.iterdir() if p.name.startswith(".")
                 or p.name.endswith(".partial")]
    assert leftovers == []
    if not encrypted:
        assert verify_bag(out / "bag").ok


def test_an_export_that_cannot_be_recorded_leaves_no_bag(
        handover: Handover, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    vault = tmp_path / "vault"
    shutil.copytree(handover.vault_path, vault)
    out = tmp_path / "out"
    from strongroom.errors import StrongroomError

    def refuse(*args: object) -> None:
        raise StrongroomError("the catalogue is read-only")

    with open_vault(vault, handover.template.keys) as v:
        monkeypatch.setattr(type(v), "record_export", refuse)
        with pytest.raises(StrongroomError, match="read-only"):
            export(v, out, ExportOptions(everything=True, pdf=False))
    assert not out.exists() or list(out.iterdir()) == []
