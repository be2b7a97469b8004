"""Review app pages: timelines (issue 15, point 4). Per camera and per facility, the picture
drawn by `catalogue.timeline_svg` on the DVR clock, zoomed by links (no script), with every
clip the timelines cannot place listed beside it.

For admins, investigators and lawyers (`SEARCHERS`), not reviewers: a timeline shows every
clip of a camera, and a reviewer may see only the clips assigned to them. Nothing here shows a
picture of a clip: the bars link to the clip page, whose player is the blurred preview,
opened at the bar's time (`?t=`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Annotated, Any

from fastapi import FastAPI, Path, Query, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from markupsafe import Markup

from strongroom.review import i18n
from strongroom.review.actions import NotFound, Person
from strongroom.review.app import SEARCHERS, _not_stopped, auth

When = Annotated[str | None, Query(alias="from", max_length=40)]
Until = Annotated[str | None, Query(alias="to", max_length=40)]
#: A camera or facility id (0: the camera-unknown row); bounded so no database is asked for
#: an integer it cannot hold.
Id = Annotated[int, Path(ge=0, le=2**31 - 1)]

#: The zoom presets offered under a picture: a window this long about the current centre.
PRESETS = (("a year", timedelta(days=365)), ("a month", timedelta(days=30)),
           ("a day", timedelta(days=1)), ("an hour", timedelta(hours=1)),
           ("10 minutes", timedelta(minutes=10)))


def words() -> dict[str, str]:
    """The picture's words in the person's language."""
    _ = i18n._
    return {
        "title": _("{label}: {clips}, {start} – {end} (DVR clock)"),
        "clips": _("{n} clip(s)"),
        "segment": _("{start} – {end} (DVR clock): clip {sha}… from {offset}"),
        "partial": _("partial clip: {why}"),
        "cluster": _("{n} clips, {start} – {end}: open to zoom in"),
        "gap": _("gap of {length} ({start} – {end}): no recording of this camera in the "
                 "archive"),
        "overlap": _("{n} clips cover the same camera time ({start} – {end}): possibly "
                     "copies"),
        "incident": _("incident #{id}: {title} ({start} – {end})"),
        "empty": _("no clips in this window"),
        "more": _("{n} more overlapping clips drawn in the last lane"),
        "s": _("{n} s"), "min": _("{n} min"), "h": _("{n} h"), "d": _("{n} d"),
    }


def register(app: FastAPI, page: Callable[..., HTMLResponse]) -> None:
    """Add this section's routes to `app`; `page(request, template, **context)` renders."""
    def overview() -> dict[str, Any]:
        from strongroom.catalogue.timeline_svg import cameras, off_clock

        with app.state.vault.catalogue.read() as s:
            cams = cameras(s)
            off = off_clock(s)
        facilities: dict[tuple[int | None, str | None], list[Any]] = {}
        for c in cams:
            facilities.setdefault((c.facility_id, c.facility), []).append(c)
        return {"facilities": facilities, "cameras": cams, "off_clock": off}

    @app.get("/timelines", response_class=HTMLResponse, include_in_schema=False)
    def timelines_page(request: Request,
                       who: Annotated[Person, auth(*SEARCHERS)]) -> HTMLResponse:
        _not_stopped(who)
        return page(request, "timelines.html", **overview())

    @app.get("/api/timelines", tags=["timelines"])
    def api_timelines(who: Annotated[Person, auth(*SEARCHERS)]) -> dict[str, Any]:
        """Every camera (by facility) with its span and clip count on the DVR clock, and
        every clip no timeline places (no clock, no camera, the overlay step failed)."""
        _not_stopped(who)
        data = overview()
        return {"cameras": [c.to_json() for c in data["cameras"]],
                "not_on_a_timeline": [o.to_json() for o in data["off_clock"]]}

    def picture(kind: str, ident: int, start: str | None, end: str | None, *,
                standalone: bool = False) -> dict[str, Any]:
        """What a camera or facility page and its SVG show, in the window asked for."""
        from strongroom.catalogue import timeline_svg as tl

        vault = app.state.vault
        since, until = tl.parse_when(start, "from"), tl.parse_when(end, "to")
        with vault.catalogue.read() as s:
            if kind == "camera":
                found = tl.camera_rows(s, ident, since, until)
                if found is None:
                    raise NotFound("no such camera")
                info, rows, window = found
                label, cams = info.label, [info]
                facility: dict[str, Any] | None = None
            else:
                fac = tl.facility_rows(s, ident, since, until)
                if fac is None:
                    raise NotFound("no such facility")
                row, cams, rows, window = fac
                label = row.name
                facility = {"id": row.id, "name": row.name, "type": row.type,
                            "region": row.region}
            marks = tl.incident_marks(s, rows)
            off = [] if standalone else tl.off_clock(s)
        base = f"/timelines/{kind}/{ident}"
        whole = tl.span_window(cams)
        svg = tl.render(rows, window, label=label, marks=marks, words=words(),
                        zoom_href=lambda w: f"{base}?{w.query()}", standalone=standalone)
        zoom = {"in": tl.zoomed(window, 0.5), "out": tl.zoomed(window, 2.0),
                "earlier": tl.panned(window, -0.5), "later": tl.panned(window, 0.5)}
        labels = {c.label for c in cams}
        return {"kind": kind, "id": ident, "label": label, "cameras": cams,
                "facility": facility, "svg": svg, "window": window, "base": base,
                "zoom": zoom, "whole": whole, "rows": rows, "marks": marks,
                "presets": [(name, tl.around(window.centre, span)) for name, span in PRESETS],
                "off_clock": sorted(off, key=lambda o: (o.camera not in labels,
                                                        o.original)),
                "here": labels}

    def show(request: Request, who: Person, kind: str, ident: int, start: str | None,
             end: str | None) -> Response:
        _not_stopped(who)
        if kind == "camera" and ident:
            with app.state.vault.catalogue.read() as s:
                from strongroom.catalogue.models import Camera

                cam = s.get(Camera, ident)
                merged = cam.merged_into if cam is not None else None
            if merged is not None:  # a merged camera's segments stand under the other one
                return RedirectResponse(f"/timelines/camera/{merged}", status_code=303)
        data = picture(kind, ident, start, end)
        data["svg"] = Markup(data["svg"])  # noqa: S704 - built by ElementTree, escaped there
        return page(request, "timeline.html", **data)

    @app.get("/timelines/camera/{camera_id}", response_class=HTMLResponse,
             include_in_schema=False)
    def camera_page(request: Request, camera_id: Id,
                    who: Annotated[Person, auth(*SEARCHERS)], start: When = None,
                    end: Until = None) -> Response:
        return show(request, who, "camera", camera_id, start, end)

    @app.get("/timelines/facility/{facility_id}", response_class=HTMLResponse,
             include_in_schema=False)
    def facility_page(request: Request, facility_id: Id,
                      who: Annotated[Person, auth(*SEARCHERS)], start: When = None,
                      end: Until = None) -> Response:
        return show(request, who, "facility", facility_id, start, end)

    def svg(kind: str, ident: int, who: Person, start: str | None, end: str | None
            ) -> Response:
        _not_stopped(who)
        data = picture(kind, ident, start, end, standalone=True)
        return Response(data["svg"], media_type="image/svg+xml",
                        headers={"Cache-Control": "private, no-store"})

    @app.get("/api/timelines/camera/{camera_id}.svg", tags=["timelines"])
    def api_camera_svg(camera_id: Id, who: Annotated[Person, auth(*SEARCHERS)],
                       start: When = None, end: Until = None) -> Response:
        """The camera's timeline picture (SVG) on the DVR clock, in the window `from`–`to`
        (`YYYY-MM-DDTHH:MM:SS`; either left out: the camera's own span). Camera 0: segments
        with a clock but no camera label."""
        return svg("camera", camera_id, who, start, end)

    @app.get("/api/timelines/facility/{facility_id}.svg", tags=["timelines"])
    def api_facility_svg(facility_id: Id, who: Annotated[Person, auth(*SEARCHERS)],
                         start: When = None, end: Until = None) -> Response:
        """The facility's timeline picture (SVG): one row per camera."""
        return svg("facility", facility_id, who, start, end)
