"""Every Alembic revision, downgraded and upgraded with a real vault's rows in its tables, on
SQLite and PostgreSQL: the rows a revision keeps survive each step unchanged, what it drops
comes back empty (never invented), and a vault whose data was kept still verifies."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import Engine

from conftest import Template, cli, open_vault, write
from strongroom.catalogue.migrate import HEAD, MIGRATIONS, downgrade, upgrade
from strongroom.catalogue.models import CaseFile, CaseIncident, Incident, IncidentOriginal, Original
from strongroom.catalogue.search_index import is_index_table
from strongroom.testmedia import ClipSpec, generate_clip
from strongroom.vault.vault import VAULT_FORMAT

Rows = dict[str, tuple[list[str], list[tuple[object, ...]]]]

CLIPS = [
    ClipSpec(name="cam03.mp4", duration=2, camera_label="КАМ 03 ПФРСИ",
             clock_start=datetime(2020, 3, 14, 2, 17, 0)),
    ClipSpec(name="cam07.mp4", duration=2, camera_label="КАМ 07 ОТБ-1 САРАТОВ",
             clock_start=datetime(2020, 3, 15, 23, 49, 55), source="life", seed=7),
]
STEPS = "probe,overlay_ocr,perceptual_hash,keyframes"


def revisions() -> list[tuple[str, str]]:
    """(revision, the one it revises — "base" for the first), oldest first."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    walked = list(ScriptDirectory.from_config(cfg).walk_revisions())
    return [(r.revision, str(r.down_revision or "base")) for r in reversed(walked)]


@dataclass
class Built:
    path: Path
    url: str
    env: dict[str, str]
    #: SQLCipher key of a SQLite catalogue
    key: bytes | None = None

    def engine(self) -> Engine:
        from strongroom.catalogue.db import Catalogue

        return Catalogue(self.url, key=self.key).engine if self.key else create_engine(self.url)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgresql":
        return str(request.getfixturevalue("postgres_url"))
    return ""


def new_vault(template: Template, tmp_path: Path, database_url: str) -> Built:
    path = tmp_path / "vault"
    shutil.copytree(template.path, path)
    if not database_url:
        return Built(path, f"sqlite:///{path / 'catalogue.db'}", {},
                     key=template.keys.catalogue_key)
    (path / "catalogue.db").unlink()
    (path / "custody-checkpoints.jsonl").unlink()  # the SQLite template's chain, not this one's
    with open_vault(path, template.keys, database_url=database_url) as v, v.write() as s:
        v.record(s, "vault_created", f"vault:{v.public.fingerprint}", {
            "format": VAULT_FORMAT, "age_recipient": v.public.age_recipient,
            "signing_key_fingerprint": v.public.fingerprint})
    return Built(path, database_url, {"STRONGROOM_DATABASE_URL": database_url})


def fill(built: Built, template: Template, tmp_path: Path, *, analyse: bool) -> None:
    """Two sticks, a duplicate, a text file; optionally the pipeline, a camera mapped to a
    facility, an incident and a case — rows in (nearly) every table."""
    usb1, usb2 = tmp_path / "usb1", tmp_path / "usb2"
    usb1.mkdir()
    for spec in CLIPS:
        generate_clip(spec, usb1)
    write(usb1 / "notes.txt", "Камера 03, ПФРСИ\n".encode())
    write(usb2 / "copy.mp4", (usb1 / "cam03.mp4").read_bytes())
    for usb, what in ((usb1, "USB stick 1, serial 4C53"), (usb2, "USB stick 2")):
        r = cli("ingest", built.path, usb, "-a", what, "--json", env=built.env)
        assert r.returncode == 0, r.stderr
    if not analyse:
        return
    r = cli("process", built.path, "--workers", "1", "--steps", STEPS, "--json", env=built.env)
    assert r.returncode == 0, r.stdout + r.stderr
    r = cli("cameras", "map", built.path, "КАМ 07 ОТБ-1 САРАТОВ", "--facility", "ОТБ-1 Саратов",
            "--type", "ОТБ", env=built.env)
    assert r.returncode == 0, r.stderr
    r = cli("cameras", "rename", built.path, "КАМ 03 ПФРСИ", "КАМ 3 ПФРСИ", env=built.env)
    assert r.returncode == 0, r.stderr
    r = cli("cameras", "merge", built.path, "КАМ 3 ПФРСИ", "КАМ 07 ОТБ-1 САРАТОВ",
            env=built.env)
    assert r.returncode == 0, r.stderr
    database = {"database_url": built.url} if built.env else {}
    with open_vault(built.path, template.keys, **database) as v, v.write() as s:
        shas = sorted(s.scalars(Original.__table__.select().with_only_columns(
            Original.sha256)).all())
        inc = Incident(title="Избиение", description="one night", abuse_types=["beating"],
                       occurred_from=datetime(2020, 3, 15, 23, 50), severity=4,
                       created_at=datetime.now(UTC))
        case = CaseFile(name="Саратов ОТБ-1", purpose="prosecution", created_at=datetime.now(UTC))
        s.add_all([inc, case])
        s.flush()
        s.add(CaseIncident(case_id=case.id, incident_id=inc.id))
        s.add(IncidentOriginal(incident_id=inc.id, original_sha256=shas[0], note="0:01"))
        v.annotate(s, "incident", inc.id, "created")
        v.annotate(s, "case", case.id, "created")


def rows(engine: Engine) -> Rows:
    """Every table but Alembic's own and the search index's (derived from the others, filled
    by the migration that makes it: tested in test_search.py): its column names and its rows,
    in a stable order."""
    out: Rows = {}
    with engine.connect() as conn:
        for table in inspect(conn).get_table_names():
            if table == "alembic_version" or is_index_table(table):
                continue
            result = conn.execute(text(f'SELECT * FROM "{table}"'))  # noqa: S608 - our names
            columns = list(result.keys())
            out[table] = (columns, sorted((tuple(r) for r in result), key=repr))
    return out


def projected(table: tuple[list[str], list[tuple[object, ...]]],
              columns: list[str]) -> list[tuple[object, ...]]:
    names, data = table
    at = [names.index(c) for c in columns]
    return sorted((tuple(r[i] for i in at) for r in data), key=repr)


def check_step(before: Rows, after: Rows, step: str) -> None:
    """What both sides have is unchanged, row for row; what the step added is empty."""
    for table, (columns, data) in after.items():
        if table not in before:
            assert data == [], f"{step}: new table {table} came with rows"
            continue
        common = [c for c in columns if c in before[table][0]]
        assert projected(after[table], common) == projected(before[table], common), \
            f"{step}: rows of {table} changed"
        for new in (c for c in columns if c not in before[table][0]):
            filled = [r for r in projected(after[table], [new]) if r[0] is not None]
            assert filled == [], f"{step}: new column {table}.{new} was filled in"


def _lost(before: tuple[list[str], list[tuple[object, ...]]],
          after: tuple[list[str], list[tuple[object, ...]]]) -> bool:
    """Whether rows changed in the columns both sides have, or a column that held data is
    gone. (Stepping down a revision from above another one also drops that one's columns:
    an empty table that lost columns lost nothing.)"""
    common = [c for c in before[0] if c in after[0]]
    if projected(after, common) != projected(before, common):
        return True
    return any(r[0] is not None for c in before[0] if c not in after[0]
               for r in projected(before, [c]))


def verify_json(built: Built) -> dict[str, object]:
    r = cli("verify", built.path, "--json", env=built.env)
    report = json.loads(r.stdout)
    assert isinstance(report, dict)
    return report


def test_revisions_are_one_line_from_base_to_head() -> None:
    chain = revisions()
    assert chain[0][1] == "base" and chain[-1][0] == HEAD
    assert all(prev == chain[i - 1][0] for i, (_rev, prev) in enumerate(chain) if i)


def test_each_revision_steps_down_and_up_keeping_its_rows(
        template: Template, tmp_path: Path, database_url: str) -> None:
    built = new_vault(template, tmp_path, database_url)
    fill(built, template, tmp_path, analyse=True)
    engine = built.engine()
    try:
        at_head = rows(engine)
        for table in ("acquisition", "original", "sighting", "custody_event",
                      "custody_checkpoint", "media_info", "segment", "camera", "facility",
                      "derivative", "step_run", "frame_hash", "incident", "case_file",
                      "case_incident", "incident_original"):
            assert at_head[table][1], f"no rows in {table}: the migrations would prove nothing"
        assert any(r[0] is not None for r in projected(at_head["derivative"], ["meta"]))
        assert any(r[0] is not None for r in projected(at_head["segment"], ["clock_format"]))

        seen = {HEAD: at_head}
        for revision, down in reversed(revisions()):
            before = rows(engine)
            downgrade(engine, down)
            after = rows(engine)
            check_step(before, after, f"downgrade {revision} -> {down}")
            seen[down] = after
        assert seen["base"] == {}, "base still has tables"

        for revision, down in revisions():
            before = rows(engine)
            upgrade(engine, revision)
            after = rows(engine)
            check_step(before, after, f"upgrade {down} -> {revision}")
            assert after == {t: (cols, []) for t, (cols, _) in after.items()}, \
                "rows came back from nowhere after downgrading to base"
        assert set(rows(engine)) == set(at_head)
    finally:
        engine.dispose()
    # everything was dropped at base, and the vault says so rather than verifying "OK"
    r = cli("verify", built.path, env=built.env)
    assert r.returncode == 2 and "holds no custody log" in r.stderr, r.stderr


@pytest.mark.parametrize("analyse", [False, True], ids=["ingested", "analysed"])
def test_each_revision_round_trips_with_its_data(template: Template, tmp_path: Path,
                                                 database_url: str, analyse: bool) -> None:
    """Down one revision and back up, for each revision but the first (which drops
    everything): rows of tables the revision does not touch are unchanged; when nothing was
    lost the vault still verifies, and when the revision drops data of its own (0002: analysis
    results, frame hashes, derivative meta; 0007: the kept versions of cases, incidents and
    reviews) `verify` names exactly that, never "OK"."""
    built = new_vault(template, tmp_path, database_url)
    fill(built, template, tmp_path, analyse=analyse)
    assert verify_json(built)["ok"] is True
    engine = built.engine()
    anything_lost = False
    named: set[tuple[str, str]] = set()
    try:
        for revision, down in reversed(revisions()):
            if down == "base":
                continue
            before = rows(engine)
            downgrade(engine, down)
            middle = rows(engine)
            check_step(before, middle, f"downgrade {revision} -> {down}")
            upgrade(engine, revision)
            after = rows(engine)
            check_step(middle, after, f"upgrade {down} -> {revision}")
            touched = {t for t in before if t not in middle or middle[t][0] != before[t][0]}
            # stepping down from above a later revision also drops that one's tables: an
            # empty one lost nothing
            lost = {t for t in before if (before[t][1] if t not in after
                                          else _lost(before[t], after[t]))}
            assert lost <= touched, f"{revision}: rows of untouched tables changed: {lost}"
            engine.dispose()
            report = verify_json(built)
            if not lost:
                # nothing new: only what an earlier (newer) lossy step already lost is named
                now = {(p["subject"], p["message"]) for p in report.get("problems", [])}
                assert now <= named, (revision, report["problems"])
                continue
            named |= {(p["subject"], p["message"]) for p in report.get("problems", [])}
            assert analyse, f"{revision}: an ingest-only vault lost rows of {lost}"
            anything_lost = True
            assert "problems" in report, report
            problems = report["problems"]
            assert isinstance(problems, list) and problems, f"{revision}: loss of {lost} unseen"
            assert all(p["check"] == "catalogue" for p in problems), problems
            assert not any(p["subject"].split()[0] in ("original", "sighting", "acquisition")
                           for p in problems), problems
        assert anything_lost == analyse, "the analysed vault exercised no lossy step"
    finally:
        engine.dispose()
