"""The human part of a handover: an HTML and a PDF (WeasyPrint) report per language (en, fr).

It lists, per case and incident (or per camera when the export is not a case), every clip with
its SHA-256/MD5, size, first acquisition, DVR-clock range, cameras and facility, the duplicate
groups, and how to verify the bag. Russian text from the catalogue (camera labels, facility
names, descriptions) is kept verbatim. Stills are blurred and greyscale unless the export was
made with `--reveal-stills` (for prosecutors who must see them): nobody opening the report is
shown abuse by surprise.

It does not import `export.bag` (which calls it): what it needs from the bag's options and
writer is spelled out as the two small protocols below, which `ExportOptions` and `BagWriter`
meet as they are.
"""

from __future__ import annotations

import html
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from strongroom.export.collect import Selection


class ReportOptions(Protocol):
    """The export options a report shows (`export.bag.ExportOptions` has them)."""

    reveal_stills: bool
    pdf: bool
    organisation: str


class FileWriter(Protocol):
    """Where the report's files go (`export.bag.BagWriter`: into the bag, hashed)."""

    def add_bytes(self, rel: str, data: bytes) -> None: ...


STRINGS: dict[str, dict[str, str]] = {
    "en": {
        "title": "Evidence handover report",
        "bag": "Bag identifier", "made": "Made", "scope": "Scope", "org": "Organisation",
        "key": "Vault signing key fingerprint",
        "key_note": "Compare this fingerprint with the one you received separately; every "
                    "signature in the bag is checked against this key.",
        "summary": "Summary", "originals": "Originals", "bytes": "Bytes",
        "case": "Case", "incident": "Incident", "facility": "Facility", "when": "When",
        "abuse": "Abuse types", "severity": "Severity", "description": "Description",
        "clips": "Clips", "clip": "Clip", "file": "File in the bag", "size": "Size",
        "first": "First acquired", "clock": "DVR clock", "cameras": "Cameras",
        "duration": "Duration", "paths": "Original paths", "by_camera": "Clips by camera",
        "no_camera": "No camera overlay read",
        "dupes": "Near-duplicate groups", "best": "best-quality member",
        "no_dupes": "No near-duplicates among these originals.",
        "stills_blurred": "Stills are blurred and greyscale on purpose.",
        "stills_revealed": "Stills are shown unblurred (export made with --reveal-stills).",
        "verify": "How to verify this bag",
        "verify_text": "Run <code>python3 verify.py .</code> in the bag folder (Python 3 and "
                       "the <code>cryptography</code> package), or "
                       "<code>strongroom verify-export BAG</code>. It checks every file's "
                       "SHA-256 and SHA-512, the Ed25519 signatures of the tag manifests, the "
                       "custody log extract and any RFC 3161 timestamps. "
                       "<code>bagit.py --validate BAG</code> checks the BagIt layer alone.",
        "timelines": "Timelines on the DVR clock",
        "timelines_text": "Each camera of these clips, on its recorder's own clock. Only the "
                          "clips in this bag are drawn: a gap means no clip of this bag covers "
                          "that time. Each bar opens its original at that time; the pictures "
                          "are also in data/report/timelines/.",
        "custody": "Chain of custody",
        "custody_text": "data/custody/events.jsonl holds the vault's custody log up to event "
                        "{seq}: {shown} events concern this material and are shown in full; "
                        "{redacted} others are reduced to their hash, link and signature.",
    },
    "fr": {
        "title": "Rapport de remise des éléments de preuve",
        "bag": "Identifiant du paquet", "made": "Établi le", "scope": "Périmètre",
        "org": "Organisation",
        "key": "Empreinte de la clé de signature du coffre",
        "key_note": "Comparez cette empreinte avec celle reçue par un autre canal ; toutes les "
                    "signatures du paquet sont vérifiées avec cette clé.",
        "summary": "Résumé", "originals": "Originaux", "bytes": "Octets",
        "case": "Dossier", "incident": "Incident", "facility": "Établissement",
        "when": "Date", "abuse": "Types d'abus", "severity": "Gravité",
        "description": "Description", "clips": "Séquences", "clip": "Séquence",
        "file": "Fichier dans le paquet", "size": "Taille", "first": "Première acquisition",
        "clock": "Horloge de l'enregistreur", "cameras": "Caméras", "duration": "Durée",
        "paths": "Chemins d'origine", "by_camera": "Séquences par caméra",
        "no_camera": "Aucune incrustation de caméra lue",
        "dupes": "Groupes de quasi-doublons", "best": "meilleure qualité",
        "no_dupes": "Aucun quasi-doublon parmi ces originaux.",
        "stills_blurred": "Les images sont volontairement floutées et en niveaux de gris.",
        "stills_revealed": "Les images sont montrées sans flou (export avec --reveal-stills).",
        "verify": "Comment vérifier ce paquet",
        "verify_text": "Lancez <code>python3 verify.py .</code> dans le dossier du paquet "
                       "(Python 3 et le paquet <code>cryptography</code>), ou "
                       "<code>strongroom verify-export PAQUET</code>. Il vérifie le SHA-256 et "
                       "le SHA-512 de chaque fichier, les signatures Ed25519 des manifestes, "
                       "l'extrait du journal de traçabilité et les horodatages RFC 3161. "
                       "<code>bagit.py --validate PAQUET</code> vérifie la couche BagIt seule.",
        "timelines": "Chronologies selon l'horloge de l'enregistreur",
        "timelines_text": "Chaque caméra de ces séquences, selon l'horloge de son enregistreur. "
                          "Seules les séquences de ce paquet sont dessinées : un vide signifie "
                          "qu'aucune séquence du paquet ne couvre ce moment. Chaque barre ouvre "
                          "son original à ce moment ; les images sont aussi dans "
                          "data/report/timelines/.",
        "custody": "Chaîne de traçabilité",
        "custody_text": "data/custody/events.jsonl contient le journal du coffre jusqu'à "
                        "l'événement {seq} : {shown} événements concernent ces éléments et "
                        "sont complets ; {redacted} autres sont réduits à leur empreinte, leur "
                        "lien et leur signature.",
    },
}

#: The timeline pictures' words per language (`catalogue.timeline_svg.WORDS` is English).
PICTURE_WORDS: dict[str, dict[str, str]] = {
    "fr": {
        "title": "{label} : {clips}, {start} – {end} (horloge de l'enregistreur)",
        "clips": "{n} séquence(s)",
        "segment": "{start} – {end} (horloge de l'enregistreur) : séquence {sha}… à {offset}",
        "partial": "séquence partielle : {why}",
        "cluster": "{n} séquences, {start} – {end}",
        "gap": "vide de {length} ({start} – {end}) : aucune séquence de ce paquet",
        "overlap": "{n} séquences couvrent le même moment ({start} – {end}) : sans doute des "
                   "copies",
        "incident": "incident n° {id} : {title} ({start} – {end})",
        "empty": "aucune séquence dans cette fenêtre",
        "more": "{n} autres séquences superposées dans la dernière ligne",
        "s": "{n} s", "min": "{n} min", "h": "{n} h", "d": "{n} j",
    },
}

# Clips are blocks, not table rows: WeasyPrint lays out a 240-row table in ~18 s, blocks in ~2.6 s.
CSS = """body{font-family:'DejaVu Sans',Arial,sans-serif;margin:2em;max-width:70em;color:#111}
table{border-collapse:collapse;width:100%;margin:.5em 0 1.5em;table-layout:fixed}
td,th{border:1px solid #bbb;padding:.3em .5em;text-align:left;vertical-align:top;
font-size:.9em}th{background:#eee;width:14em}
code,.h{font-family:'DejaVu Sans Mono',monospace;font-size:.85em;word-break:break-all}
.clip{border-top:1px solid #bbb;padding:.4em 0;overflow:hidden;break-inside:avoid}
.clip img{float:right;max-width:200px;margin-left:1em}.clip .m{font-size:.9em}
.note{color:#555;font-style:italic}.timeline{break-inside:avoid}
.timeline svg{width:100%;height:auto}"""


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


@dataclass
class Reports:
    """Pages ready to write: HTML linking `stills/`, and printable HTML with stills inlined
    (so the PDF renderer never fetches anything)."""

    html: dict[str, str] = field(default_factory=dict)
    printable: dict[str, str] = field(default_factory=dict)
    stills: dict[str, bytes] = field(default_factory=dict)
    #: data/report/timelines/<name>.svg → the picture (English), one per camera
    timelines: dict[str, str] = field(default_factory=dict)


def prepare_reports(fingerprint: str, sel: Selection, records: list[dict[str, Any]],
                    dupes: list[dict[str, Any]], stills: dict[str, bytes],
                    opts: ReportOptions, bag_id: str) -> Reports:
    import base64

    from strongroom.pipeline.views import shield

    out = Reports(stills={sha: jpeg if opts.reveal_stills else shield(jpeg)
                          for sha, jpeg in stills.items()})
    links = {sha: f"stills/{sha}.jpg" for sha in out.stills}
    inline = {sha: "data:image/jpeg;base64," + base64.b64encode(jpeg).decode()
              for sha, jpeg in out.stills.items()}
    pictures = {lang: timeline_pictures(sel, PICTURE_WORDS.get(lang, {}), "../")
                for lang in STRINGS}
    out.timelines = {f"camera-{n + 1}.svg": svg for n, (_label, svg) in enumerate(
        timeline_pictures(sel, {}, "../../", standalone=True))}
    for lang in STRINGS:
        out.html[lang] = render(lang, fingerprint, sel, records, dupes, links, opts, bag_id,
                                pictures[lang])
        if opts.pdf:
            out.printable[lang] = render(lang, fingerprint, sel, records, dupes, inline, opts,
                                         bag_id, pictures[lang])
    return out


def timeline_pictures(sel: Selection, words: dict[str, str], up: str, *,
                      standalone: bool = False) -> list[tuple[str, str]]:
    """(camera label, SVG) for each camera the exported clips were read under, drawing only
    the clips in the bag, and the case's incidents on them. A bar links to its original in
    the bag at its time (`#t=`, a media fragment), relative to where the picture lies (`up`:
    the way from it to data/)."""
    from strongroom.catalogue.timeline import UNKNOWN_CAMERA, Entry, flag_entries
    from strongroom.catalogue.timeline_svg import Row, full_window, marks_for, render

    rows: dict[str, list[Entry]] = {}
    files = {i.original.sha256: i.file for i in sel.items}
    for item in sel.items:
        for seg, label, _fac in item.segments:
            if seg.clock_start is None or seg.clock_end is None:
                continue
            rows.setdefault(label or UNKNOWN_CAMERA, []).append(Entry(
                segment=seg.id, original=seg.original_sha256, start_s=seg.start_s,
                end_s=seg.end_s, clock_start=seg.clock_start, clock_end=seg.clock_end,
                confidence=seg.confidence))
    out = []
    links = [(inc["id"], inc["title"], c["sha256"], c["start_s"], c["end_s"],
              _when(inc["occurred_from"]), _when(inc["occurred_to"]))
             for inc in sel.incidents for c in inc["clips"]]

    def href(sha: str, offset: float) -> str | None:
        file = files.get(sha)
        return None if file is None else f"{up}{file.removeprefix('data/')}#t={offset:g}"

    for n, label in enumerate(sorted(rows, key=lambda c: (c == UNKNOWN_CAMERA, c))):
        entries = sorted(rows[label], key=lambda e: (e.clock_start, e.original))
        flag_entries(entries)
        row = [Row(label, entries)]
        window = full_window(row)
        if window is None:
            continue
        out.append((label, render(row, window, label=label, href=href, words=words,
                                  marks=marks_for(row, links), ident=f"tl{n + 1}",
                                  standalone=standalone)))
    return out


def _when(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None


def write_reports(writer: FileWriter, reports: Reports, pdfs: dict[str, bytes]) -> None:
    for sha, jpeg in reports.stills.items():
        writer.add_bytes(f"data/report/stills/{sha}.jpg", jpeg)
    for name, svg in reports.timelines.items():
        writer.add_bytes(f"data/report/timelines/{name}", svg.encode("utf-8"))
    for lang, page in reports.html.items():
        writer.add_bytes(f"data/report/report.{lang}.html", page.encode("utf-8"))
        if lang in pdfs:
            writer.add_bytes(f"data/report/report.{lang}.pdf", pdfs[lang])


def to_pdf(page: str) -> bytes:
    import logging

    import weasyprint

    logging.getLogger("weasyprint").setLevel(logging.ERROR)
    logging.getLogger("fontTools").setLevel(logging.ERROR)
    pdf: bytes = weasyprint.HTML(string=page).write_pdf()
    return pdf


def render(lang: str, fingerprint: str, sel: Selection, records: list[dict[str, Any]],
           dupes: list[dict[str, Any]], stills: dict[str, str], opts: ReportOptions,
           bag_id: str, pictures: list[tuple[str, str]] | None = None) -> str:
    t = STRINGS[lang]
    by_sha = {r["sha256"]: r for r in records}
    parts = [f"<!doctype html><html lang='{lang}'><head><meta charset='utf-8'>"
             f"<title>{_e(t['title'])} — {_e(bag_id)}</title><style>{CSS}</style></head><body>",
             f"<h1>{_e(t['title'])}</h1><table>"]
    rows = [(t["bag"], f"<span class='h'>{_e(bag_id)}</span>"),
            (t["made"], _e(datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"))),
            (t["scope"], _e(sel.description)),
            (t["org"], _e(opts.organisation or "—")),
            (t["key"], f"<span class='h'>{_e(fingerprint)}</span><br>"
                       f"<span class='note'>{_e(t['key_note'])}</span>"),
            (t["originals"], str(len(records))),
            (t["bytes"], f"{sum(r['size'] for r in records):,}")]
    parts += [f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows]
    parts.append("</table>")
    stills_note = t["stills_revealed" if opts.reveal_stills else "stills_blurred"]
    parts.append(f"<p class='note'>{_e(stills_note)}</p>")
    if sel.case is not None:
        parts.append(f"<h2>{_e(t['case'])}: {_e(sel.case.name)}</h2>")
        if sel.case.description:
            parts.append(f"<p>{_e(sel.case.description)}</p>")
        for inc in sel.incidents:
            parts.append(f"<h3>{_e(t['incident'])} {inc['id']}: {_e(inc['title'])}</h3><table>")
            when = " – ".join(x for x in (inc["occurred_from"], inc["occurred_to"]) if x)
            for k, v in ((t["facility"], inc["facility"]), (t["when"], when),
                         (t["abuse"], ", ".join(inc["abuse_types"])),
                         (t["severity"], inc["severity"]),
                         (t["description"], inc["description"])):
                parts.append(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>")
            parts.append("</table>")
            parts.append(_clips(t, [by_sha[c["sha256"]] for c in inc["clips"]
                                         if c["sha256"] in by_sha], stills))
    else:
        groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for r in records:
            cams = sorted({s["camera"] for s in r["segments"] if s["camera"]})
            groups[", ".join(cams) if cams else ""].append(r)
        parts.append(f"<h2>{_e(t['by_camera'])}</h2>")
        for cam in sorted(groups, key=lambda c: (c == "", c)):
            parts.append(f"<h3>{_e(cam or t['no_camera'])}</h3>")
            parts.append(_clips(t, sorted(groups[cam], key=_clock_key), stills))
    if pictures:
        parts.append(f"<h2>{_e(t['timelines'])}</h2><p class='note'>"
                     f"{_e(t['timelines_text'])}</p>")
        for n, (label, svg) in enumerate(pictures):
            # the SVG is built by ElementTree: every text in it is escaped already
            parts.append(f"<div class='timeline'><h3>{_e(label)}</h3>{svg}"
                         f"<p class='note'>data/report/timelines/camera-{n + 1}.svg</p></div>")
    parts.append(_dupes(t, dupes))
    redacted = sum(1 for e in sel.events if e.subject not in sel.shown)
    parts.append(f"<h2>{_e(t['custody'])}</h2><p>" + _e(t["custody_text"].format(
        seq=sel.events[-1].seq if sel.events else 0, shown=len(sel.events) - redacted,
        redacted=redacted)) + "</p>")
    parts.append(f"<h2>{_e(t['verify'])}</h2><p>{t['verify_text']}</p></body></html>\n")
    return "\n".join(parts)


def _clock_key(r: dict[str, Any]) -> str:
    starts = [s["dvr_clock_start"] for s in r["segments"] if s["dvr_clock_start"]]
    return str(min(starts)) if starts else "~" + str(r["sha256"])


def _clips(t: dict[str, str], records: list[dict[str, Any]], stills: dict[str, str]) -> str:
    out = []
    for r in records:
        segs = r["segments"]
        clock = "; ".join(f"{_e(s['dvr_clock_start'])} – {_e(s['dvr_clock_end'])}"
                          for s in segs if s["dvr_clock_start"]) or "—"
        cams = "; ".join(sorted({_e(f"{s['camera']}" + (f" ({s['facility']})"
                                                         if s["facility"] else ""))
                                 for s in segs if s["camera"]})) or "—"
        media = r["media"] or {}
        dur = f"{media['duration']:.0f} s" if media.get("duration") else "—"
        paths = "; ".join(_e(s["path"]) for s in r["sightings"][:5])
        img = (f"<img src='{_e(stills[r['sha256']])}' alt=''>" if r["sha256"] in stills else "")
        out.append(
            f"<div class='clip'>{img}<span class='h'>SHA-256 {_e(r['sha256'])}<br>"
            f"MD5 {_e(r['md5'])}</span><div class='m'>{_e(t['clock'])}: {clock}<br>"
            f"{_e(t['cameras'])}: {cams} · {_e(t['duration'])}: {dur}<br>"
            f"{_e(t['file'])}: <span class='h'>{_e(r['file'])}</span><br>"
            f"{_e(t['size'])}: {r['size']:,} B · {_e(t['first'])}: {_e(r['ingested_at'])}<br>"
            f"{_e(t['paths'])}: {paths}</div></div>")
    return "\n".join(out)


def _dupes(t: dict[str, str], groups: list[dict[str, Any]]) -> str:
    if not groups:
        return f"<h2>{_e(t['dupes'])}</h2><p>{_e(t['no_dupes'])}</p>"
    out = [f"<h2>{_e(t['dupes'])}</h2><ol>"]
    for g in groups:
        members = ", ".join(
            f"<span class='h'>{_e(m['original'][:16])}…</span>"
            + (f" ({_e(t['best'])})" if m["original"] == g["best"] else "")
            for m in g["members"])
        out.append(f"<li>{members}</li>")
    out.append("</ol>")
    return "\n".join(out)
