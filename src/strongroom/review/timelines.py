"""Review app pages: timelines (issue 15; being built)."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI
from fastapi.responses import HTMLResponse


def register(app: FastAPI, page: Callable[..., HTMLResponse]) -> None:
    """Add this section's routes to `app`; `page(request, template, **context)` renders."""
    del app, page
