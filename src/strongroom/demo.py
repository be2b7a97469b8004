"""`strongroom demo`: a vault built from generated DVR-style clips, with every capability run.

Grows as later issues land (pipeline, review app, export). Never real footage: the clips come
from `strongroom.testmedia`. The demo passphrase is printed because the demo holds nothing.
"""

from __future__ import annotations

import json
import shutil
from datetime import datetime
from pathlib import Path
from typing import Any

from rich.console import Console

from strongroom.errors import StrongroomError
from strongroom.progress import ExportBar, IngestBar, ProcessBar, count_bar, transfer_bar
from strongroom.settings import Settings

DEMO_PASSPHRASE = "demo passphrase — not for real material"  # noqa: S105 - printed on purpose


#: Written into every folder `demo` makes. Only a folder holding it is ever removed, and only
#: with --force: `demo PATH` must never delete a real vault or someone's files.
DEMO_MARK = ".strongroom-demo"


def demo_folders(root: Path) -> list[Path]:
    """The folders a demo at `root` writes: the vault, its generated clips, its handover."""
    return [root, root.with_name(root.name + "-media"), root.with_name(root.name + "-handover")]


#: What `demo` writes at the top of each of its folders, and nothing else: a folder holding
#: anything more (someone's files beside a marker they copied) is not the demo's to delete.
_DEMO_WRITES = [
    {"vault.json", "vault.json.tmp", "keys.age", "keys.age.tmp", "catalogue.db",
     "catalogue.db-wal", "catalogue.db-shm", "custody-checkpoints.jsonl", "blobs",
     "keys-shares.age", "keys-shares.age.tmp"},
    {"usb1", "usb2", "usb3", "shares.txt", "logins.txt", "c2pa", "intake", "intake-codename.txt"},
    {"bag", ".bag.incomplete", "published.mp4"},
]


def clear_demo_folders(root: Path, *, force: bool) -> None:
    """Refuse unless each existing folder is one an earlier `demo` made and `force` is given;
    checks all of them before removing any. A marker alone proves little (anyone can create
    one), so the folder must also hold nothing but what the demo writes there."""
    if not root.name or root.name in (".", "..") or not root.resolve().name:
        raise StrongroomError(f"give the demo vault a name of its own, not {str(root)!r}")
    root = root.resolve()
    for folder, writes in zip(demo_folders(root), _DEMO_WRITES, strict=True):
        if not (folder.exists() or folder.is_symlink()):
            continue
        if not _made_by_demo(folder, writes):
            raise StrongroomError(
                f"{folder} exists and is not a folder that `strongroom demo` made; nothing was "
                "changed: choose another path")
        if not force:
            raise StrongroomError(
                f"{folder} holds an earlier demo; add --force to rebuild it")
    for folder in demo_folders(root):
        if folder.exists():
            shutil.rmtree(folder)


def _made_by_demo(folder: Path, writes: set[str]) -> bool:
    """The marker is there and the folder holds only what demo wrote: every path listed in
    the marker's tree once the demo finished, or (a demo that was interrupted) only the names
    demo writes at the top."""
    if folder.is_symlink() or not folder.is_dir() or not (folder / DEMO_MARK).is_file():
        return False
    try:
        text = (folder / DEMO_MARK).read_text("utf-8")
        present = {p.name for p in folder.iterdir()} - {DEMO_MARK}
        if not present <= writes:
            return False
        try:
            marker = json.loads(text)
        except ValueError:
            return True  # an interrupted (or older) demo's marker: the names are demo's
        tree = marker.get("tree") if isinstance(marker, dict) else None
        return not isinstance(tree, list) or _tree(folder) <= set(tree) | _VOLATILE
    except (OSError, ValueError):
        return False


#: files SQLite may add or remove in a finished demo vault without anyone adding evidence
_VOLATILE = {"catalogue.db-wal", "catalogue.db-shm"}


def _tree(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")} - {DEMO_MARK}


def _mark(folder: Path, *, finished: bool = False) -> None:
    """Mark a folder as demo's; once the demo has finished, with every path it holds."""
    marker: dict[str, Any] = {"made_by": "strongroom demo: `demo --force` may delete this "
                                         "folder if it holds nothing else"}
    if finished:
        marker["tree"] = sorted(_tree(folder))
    (folder / DEMO_MARK).write_text(json.dumps(marker, ensure_ascii=False) + "\n", "utf-8")


def run_demo(settings: Settings, *, show_progress: bool = True,
             force: bool = False) -> dict[str, Any]:
    from strongroom.catalogue.queries import vault_stats
    from strongroom.ingest import ingest
    from strongroom.testmedia import demo_set
    from strongroom.vault import Vault

    console = Console(stderr=True, quiet=not show_progress)
    root = settings.vault
    clear_demo_folders(root, force=force)
    media = demo_folders(root)[1]
    console.print(f"[bold]Generating DVR-style clips[/] in {media} …")
    media.mkdir(parents=True)
    _mark(media)
    sticks = demo_set(media)
    sticks["usb1"].append(_fixed_camera_clip(media / "usb1" / "DVR"))
    sticks["usb3"] = [_faces_clip(media / "usb3")]
    from strongroom.vault.shares import Scheme, split

    console.print(f"[bold]Creating vault[/] {root} (passphrase: {DEMO_PASSPHRASE!r}; and "
                  f"3 shares, any 2 of which open it, in {media / 'shares.txt'})")
    result: dict[str, Any] = {"vault": str(root), "passphrase": DEMO_PASSPHRASE, "ingest": {}}
    shares = split(Scheme(2, 3))
    (media / "shares.txt").write_text(
        "# demo shares: any 2 open the demo vault (strongroom stats VAULT --shares-file F)\n"
        + "\n".join(shares.mnemonics) + "\n", "utf-8")
    with Vault.create(settings, DEMO_PASSPHRASE, actor="demo", shares=shares) as vault:
        _mark(root)
        for stick in sorted(sticks):
            with transfer_bar(show_progress) as bar:
                report = ingest(
                    vault, media / stick,
                    f"Demo {stick.upper()}: generated clips, received by demo user",
                    received_by="demo", progress=IngestBar(bar, stick),
                )
            result["ingest"][stick] = report.to_json()
            _show(console, f"{stick}: {report.to_text()}")
        clip = next(p for p in sticks["usb2"] if p.suffix.lower() != ".txt")
        result["intake"] = _intake(vault, media, clip, console, show_progress)
        result["process"] = _analyse(vault, console, show_progress)
        with transfer_bar(show_progress) as bar:
            task = bar.add_task("verify", total=vault_stats(vault)["original_bytes"], files="")
            checked = vault.verify(advance=lambda n: bar.advance(task, n))
        result["verify"] = checked.to_json()
        console.print("[bold]Vault check[/] (custody chain, checkpoints, catalogue, every "
                      "blob):")
        _show(console, checked.to_text())
        result["casework"] = _casework(vault, console)
        result["export"] = _handover(vault, root, console, show_progress)
        result["review"] = _review_accounts(vault, media, console)
        result["publication"] = _publication(vault, root, result["review"], console)
        result["stats"] = vault_stats(vault)
    result["sealing"] = _sealing(settings, shares.mnemonics[1:], console)
    for folder in demo_folders(root):
        _mark(folder, finished=True)
    console.print(f"[bold]Vault[/] {root}:")
    for k, v in result["stats"].items():
        console.print(f"  {k.replace('_', ' ')}: {v}")
    console.print(
        "\nTry:\n"
        f"  export STRONGROOM_PASSPHRASE='{DEMO_PASSPHRASE}'\n"
        f"  strongroom log {root}\n  strongroom verify {root}\n  strongroom stats {root}\n"
        f"  strongroom timeline {root}\n  strongroom dupes {root}\n"
        f"  strongroom contact-sheet {root} SHA256 -o sheet.jpg\n"
        f"  strongroom verify-export {result['export']['output'][0]}\n"
        f"  strongroom unseal {root} --shares-file {media / 'shares.txt'}\n"
        f"  strongroom verify {root} --schedule 7\n"
        f"  strongroom intake-messages {root} {media / 'intake'}\n"
        f"  strongroom publish list {root}\n"
        f"  strongroom provenance {demo_folders(root)[2] / 'published.mp4'} --vault {root} "
        f"--trust {media / 'c2pa' / 'root.pem'}\n"
        f"  (cd {result['export']['output'][0]} && python3 verify.py .)")
    return result


#: The demo's review app accounts: (user name, role, password). Demo only: real accounts
#: are made with `strongroom user add`, which asks for the password.
DEMO_USERS = (("admin", "admin", "demo admin password"),
              ("investigator", "investigator", "demo investigator password"),
              ("reviewer", "reviewer", "demo reviewer password"),
              ("lawyer", "lawyer", "demo lawyer password"))


def _review_accounts(vault: Any, media: Path, console: Console) -> dict[str, Any]:
    """One account per role for the review app; the reviewer gets two clips to review. The
    TOTP secrets go to `logins.txt` beside the demo clips (a real secret is shown once)."""
    from sqlalchemy import select

    from strongroom.catalogue.models import Original
    from strongroom.review import actions

    accounts = {name: {"role": role, "password": password,
                       "totp_secret": actions.add_user(vault, name, role, password)}
                for name, role, password in DEMO_USERS}
    with vault.catalogue.read() as s:
        shas = list(s.scalars(select(Original.sha256).order_by(Original.sha256).limit(2)))
    admin = actions.Person(0, "admin", "admin", "en", {}, 0, "", None)
    for sha in shas:
        actions.update_review(vault, admin, sha, assign_to="reviewer")
    (media / "logins.txt").write_text("".join(
        f"{name}\t{a['role']}\tpassword: {a['password']}\tTOTP secret: {a['totp_secret']}\n"
        for name, a in accounts.items()), "utf-8")
    console.print(f"[bold]Review app accounts[/]: one per role, in {media / 'logins.txt'}; "
                  f"the reviewer has {len(shas)} clips assigned.")
    return accounts


def _intake(vault: Any, media: Path, clip: Path, console: Console,
            show_progress: bool) -> dict[str, Any]:
    """A source sends a clip through the intake (a real server on 127.0.0.1, in a thread) with
    `strongroom send`'s client and writes a message; the vault imports it (one more sighting
    of a clip it has) and leaves the source a receipt and a reply."""
    import socket
    import threading

    import httpx
    import uvicorn

    from strongroom.ingest.intake import import_intake, read_messages, reply
    from strongroom.intake.app import IntakeSettings, create_app
    from strongroom.intake.client import send

    data = media / "intake"
    app = create_app(IntakeSettings(data, vault.public.age_recipient))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        while not server.started:
            if not thread.is_alive():
                raise StrongroomError("the demo's intake server did not start")
            threading.Event().wait(0.05)
        console.print(f"[bold]Intake[/]: a source sends {clip.name} to {url} (tus, encrypted "
                      "on arrival to the vault's public key) and writes a message")
        sent = send(url, [clip], lang="en")
        token = httpx.post(url + "/api/login", json={"codename": sent.codename}).json()["token"]
        httpx.post(url + "/message", data={"text": "This clip is from the second floor."},
                   cookies={"intake_session": token})
        with transfer_bar(show_progress) as bar:
            imported = import_intake(vault, data, progress=IngestBar(bar, "import-intake"))
        _show(console, imported.to_text())
        source = read_messages(vault, data)[0]["source"]
        reply(vault, data, source, "Received, thank you. Compare the receipt with sha256sum.")
    finally:
        server.should_exit = True
        thread.join(timeout=30)
    (media / "intake-codename.txt").write_text(sent.codename + "\n", "utf-8")
    console.print(f"  the source's codename (to read the receipt and reply at the intake): "
                  f"{sent.codename}")
    return {"codename": sent.codename, "import": imported.to_json()}


def _sealing(settings: Any, two_shares: list[str], console: Console) -> dict[str, Any]:
    """Open the vault again with two of its three shares (no passphrase), run the daily
    scheduled fixity check, and show that the catalogue file holds no acquisition text."""
    from strongroom.vault import Vault
    from strongroom.vault.opening import Shares, start_unseal

    root = settings.vault
    with Vault.open(settings, unsealing=start_unseal(root, Shares(tuple(two_shares)))) as v:
        checked = v.verify(schedule=7)
    console.print("[bold]Opened with 2 of 3 shares[/] and ran the daily fixity check "
                  "(`verify --schedule 7`: a seventh of the blobs a day):")
    _show(console, checked.to_text())
    clear = b"received by demo" in (root / "catalogue.db").read_bytes()
    console.print(f"[bold]Catalogue at rest[/]: SQLCipher-encrypted; the acquisition text is "
                  f"{'IN CLEAR (a bug)' if clear else 'not in catalogue.db'}.")
    return {"opened_with_shares": True, "scheduled_verify": checked.to_json(),
            "catalogue_text_in_clear": clear}


def _show(console: Console, text: str) -> None:
    """A report's own text (what the CLI command prints), indented under the demo's heading.
    Printed as plain text: rich would take `[custody]` or `[probe]` in it for markup."""
    if text:
        console.print("\n".join("  " + ln for ln in text.splitlines()), markup=False,
                      highlight=False, soft_wrap=True)


def _handover(vault: Any, root: Path, console: Console, show_progress: bool) -> dict[str, Any]:
    """Export everything as a signed bag, then check it the way a recipient would."""
    from strongroom.export.bag import ExportOptions, export
    from strongroom.export.verifier import verify_bag

    dest = demo_folders(root)[2]
    dest.mkdir()
    _mark(dest)
    console.print(f"[bold]Exporting[/] the archive as a signed BagIt bag to {dest} …")
    with transfer_bar(show_progress) as bar:
        report = export(vault, dest, ExportOptions(everything=True,
                                                  organisation="Strongroom demo"),
                        ExportBar(bar))
    _show(console, report.to_text())
    checked = verify_bag(Path(report.output[0]))
    console.print("[bold]Checking the bag[/] as its recipient would (no vault needed):")
    _show(console, checked.to_text())
    return {**report.to_json(), "verified": checked.ok}


def _faces_clip(folder: Path) -> Path:
    """A clip to publish: two people (scikit-image's astronaut portrait, and its mirror
    image) crossing a fixed camera's view, with a tone for a voice."""
    from strongroom.testfaces import faces_clip

    folder.mkdir(parents=True, exist_ok=True)
    return faces_clip(folder / "corridor-two-people.mp4", seed=4, seconds=4, audio=True).path


def _publication(vault: Any, root: Path, review: dict[str, Any], console: Console
                 ) -> dict[str, Any]:
    """Publish the two-people clip as an NGO would: a draft with every face hidden and the
    voice masked, approved by the investigator, written out signed with a
    throwaway certificate (a real organisation signs with its own), and checked."""
    from sqlalchemy import select

    from strongroom.catalogue.models import Sighting
    from strongroom.publish.check import check_file, text
    from strongroom.publish.drafts import decide_as, draft, publish
    from strongroom.publish.provenance import Signing
    from strongroom.publish.render import Options
    from strongroom.vault.credentials import throwaway_chain

    with vault.catalogue.read() as s:
        sha = s.scalar(select(Sighting.original_sha256).where(
            Sighting.rel_path.like("%corridor-two-people.mp4")).limit(1))
    console.print("[bold]Publishing[/] the clip with two people: every face hidden on every "
                  "frame, the voice masked …")
    made = draft(vault, sha, Options(mask_voice=True), actor="demo")
    # the demo acts for its investigator, as it assigns the reviewer's clips for its admin
    # (`publish approve` signs a real person in with password and TOTP code)
    decided = decide_as(vault, made["publication"], approve=True, username="investigator",
                        role=review["investigator"]["role"],
                        actor="investigator (investigator, demo)")
    media, handover = demo_folders(root)[1], demo_folders(root)[2]
    chain = throwaway_chain(media / "c2pa", "Strongroom demo NGO")
    out = handover / "published.mp4"
    done = publish(vault, made["publication"], out,
                   signing=Signing(chain.chain, chain.key),
                   organisation="Strongroom demo NGO", actor="demo")
    checked = check_file(out, trust_anchors=chain.root, vault=vault)
    _show(console, f"publication {made['publication']}: {made['faces_found']} face "
                   f"detections in {made['tracks']} tracks hidden; approved by "
                   f"{decided['by']}; written to {out}\n" + text(checked))
    return {**done, "faces_found": made["faces_found"], "tracks": made["tracks"],
            "provenance_ok": checked["ok"]}


#: The demo's two facilities (name, type, region) and its case.
DEMO_FACILITIES = (("ОТБ-1 УФСИН по Саратовской области", "prison hospital",
                    "Саратовская область"),
                   ("ИК-10 УФСИН по Саратовской области", "penal colony",
                    "Саратовская область"))
DEMO_CASE = "Саратов, ОТБ-1: для прокуратуры Франции"
DEMO_INCIDENTS = (("Избиение заключённого дубинками в коридоре ПФРСИ; пытки продолжались "
                   "несколько минут.", ("beating", "torture"), "Потерпевший 1"),
                  ("Заключённого удерживают на полу, угрозы и унижение.",
                   ("restraint", "humiliation"), "Потерпевший 2"))


def _casework(vault: Any, console: Console) -> dict[str, Any]:
    """What reviewers and investigators then build by hand, made here so the demo shows it:
    cameras mapped to two facilities, two incidents on clips with a DVR clock, each with a
    victim by pseudonym, a case for a recipient holding both, and a Russian search that finds
    them by another form of the word."""
    from sqlalchemy import select

    from strongroom.catalogue.cases import NewIncident, add_case, add_incident, add_to_case
    from strongroom.catalogue.models import Segment
    from strongroom.catalogue.people import involve
    from strongroom.catalogue.places import list_cameras, map_camera
    from strongroom.catalogue.search import search

    labels = sorted(c["label"] for c in list_cameras(vault) if not c.get("merged_into"))
    for i, label in enumerate(labels):
        name, kind, region = DEMO_FACILITIES[0 if i < max(1, len(labels) - 1) else 1]
        map_camera(vault, label, name, facility_type=kind, region=region)
    with vault.catalogue.read() as s:
        clocked = list(dict.fromkeys(s.scalars(select(Segment.original_sha256).where(
            Segment.clock_start.is_not(None)).order_by(Segment.clock_start))))
    case = add_case(vault, DEMO_CASE, recipient="Parquet national antiterroriste, Paris",
                    actor="demo")
    made = []
    for sha, (text, types, victim) in zip(clocked, DEMO_INCIDENTS, strict=False):
        inc = add_incident(vault, NewIncident(sha256=sha, start_s=1.0, end_s=3.0,
                                              description=text, abuse_types=types,
                                              severity=4), actor="demo")
        involve(vault, inc["incident"], victim, "victim", actor="demo")
        add_to_case(vault, DEMO_CASE, inc["incident"], actor="demo")
        made.append(inc)
    with vault.catalogue.read() as s:
        found = search(s, "пытка")
    console.print(f"[bold]Case work[/]: {len(labels)} camera(s) mapped to "
                  f"{len(DEMO_FACILITIES)} facilities; case {DEMO_CASE!r} with "
                  f"{len(made)} incident(s); searching «пытка» finds "
                  f"{len(found.hits)} hit(s) (the description says «пытки»).")
    return {"case": case["case"], "incidents": [m["incident"] for m in made],
            "search_hits": len(found.hits)}


def _fixed_camera_clip(folder: Path) -> Path:
    """One clip as a real prison camera films it: a fixed view of a still photograph with a
    few walking figures, noise and a DVR overlay (`strongroom.cctv`, seed 7, clip 2), where
    stillness alone would not find the clock."""
    import os
    from dataclasses import replace

    from strongroom import cctv

    spec = replace(cctv.random_spec(7, 2), name="cam13_2023-02-09_1655.mp4")
    path = folder / spec.name
    cctv.make_clip(spec, path)
    end = int((spec.clock_start.replace(tzinfo=None) - datetime(1970, 1, 1)).total_seconds()
              + spec.duration)
    os.utime(path, (end, end))  # the end of the recording, as the other demo clips
    return path


def _analyse(vault: Any, console: Console, show_progress: bool) -> dict[str, Any]:
    """Run the pipeline, then show what it found: timelines per camera and duplicate groups."""
    from strongroom.catalogue.dupes import near_duplicate_groups
    from strongroom.catalogue.timeline import timeline
    from strongroom.pipeline.runner import process

    console.print("[bold]Analysing[/] (probe, keyframes, scenes, overlay OCR, PDQ, proxies) …")
    with count_bar(show_progress) as bar:
        report = process(vault, progress=ProcessBar(bar))
    _show(console, report.to_text())
    with vault.catalogue.read() as s:
        lines = timeline(s)
        groups = near_duplicate_groups(s)
    console.print("[bold]Timelines[/] (DVR clock read from the picture):")
    _show(console, lines.to_text())
    console.print(f"[bold]Near-duplicates[/]: {len(groups)} group(s)")
    _show(console, "\n".join(g.to_text(i) for i, g in enumerate(groups, 1)))
    return {**report.to_json(),
            "timelines": lines.to_json(),
            "dupes": [g.to_json() for g in groups]}


__all__ = ["DEMO_PASSPHRASE", "Path", "run_demo"]
