"""The review app's Intake page (issue 17): what sources wrote through the intake, the
receipts they were sent, and a form to answer one. For admins and investigators only: a
source's words can identify them.

The page reads the intake's data folder named by the `intake_data` setting (the folder itself
on a shared disk, or a copy; replies are written into it, for the intake to show). Messages are
decrypted in memory with the vault's key, as `strongroom intake-messages` does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from strongroom.errors import StrongroomError
from strongroom.review import actions
from strongroom.review.actions import Person
from strongroom.review.app import STAFF, _field, _not_stopped, auth
from strongroom.vault import Vault


def register(app: FastAPI, page: Callable[..., HTMLResponse]) -> None:
    from strongroom.ingest.intake import read_messages, reply

    vault: Vault = app.state.vault

    @app.get("/intake", response_class=HTMLResponse, include_in_schema=False)
    def intake_page(request: Request, who: Annotated[Person, auth(*STAFF)]) -> HTMLResponse:
        _not_stopped(who)
        folder = vault.settings.intake_data
        sources: list[dict[str, Any]] = []
        problem = ""
        if folder is not None:
            try:
                sources = read_messages(vault, folder)
            except StrongroomError as exc:
                problem = str(exc)
        return page(request, "intake.html", sources=sources, configured=folder is not None,
                    problem=problem)

    @app.post("/intake/reply", include_in_schema=False)
    async def intake_reply(request: Request, who: Annotated[Person, auth(*STAFF)]) -> Response:
        _not_stopped(who)
        folder = vault.settings.intake_data
        if folder is None:
            raise StrongroomError("no intake folder is set (STRONGROOM_INTAKE_DATA)")
        form = await request.form()
        source = _field(form, "source", 64) or ""
        text = _field(form, "text", 20000) or ""
        with actions.WRITE_LOCK:
            reply(vault, folder, source, text)
        return RedirectResponse("/intake", 303)
