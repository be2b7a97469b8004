"""Court-ready handover: the bag must satisfy tools we did not write (bagit-python's validator,
the `age` CLI, `openssl ts -verify`, `openssl pkeyutl`, Debian's own python3 running verify.py)
and every kind of tampering must be named by verify-export.

One vault per module: generated DVR clips from two "USB sticks", analysed (probe, overlay OCR,
proxy/poster), one case with an incident holding two of the clips.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

import pytest
from sqlalchemy import func, select

from conftest import Template, cli, cli_json, open_vault, small_tmpfs
from strongroom.catalogue.models import (
    CaseFile,
    CaseIncident,
    CustodyEvent,
    Incident,
    IncidentOriginal,
    Sighting,
)
from strongroom.export.verifier import verify_bag
from strongroom.ingest import ingest
from strongroom.pipeline.runner import process
from strongroom.testmedia import ClipSpec, generate_clip
from strongroom.vault import Vault
from tsa import LocalTSA

CASE = "Саратов ОТБ-1"
BAGIT = Path(sys.executable).parent / "bagit.py"
CLIPS = [
    ClipSpec(name="cam07_a.mp4", duration=3, camera_label="КАМ 07 ОТБ-1 САРАТОВ",
             clock_start=datetime(2020, 3, 15, 23, 49, 55)),
    ClipSpec(name="cam07_b.mp4", duration=3, camera_label="КАМ 07 ОТБ-1 САРАТОВ",
             clock_start=datetime(2020, 3, 16, 0, 12, 3), source="mandelbrot"),
    ClipSpec(name="cam03.mp4", duration=3, camera_label="КАМ 03 ПФРСИ",
             clock_start=datetime(2020, 3, 14, 2, 17, 0), source="life", seed=3),
]


@dataclass
class Exported:
    vault_path: Path
    template: Template
    shas: dict[str, str]
    case_shas: set[str]
    root: Path

    def vault(self) -> Vault:
        return open_vault(self.vault_path, self.template.keys)


@pytest.fixture(scope="module")
def archive(template: Template, tmp_path_factory: pytest.TempPathFactory) -> Exported:
    root = tmp_path_factory.mktemp("export")
    usb1, usb2 = root / "usb1" / "DVR", root / "usb2" / "копия"
    usb1.mkdir(parents=True)
    usb2.mkdir(parents=True)
    for spec in CLIPS:
        generate_clip(spec, usb1)
    shutil.copy2(usb1 / "cam07_a.mp4", usb2 / "cam07_a (1).mp4")  # same clip, second stick
    (usb1 / "notes.txt").write_text("Камера 07, ОТБ-1\n", encoding="utf-8")
    path = root / "vault"
    shutil.copytree(template.path, path)
    work = root / "work"
    work.mkdir()
    with open_vault(path, template.keys, work_dir=str(work)) as v:
        ingest(v, root / "usb1", "USB stick 1, serial 4C53, received by A.B.")
        ingest(v, root / "usb2", "USB stick 2")
        process(v, steps=["probe", "overlay_ocr", "proxy"], workers=2)
        with v.catalogue.read() as s:
            by_name = {PurePosixPath(x.rel_path).name: x.original_sha256 or ""
                       for x in s.scalars(select(Sighting))}
        case_shas = {by_name["cam07_a.mp4"], by_name["cam07_b.mp4"]}
        with v.write() as s:
            inc = Incident(title="Избиение в ОТБ-1", description="two cameras, one night",
                           occurred_from=datetime(2020, 3, 15, 23, 50),
                           abuse_types=["beating"], severity=4, created_at=datetime.now(UTC))
            case = CaseFile(name=CASE, purpose="prosecution", description="for the PNAT",
                            created_at=datetime.now(UTC))
            s.add_all([inc, case])
            s.flush()
            s.add(CaseIncident(case_id=case.id, incident_id=inc.id))
            for sha in sorted(case_shas):
                s.add(IncidentOriginal(incident_id=inc.id, original_sha256=sha))
            v.annotate(s, "incident", inc.id, "created")
            v.annotate(s, "case", case.id, "created")
    return Exported(path, template, by_name, case_shas, root)


@pytest.fixture(scope="module")
def case_bag(archive: Exported) -> Path:
    out = archive.root / "handover"
    r = cli("export", archive.vault_path, "--case", CASE, "--to", out, "--organisation",
            "Test NGO", "--json")
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["originals"] == 2
    return out / "bag"


@pytest.fixture
def bag_copy(case_bag: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "bag"
    shutil.copytree(case_bag, dst)
    return dst


def bagit_validate(bag: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(BAGIT), "--validate", str(bag)],
                          capture_output=True, text=True)


# -- tools we did not write accept the bag ----------------------------------------------------
def test_bagit_python_validates_the_bag(case_bag: Path, archive: Exported) -> None:
    r = bagit_validate(case_bag)
    assert r.returncode == 0, r.stderr
    assert "is valid" in r.stderr
    originals = sorted(p.name for p in (case_bag / "data" / "originals").iterdir())
    assert originals == sorted(f"{sha}.mp4" for sha in archive.case_shas)
    for name in originals:  # bit-exact: the manifest's SHA-256 is the catalogue's
        assert hashlib.sha256((case_bag / "data/originals" / name).read_bytes()).hexdigest() \
            == name.split(".")[0]
    info = (case_bag / "bag-info.txt").read_text("utf-8")
    for field in ("Source-Organization: Test NGO", "External-Identifier: strongroom-export-",
                  "Bagging-Date: ", "Payload-Oxum: ", f"External-Description: Strongroom "
                  f"handover: case {CASE}"):
        assert field in info
    assert (case_bag / "manifest-sha512.txt").is_file()
    assert (case_bag / "tagmanifest-sha512.txt").is_file()


def test_signature_verifies_with_openssl(case_bag: Path) -> None:
    for alg in ("sha256", "sha512"):
        r = subprocess.run(
            ["openssl", "pkeyutl", "-verify", "-pubin", "-inkey",
             case_bag / "data/custody/vault-signing-key.pem", "-rawin", "-in",
             case_bag / f"tagmanifest-{alg}.txt", "-sigfile",
             case_bag / f"signatures/tagmanifest-{alg}.txt.sig"], capture_output=True, text=True)
        assert r.returncode == 0 and "Signature Verified Successfully" in r.stdout, r.stderr


def test_standalone_verify_py_runs_on_debians_python(case_bag: Path, archive: Exported) -> None:
    tree = ast.parse((case_bag / "verify.py").read_text("utf-8"))
    imported = {(n.module or "").split(".")[0] for n in ast.walk(tree)
                if isinstance(n, ast.ImportFrom)}
    imported |= {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import)
                 for a in n.names}
    assert imported - set(sys.stdlib_module_names) == {"cryptography"}
    with archive.vault() as v:
        fp = v.public.fingerprint
    # Debian's interpreter, isolated: no venv, no strongroom on the path.
    r = subprocess.run(["/usr/bin/python3", "-I", "verify.py", ".", "--expect-key", fp],
                       cwd=case_bag, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "RESULT: every check passed" in r.stdout
    assert fp in r.stdout


def test_verify_export_cli_summary_and_json(case_bag: Path) -> None:
    data = cli_json("verify-export", case_bag)
    assert data["ok"] is True  # type: ignore[index]
    names = {c["name"] for c in data["checks"]}  # type: ignore[index]
    assert {"bagit structure", "payload digests", "tag files", "manifest signature",
            "custody chain", "originals in custody"} <= names
    r = cli("verify-export", case_bag, "--expect-key", "0000:1111:2222:3333")
    assert r.returncode == 1 and "not the expected" in r.stdout


def test_custody_extract_covers_the_bag_and_redacts_the_rest(case_bag: Path,
                                                             archive: Exported) -> None:
    events = [json.loads(x) for x in
              (case_bag / "data/custody/events.jsonl").read_text("utf-8").splitlines()]
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    shown = [e for e in events if not e.get("redacted")]
    redacted = [e for e in events if e.get("redacted")]
    assert redacted, "events about the third clip and notes.txt must be redacted"
    assert all(set(e) == {"seq", "prev_hash", "hash", "signature", "redacted"}
               for e in redacted)
    other = archive.shas["cam03.mp4"]
    assert other not in (case_bag / "data/custody/events.jsonl").read_text("utf-8")
    for sha in archive.case_shas:
        actions = {e["action"] for e in shown if e["subject"] == f"original:{sha}"}
        assert {"ingested", "sighted", "analysed", "derived"} <= actions
    cam07a = archive.shas["cam07_a.mp4"]
    sightings = [e for e in shown if e["action"] == "sighted"
                 and e["details"]["original"] == cam07a]
    assert len(sightings) == 2, "both USB sticks' sightings"
    assert any(e["action"] == "acquired" for e in shown)
    # the acquisition's text (it may identify the source) is not in the bag by default
    bag_text = b"".join(p.read_bytes() for p in case_bag.rglob("*") if p.is_file())
    assert b"serial 4C53" not in bag_text
    acqs = json.loads((case_bag / "data/metadata/acquisitions.json").read_text("utf-8"))
    assert all("commitment" in a and "description" not in a for a in acqs)


def test_metadata_and_report(case_bag: Path, archive: Exported) -> None:
    records = json.loads((case_bag / "data/metadata/originals.json").read_text("utf-8"))
    cam07a = next(r for r in records if r["sha256"] == archive.shas["cam07_a.mp4"])
    assert sorted(s["path"] for s in cam07a["sightings"]) == ["DVR/cam07_a.mp4",
                                                              "копия/cam07_a (1).mp4"]
    assert cam07a["segments"][0]["camera"] == "КАМ 07 ОТБ-1 САРАТОВ"
    assert cam07a["segments"][0]["dvr_clock_start"] == "2020-03-15 23:49:55"
    assert len(cam07a["md5"]) == 32 and cam07a["size"] > 0
    csv_text = (case_bag / "data/metadata/originals.csv").read_text("utf-8-sig")
    assert csv_text.splitlines()[0].startswith("sha256,md5,size,file")
    case = json.loads((case_bag / "data/metadata/case.json").read_text("utf-8"))
    assert case["name"] == CASE and case["incidents"][0]["title"] == "Избиение в ОТБ-1"
    with archive.vault() as v:
        fp = v.public.fingerprint
    for lang, phrase in (("en", "How to verify"), ("fr", "Comment vérifier")):
        page = (case_bag / f"data/report/report.{lang}.html").read_text("utf-8")
        assert phrase in page and fp in page and "КАМ 07 ОТБ-1 САРАТОВ" in page
        assert "Избиение в ОТБ-1" in page and archive.shas["cam07_b.mp4"] in page
        pdf = (case_bag / f"data/report/report.{lang}.pdf").read_bytes()
        assert pdf.startswith(b"%PDF-") and len(pdf) > 10_000  # with the (blurred) stills
    # stills are blurred greyscale by default
    from PIL import Image

    still = case_bag / "data/report/stills" / f"{archive.shas['cam07_a.mp4']}.jpg"
    assert Image.open(still).mode == "L"


def test_exported_event_and_vault_still_verifies(case_bag: Path, archive: Exported) -> None:
    tm = hashlib.sha256((case_bag / "tagmanifest-sha256.txt").read_bytes()).hexdigest()
    with archive.vault() as v, v.catalogue.read() as s:
        ev = s.scalars(select(CustodyEvent).where(CustodyEvent.action == "exported")).first()
        assert ev is not None
        details = json.loads(ev.details)
    assert details["tagmanifest_sha256"] == tm
    assert sorted(details["originals"]) == sorted(archive.case_shas)
    assert details["case"] == CASE
    r = cli("verify", archive.vault_path, "--quick")
    assert r.returncode == 0, r.stdout + r.stderr


# -- every tampering is named --------------------------------------------------------------------
def _first_original(bag: Path) -> Path:
    return sorted((bag / "data/originals").iterdir())[0]


def _flip_byte(path: Path, offset: int = 1000) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def _edit_custody(bag: Path) -> None:
    p = bag / "data/custody/events.jsonl"
    lines = p.read_text("utf-8").splitlines()
    i = next(n for n, ln in enumerate(lines) if '"action":"ingested"' in ln)
    ev = json.loads(lines[i])
    ev["details"]["size"] += 1
    lines[i] = json.dumps(ev, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    p.write_text("\n".join(lines) + "\n", "utf-8")


def _drop_custody_line(bag: Path) -> None:
    p = bag / "data/custody/events.jsonl"
    lines = p.read_text("utf-8").splitlines()
    del lines[len(lines) // 2]
    p.write_text("\n".join(lines) + "\n", "utf-8")


def _swap_signature(bag: Path) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    other = Ed25519PrivateKey.generate()
    for alg in ("sha256", "sha512"):
        data = (bag / f"tagmanifest-{alg}.txt").read_bytes()
        (bag / f"signatures/tagmanifest-{alg}.txt.sig").write_bytes(other.sign(data))


def _resign_with_other_key(bag: Path) -> None:
    """A forger edits a file, rebuilds every manifest and signs with a key of their own."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    other = Ed25519PrivateKey.generate()
    raw = other.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    pub = json.loads((bag / "data/custody/vault-public.json").read_text("utf-8"))
    import base64

    pub["signing_public"] = base64.b64encode(raw).decode()
    (bag / "data/custody/vault-public.json").write_text(json.dumps(pub), "utf-8")
    _flip_byte(_first_original(bag))
    import bagit

    b = bagit.Bag(str(bag))
    b.save(manifests=True)
    for alg in ("sha256", "sha512"):
        data = (bag / f"tagmanifest-{alg}.txt").read_bytes()
        (bag / f"signatures/tagmanifest-{alg}.txt.sig").write_bytes(other.sign(data))


TAMPERING: dict[str, tuple[Callable[[Path], None], str]] = {
    "changed byte in an original": (lambda b: _flip_byte(_first_original(b)),
                                    "payload digests: data/originals/"),
    "removed original": (lambda b: _first_original(b).unlink(), "but missing"),
    "added file": (lambda b: (b / "data/originals/extra.mp4").write_bytes(b"x" * 10),
                   "data/originals/extra.mp4 is in the bag but not in manifest"),
    "edited custody line": (_edit_custody, "custody chain: event"),
    "deleted custody line": (_drop_custody_line, "events are missing or reordered"),
    "swapped signature": (_swap_signature, "manifest signature: signatures/tagmanifest"),
    "edited manifest": (lambda b: (b / "manifest-sha256.txt").write_text(
        (b / "manifest-sha256.txt").read_text().replace("0", "1", 1)),
        "tag files: manifest-sha256.txt"),
    "edited bag-info": (lambda b: (b / "bag-info.txt").write_text(
        (b / "bag-info.txt").read_text().replace("Test NGO", "Other NGO")),
        "tag files: bag-info.txt"),
    "re-signed by another key": (_resign_with_other_key, "custody chain"),
    # crafted files must fail a check, not crash the verifier
    "non-event line in custody": (lambda b: (b / "data/custody/events.jsonl").open("a").write(
        "[1, 2]\n"), "is not an event"),
    "bag-info not UTF-8": (lambda b: (b / "bag-info.txt").write_bytes(b"\xff\xfe\x00"),
                           "tag files: bag-info.txt"),
    "manifest line malformed": (lambda b: (b / "manifest-sha512.txt").open("a").write(
        "zz not-a-digest\n"), "manifest-sha512.txt line"),
}


@pytest.mark.parametrize("case", sorted(TAMPERING))
def test_verify_export_names_each_tampering(case: str, bag_copy: Path) -> None:
    tamper, expected = TAMPERING[case]
    tamper(bag_copy)
    result = verify_bag(bag_copy)
    assert not result.ok
    assert any(expected in p for p in result.problems), result.problems


def test_resigned_bag_also_fails_the_expected_key(bag_copy: Path, archive: Exported) -> None:
    _resign_with_other_key(bag_copy)
    with archive.vault() as v:
        fp = v.public.fingerprint
    result = verify_bag(bag_copy, expect_key=fp)
    assert any("not the expected" in p for p in result.problems)


# -- encrypted to the recipient -----------------------------------------------------------------
@pytest.fixture(scope="module")
def recipient_key(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    key = tmp_path_factory.mktemp("recipient") / "key.txt"
    subprocess.run(["age-keygen", "-o", str(key)], check=True, capture_output=True)
    public = next(ln.split(": ")[1] for ln in key.read_text().splitlines()
                  if ln.startswith("# public key"))
    return key, public


def test_encrypted_volumes_decrypt_with_age_cli(archive: Exported, recipient_key: tuple[Path, str],
                                               tmp_path: Path) -> None:
    key, public = recipient_key
    out = tmp_path / "out"
    data = cli_json("export", archive.vault_path, "--no-pdf", "--all", "--to", out,
                    "--recipient", public, "--volume-size", "1M", "--include", "derivatives")
    vols = sorted(out.iterdir())
    assert [v.name for v in vols] == [f"bag.tar.age.{n:03d}" for n in range(1, len(vols) + 1)]
    assert len(vols) > 2 and all(v.stat().st_size <= 1024 * 1024 for v in vols)
    assert [v["sha256"] for v in data["volumes"]] == [  # type: ignore[index]
        hashlib.sha256(v.read_bytes()).hexdigest() for v in vols]
    for v in vols:  # nothing readable without the key
        assert b"data/originals" not in v.read_bytes()
    unpacked = tmp_path / "unpacked"
    unpacked.mkdir()
    cat = subprocess.Popen(["cat", *map(str, vols)], stdout=subprocess.PIPE)
    age = subprocess.Popen(["age", "-d", "-i", str(key)], stdin=cat.stdout,
                           stdout=subprocess.PIPE)
    tar = subprocess.run(["tar", "-x", "-C", str(unpacked)], stdin=age.stdout,
                         capture_output=True)
    assert age.wait() == 0 and cat.wait() == 0 and tar.returncode == 0, tar.stderr
    bag = unpacked / "bag"
    assert bagit_validate(bag).returncode == 0
    assert verify_bag(bag).ok
    assert len(list((bag / "data/originals").iterdir())) == len(set(archive.shas.values()))
    assert any(p.name.startswith("proxy-") for p in (bag / "data/derivatives").rglob("*"))


def test_bad_recipient_is_refused_before_writing(archive: Exported, tmp_path: Path) -> None:
    r = cli("export", archive.vault_path, "--all", "--to", tmp_path / "o", "--recipient",
            "age1notakey")
    assert r.returncode == 2 and "not an age or SSH public key" in r.stderr
    assert not (tmp_path / "o").exists()


# -- RFC 3161 -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tsa(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalTSA]:
    with LocalTSA(tmp_path_factory.mktemp("tsa")) as t:
        yield t


def test_timestamped_manifest_accepted_by_openssl(archive: Exported, tsa: LocalTSA,
                                                  tmp_path: Path) -> None:
    out = tmp_path / "ts"
    cli_json("export", archive.vault_path, "--no-pdf", "--original", archive.shas["cam03.mp4"][:12],
             "--to", out, "--tsa", tsa.url, "--tsa", tsa.url)
    bag = out / "bag"
    listing = json.loads((bag / "signatures/timestamps.json").read_text())
    assert len(listing) == 2
    for t in listing:
        r = tsa.openssl_verify(bag / t["data"], bag / "signatures" / t["token"])
        assert r.returncode == 0 and "Verification: OK" in r.stdout, r.stderr
    data = cli_json("verify-export", bag, "--tsa-cert", tsa.ca_pem_path)
    ts = next(c for c in data["checks"] if c["name"] == "RFC 3161 timestamps")  # type: ignore[index]
    assert ts["ok"] and "Strongroom Test TSA" in ts["detail"]
    # the standalone verifier checks tokens with openssl
    r = subprocess.run(["/usr/bin/python3", "-I", "verify.py", ".", "--tsa-cert",
                        str(tsa.ca_pem_path)], cwd=bag, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout
    # a token checked against another CA fails
    from tsa import make_ca

    other_ca, _ = make_ca(tmp_path / "other")
    r = cli("verify-export", bag, "--tsa-cert", other_ca)
    assert r.returncode == 1 and "RFC 3161" in r.stdout


def test_unreachable_tsa_leaves_no_bag(archive: Exported, tmp_path: Path) -> None:
    r = cli("export", archive.vault_path, "--no-pdf", "--all", "--to", tmp_path / "o", "--tsa",
            "http://127.0.0.1:9/")
    assert r.returncode == 2 and "127.0.0.1:9" in r.stderr
    assert list((tmp_path / "o").iterdir()) == []


# -- bad input -----------------------------------------------------------------------------------
def test_unknown_case(archive: Exported, tmp_path: Path) -> None:
    r = cli("export", archive.vault_path, "--case", "Нет такого", "--to", tmp_path)
    assert r.returncode == 2
    assert "no case named" in r.stderr and CASE in r.stderr


def test_missing_blob_stops_before_writing(archive: Exported, tmp_path: Path) -> None:
    path = tmp_path / "vault"
    shutil.copytree(archive.vault_path, path)
    with open_vault(path, archive.template.keys) as v, v.catalogue.read() as s:
        from strongroom.catalogue.models import Original

        blob = s.scalars(select(Original.blob_name).where(
            Original.sha256 == archive.shas["cam07_b.mp4"])).one()
    next((path / "blobs").rglob(blob)).unlink()
    r = cli("export", path, "--case", CASE, "--to", tmp_path / "out")
    assert r.returncode == 1
    assert "missing" in r.stderr and archive.shas["cam07_b.mp4"] in r.stderr
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


def test_existing_bag_is_not_overwritten(case_bag: Path, archive: Exported) -> None:
    r = cli("export", archive.vault_path, "--case", CASE, "--to", case_bag.parent)
    assert r.returncode == 2 and "already exists" in r.stderr


# -- handover and receipt ------------------------------------------------------------------------
def test_handover_and_signed_receipt(case_bag: Path, archive: Exported, tmp_path: Path) -> None:
    key = tmp_path / "prosecutor"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    bag_id = next(ln.split(": ", 1)[1] for ln in (case_bag / "bag-info.txt").read_text()
                  .splitlines() if ln.startswith("External-Identifier"))
    cli_json("handed-over", archive.vault_path, bag_id, "--to", "PNAT, Paris",
             "--how", "courier, disk SN 123")
    receipt = tmp_path / "receipt.json"
    data = cli_json("receipt", case_bag, "--sign-with", key, "--name", "Juge X", "-o", receipt)
    assert data["receipt"]["bag_verified"] is True  # type: ignore[index]
    cli_json("import-receipt", archive.vault_path, receipt)
    with archive.vault() as v, v.catalogue.read() as s:
        actions = [e.action for e in s.scalars(select(CustodyEvent).where(
            CustodyEvent.subject == f"export:{bag_id}").order_by(CustodyEvent.seq))]
    assert actions[-2:] == ["handed_over", "received"]
    # a receipt edited after signing is refused
    doc = json.loads(receipt.read_text())
    doc["receipt"]["recipient"] = "someone else"
    receipt.write_text(json.dumps(doc))
    r = cli("import-receipt", archive.vault_path, receipt)
    assert r.returncode == 1 and "does not verify" in r.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs needs root")
@pytest.mark.parametrize("encrypted", [False, True], ids=["folder", "age-volumes"])
def test_disk_full_removes_the_partial_export(archive: Exported, recipient_key: tuple[Path, str],
                                             tmp_path: Path, encrypted: bool) -> None:
    dest = tmp_path / "small"
    dest.mkdir()
    with small_tmpfs(dest, "1m"):
        with archive.vault() as v, v.catalogue.read() as s:
            before = s.scalar(select(func.count()).select_from(CustodyEvent))
        extra = ["--recipient", recipient_key[1]] if encrypted else []
        r = cli("export", archive.vault_path, "--no-pdf", "--all", "--to", dest, *extra)
        assert r.returncode == 2, r.stderr
        assert "no space left" in r.stderr and "removed" in r.stderr
        assert r.stderr.count("\n") == 1, "one line, no traceback"
        assert list(dest.iterdir()) == [], "nothing partial may stay behind"
        with archive.vault() as v, v.catalogue.read() as s:
            assert s.scalar(select(func.count()).select_from(CustodyEvent)) == before


def test_later_export_shows_earlier_exports_of_the_same_originals(
        case_bag: Path, archive: Exported, tmp_path: Path) -> None:
    def exported_events(bag: Path) -> list[dict[str, object]]:
        return [e for e in map(json.loads, (bag / "data/custody/events.jsonl").read_text(
            "utf-8").splitlines()) if e.get("action") == "exported"]

    overlap, other = tmp_path / "overlap", tmp_path / "other"
    cli_json("export", archive.vault_path, "--no-pdf", "--original", archive.shas["cam07_b.mp4"],
             "--to", overlap)
    cli_json("export", archive.vault_path, "--no-pdf", "--original", archive.shas["cam03.mp4"],
             "--to", other)
    assert any(e["details"]["case"] == CASE  # type: ignore[index]
               for e in exported_events(overlap / "bag"))
    assert not any(e.get("details", {}).get("case") == CASE  # type: ignore[attr-defined]
                   for e in exported_events(other / "bag"))
    assert verify_bag(overlap / "bag").ok and verify_bag(other / "bag").ok


def test_encrypted_to_an_ssh_key_decrypts_with_age(archive: Exported, tmp_path: Path) -> None:
    key = tmp_path / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    public = key.with_suffix(".pub").read_text().strip()
    out = tmp_path / "out"
    cli_json("export", archive.vault_path, "--original", archive.shas["cam03.mp4"], "--to", out,
             "--recipient", public, "--no-pdf")
    (vol,) = out.iterdir()
    assert vol.name == "bag.tar.age"
    plain = subprocess.run(["age", "-d", "-i", str(key), str(vol)], capture_output=True)
    assert plain.returncode == 0, plain.stderr
    unpacked = tmp_path / "u"
    unpacked.mkdir()
    subprocess.run(["tar", "-x", "-C", str(unpacked)], input=plain.stdout, check=True)
    assert verify_bag(unpacked / "bag").ok
    assert not (unpacked / "bag/data/report/report.en.pdf").exists()


def test_sha512_recorded_at_ingest_is_the_bags(template: Template, tmp_path: Path) -> None:
    src = tmp_path / "stick"
    src.mkdir()
    for i, size in enumerate((3 * 1024 * 1024, 50_000)):
        (src / f"clip{i}.mp4").write_bytes(os.urandom(size))
    path = tmp_path / "vault"
    shutil.copytree(template.path, path)
    with open_vault(path, template.keys, sha512=True) as v:
        ingest(v, src, "stick")
        from strongroom.export.bag import ExportOptions, export

        export(v, tmp_path / "out", ExportOptions(everything=True, pdf=False))
    bag = tmp_path / "out" / "bag"
    for line in (bag / "manifest-sha512.txt").read_text().splitlines():
        digest, rel = line.split("  ", 1)
        if rel.startswith("data/originals/"):
            assert hashlib.sha512((bag / rel).read_bytes()).hexdigest() == digest
    assert bagit_validate(bag).returncode == 0
