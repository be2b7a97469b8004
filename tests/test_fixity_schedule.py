"""Scheduled fixity (issue 13, point 3): `verify --schedule DAYS` re-hashes a rotating share of
the blobs, so that daily runs cover the archive every DAYS days; a damaged blob is found within
one cycle and raised as an alert; what was checked is in the custody log."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from conftest import Template, cli, cli_json, open_vault
from strongroom.catalogue.models import Original
from strongroom.custody.fixity import due
from strongroom.ingest import ingest


def scheduled_runs(path: Path) -> list[list[str]]:
    events = cli_json("log", path, "--action", "fixity_checked")
    assert isinstance(events, list)
    return [e["details"]["blobs"] for e in events if "blobs" in e["details"]]


def blob_names(path: Path, template: Template) -> list[str]:
    from sqlalchemy import select

    with open_vault(path, template.keys) as v, v.catalogue.read() as s:
        return sorted(s.scalars(select(Original.blob_name)))


def test_scheduled_runs_cover_every_blob_once_per_cycle(
        vault_path: Path, template: Template, source: Path) -> None:
    with open_vault(vault_path, template.keys) as v:
        ingest(v, source, "USB stick 1")
    names = blob_names(vault_path, template)
    assert len(names) == 4
    for _ in range(4):
        r = cli("verify", vault_path, "--schedule", "2", "--json")
        assert r.returncode == 0, r.stdout
        out = json.loads(r.stdout)
        assert out["blobs_checked"] == 2 and out["scheduled"]["blobs_total"] == 4
    runs = scheduled_runs(vault_path)
    assert len(runs) == 4 and all(len(r) == 2 for r in runs)
    assert sorted(runs[0] + runs[1]) == names  # one cycle: every blob once
    assert sorted(runs[2] + runs[3]) == names  # and again, oldest first
    assert runs[2] == runs[0]


def test_a_damaged_blob_is_found_within_one_cycle_and_raises_the_alert(
        vault_path: Path, template: Template, source: Path) -> None:
    with open_vault(vault_path, template.keys) as v:
        ingest(v, source, "USB stick 1")
    victim = blob_names(vault_path, template)[-1]
    blob = next(p for p in (vault_path / "blobs").rglob(victim))
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0x01
    blob.write_bytes(bytes(data))
    codes = []
    for _ in range(5):
        r = cli("verify", vault_path, "--schedule", "3", "--json")
        codes.append(r.returncode)
        if r.returncode:
            assert "ALERT" in r.stderr
            problems = json.loads(r.stdout)["problems"]
            assert [p["check"] for p in problems] == ["fixity"]
    first = codes.index(1)
    assert first < 3, "found within one 3-day cycle"
    assert codes[first:] == [1] * (5 - first), "and every day after, until it is dealt with"
    verified = cli_json("log", vault_path, "--action", "verified")
    assert isinstance(verified, list)
    assert [e["details"]["ok"] for e in verified] == [c == 0 for c in codes]


def test_a_full_verify_counts_and_missed_days_show_as_overdue(
        vault_path: Path, template: Template, source: Path) -> None:
    with open_vault(vault_path, template.keys) as v:
        ingest(v, source, "USB stick 1")
        with v.catalogue.read() as s:
            assert due(s, 30).overdue == 0
            never = due(s, 2)
            assert len(never.blobs) == 2
            later = datetime.now(UTC) + timedelta(days=40)
            assert due(s, 30, now=later).overdue == 4  # ingested 40 days "ago", never checked
        v.verify()  # full, now
        soon = datetime.now(UTC) + timedelta(days=20)
        with v.catalogue.read() as s:
            assert due(s, 30, now=soon).overdue == 0
            assert due(s, 30, now=soon + timedelta(days=11)).overdue == 4


def test_a_blob_stored_after_the_last_full_check_is_due_first(
        vault_path: Path, template: Template, source: Path, tmp_path: Path) -> None:
    from conftest import write

    with open_vault(vault_path, template.keys) as v:
        ingest(v, source, "USB stick 1")
        v.verify()
        second = tmp_path / "usb2"
        write(second / "new.bin", b"new evidence " * 1000)
        ingest(v, second, "USB stick 2")
        with v.catalogue.read() as s:
            from sqlalchemy import select

            new = s.scalars(select(Original.blob_name)
                            .where(Original.size == len(b"new evidence ") * 1000)).one()
            assert due(s, 5).blobs == {new}
