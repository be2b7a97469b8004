"""A vault for the timeline tests: one camera with two clips covering the same DVR time and a
third after a gap, a second camera (renamed to a hostile label), a clip with no overlay at
all; processed by the real pipeline (blurred previews included), one account per role, an
incident on the first clip and the first camera mapped to a facility."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest

from conftest import Template, built_once, light_password_hashes, open_vault
from review_fixtures import PASSWORD, ROLES, STEPS, Reviewed
from strongroom.ingest import ingest
from strongroom.review import actions
from strongroom.testmedia import ClipSpec, generate_clip

CAM = "КАМ 03 ПФРСИ"
OTHER = "КАМ 07 ОТБ-1"
#: what a person (or OCR) might put in a label: markup, quotes, an ampersand
HOSTILE = '<script>alert("x")</script> & \'q\' КАМ 07'
FACILITY = "СИЗО-1 Саратов"
T0 = datetime(2021, 3, 14, 2, 17, 5)
CLIPS = [
    ClipSpec(name="a.mp4", duration=6, size=(320, 240), camera_label=CAM, clock_start=T0,
             source="life", seed=1),
    # two seconds later on the same camera: both clips show 02:17:07–02:17:10
    ClipSpec(name="b.mp4", duration=4, size=(320, 240), camera_label=CAM,
             clock_start=datetime(2021, 3, 14, 2, 17, 7), source="life", seed=2),
    # thirteen minutes later: a gap between
    ClipSpec(name="c.mp4", duration=3, size=(320, 240), camera_label=CAM,
             clock_start=datetime(2021, 3, 14, 2, 30, 0), source="life", seed=3),
    ClipSpec(name="d.mp4", duration=3, size=(320, 240), camera_label=OTHER,
             clock_start=datetime(2021, 3, 14, 2, 20, 0), source="life", seed=4),
    ClipSpec(name="noosd.mp4", duration=3, size=(320, 240), camera_label="", clock_start=None,
             source="life", seed=5),
]


@dataclass
class Placed:
    r: Reviewed
    shas: dict[str, str]  # file name → sha256
    incident: int


def build_timelines(template: Template, tmp_path_factory: pytest.TempPathFactory,
                    name: str) -> Placed:
    """The timeline vault, in a folder of its own (`name`) for the calling module. Built
    (clips generated, ingested, processed, placed) once per test run and copied: see
    `review_fixtures.build`."""
    from sqlalchemy import select

    from strongroom.catalogue.cases import NewIncident, add_incident
    from strongroom.catalogue.models import Sighting
    from strongroom.catalogue.places import map_camera, rename_camera
    from strongroom.pipeline.runner import process

    def make(folder: Path) -> None:
        path = folder / "vault"
        shutil.copytree(template.path, path)
        usb = folder / "usb"
        usb.mkdir()
        for spec in CLIPS:
            generate_clip(spec, usb)
        v = open_vault(path, template.keys)
        try:
            ingest(v, usb, "USB stick (timeline test)")
            process(v, steps=STEPS.split(","), workers=2)
            with v.catalogue.read() as s:
                shas = {Path(x.rel_path).name: x.original_sha256 or ""
                        for x in s.scalars(select(Sighting))}
            with light_password_hashes():
                secrets = {role: actions.add_user(v, role, role, PASSWORD) for role in ROLES}
            rename_camera(v, OTHER, HOSTILE)
            map_camera(v, CAM, FACILITY, region="Саратовская область")
            made = add_incident(v, NewIncident(
                sha256=shas["a.mp4"], start_s=1.0, end_s=3.0, description="Удары дубинкой",
                abuse_types=("beating",)))
        finally:
            v.close()
        (folder / "placed.json").write_text(json.dumps(
            {"shas": shas, "secrets": secrets, "incident": made["incident"]}))

    built = built_once(tmp_path_factory, "timelines", make)
    placed = json.loads((built / "placed.json").read_text())
    path = tmp_path_factory.mktemp(name) / "vault"
    shutil.copytree(built / "vault", path)
    shas: dict[str, str] = placed["shas"]
    r = Reviewed(open_vault(path, template.keys), path, sorted(shas.values()), placed["secrets"])
    return Placed(r, shas, placed["incident"])
