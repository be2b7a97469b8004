"""A vault for the timeline tests: one camera with two clips covering the same DVR time and a
third after a gap, a second camera (renamed to a hostile label), a clip with no overlay at
all; processed by the real pipeline (blurred previews included), one account per role, an
incident on the first clip and the first camera mapped to a facility."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from conftest import Template, open_vault
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


def build_timelines(template: Template, root: Path) -> Placed:
    from sqlalchemy import select

    from strongroom.catalogue.cases import NewIncident, add_incident
    from strongroom.catalogue.models import Sighting
    from strongroom.catalogue.places import map_camera, rename_camera
    from strongroom.pipeline.runner import process

    path = root / "vault"
    shutil.copytree(template.path, path)
    usb = root / "usb"
    usb.mkdir()
    for spec in CLIPS:
        generate_clip(spec, usb)
    v = open_vault(path, template.keys)
    ingest(v, usb, "USB stick (timeline test)")
    process(v, steps=STEPS.split(","), workers=2)
    with v.catalogue.read() as s:
        shas = {Path(x.rel_path).name: x.original_sha256 or ""
                for x in s.scalars(select(Sighting))}
    r = Reviewed(v, path, sorted(shas.values()))
    for role in ROLES:
        r.secrets[role] = actions.add_user(v, role, role, PASSWORD)
    rename_camera(v, OTHER, HOSTILE)
    map_camera(v, CAM, FACILITY, region="Саратовская область")
    made = add_incident(v, NewIncident(sha256=shas["a.mp4"], start_s=1.0, end_s=3.0,
                                       description="Удары дубинкой", abuse_types=("beating",)))
    return Placed(r, shas, made["incident"])
