"""`strongroom demo`: a vault built from generated DVR-style clips, with every capability run.

Grows as later issues land (pipeline, review app, export). Never real footage: the clips come
from `strongroom.testmedia`. The demo passphrase is printed because the demo holds nothing.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from rich.console import Console

from strongroom.settings import Settings

DEMO_PASSPHRASE = "demo passphrase — not for real material"  # noqa: S105 - printed on purpose


def run_demo(settings: Settings, *, show_progress: bool = True) -> dict[str, Any]:
    from strongroom.catalogue.queries import vault_stats
    from strongroom.cli import _IngestBar, _progress
    from strongroom.custody.verify import verify
    from strongroom.ingest import ingest
    from strongroom.testmedia import demo_set
    from strongroom.vault import Vault

    console = Console(stderr=True, quiet=not show_progress)
    root = settings.vault
    media = root.with_name(root.name + "-media")
    if root.exists():
        shutil.rmtree(root)
    console.print(f"[bold]Generating DVR-style clips[/] in {media} …")
    sticks = demo_set(media)
    console.print(f"[bold]Creating vault[/] {root} (passphrase: {DEMO_PASSPHRASE!r})")
    result: dict[str, Any] = {"vault": str(root), "passphrase": DEMO_PASSPHRASE, "ingest": {}}
    with Vault.create(settings, DEMO_PASSPHRASE, actor="demo") as vault:
        for stick in sorted(sticks):
            with _progress(show_progress) as bar:
                report = ingest(
                    vault, media / stick,
                    f"Demo {stick.upper()}: generated clips, received by demo user",
                    received_by="demo", progress=_IngestBar(bar, stick),
                )
            result["ingest"][stick] = report.to_json()
            console.print(f"  {stick}: {report.new_originals} new, {report.duplicates} "
                          f"duplicate(s), {len(report.errors)} error(s)")
        with _progress(show_progress) as bar:
            task = bar.add_task("verify", total=vault_stats(vault)["original_bytes"], files="")
            checked = verify(vault, advance=lambda n: bar.advance(task, n))
        with vault.write() as s:
            vault.record(s, "verified", f"vault:{vault.public.fingerprint}", {
                "ok": checked.ok, "events_checked": checked.events,
                "originals": checked.originals, "problems": len(checked.problems)})
        result["verify"] = checked.to_json()
        result["stats"] = vault_stats(vault)
    state = "[green]verified OK[/]" if checked.ok else "[red]PROBLEMS FOUND[/]"
    console.print(f"Vault {state}: {checked.originals} originals, {checked.events} custody "
                  f"events, every blob re-hashed.")
    for k, v in result["stats"].items():
        console.print(f"  {k.replace('_', ' ')}: {v}")
    console.print(
        "\nTry:\n"
        f"  export STRONGROOM_PASSPHRASE='{DEMO_PASSPHRASE}'\n"
        f"  strongroom log {root}\n  strongroom verify {root}\n  strongroom stats {root}")
    return result


__all__ = ["DEMO_PASSPHRASE", "Path", "run_demo"]
