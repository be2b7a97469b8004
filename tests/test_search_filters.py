"""Filtered search through the filter index (migration 0013, `search_facets`): the same hits as
the SQL filters, kept in step when a document's facets change (not only its words), and
reserved facet tokens typed by a user are only words."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import delete, text

from strongroom.catalogue import search as search_module
from strongroom.catalogue import search_index
from strongroom.catalogue.models import (
    Camera,
    CaseFile,
    CaseIncident,
    Facility,
    Incident,
    IncidentOriginal,
    Review,
    Segment,
)
from strongroom.catalogue.search import Filters, search
from strongroom.catalogue.search_facets import day_token, days_cover
from strongroom.vault import Vault
from test_search import NOW, SHA1, SHA2, SHA3, World, build_world


@pytest.fixture
def world(vault: Vault) -> World:
    return build_world(vault)


def _hits(v: Vault, query: str, filters: Filters, *, sql: bool) -> list[tuple[str, object]]:
    """The hits, through the filter index or (`sql`) through the SQL filters."""
    saved = search_module.has_filter_index
    if sql:
        search_module.has_filter_index = lambda conn: False
    try:
        with v.catalogue.read() as s:
            return [(h.kind, h.id) for h in search(s, query, filters).hits]
    finally:
        search_module.has_filter_index = saved


def same(v: Vault, query: str, **filters: object) -> set[tuple[str, object]]:
    """The hits through the filter index, checked against the SQL filters."""
    f = Filters(**filters)  # type: ignore[arg-type]
    got = _hits(v, query, f, sql=False)
    assert got == _hits(v, query, f, sql=True), (query, filters)
    return set(got)


QUERIES = ["пытка", "охранник", "victim", "КАМ", "потерпевший", "пожалуйста", "избиение",
           "Саратов", "удар"]


def _filter_sets() -> Iterator[dict[str, object]]:
    yield from [
        {"facility": "ОТБ-1 Саратов"}, {"facility": "ИК-9 Пермь"},
        {"region": "Пермский край"}, {"camera": "КАМ 03 ПФРСИ"}, {"camera": "КАМ 07 ШИЗО"},
        {"abuse_type": "избиение"}, {"abuse_type": "пытка"}, {"status": "incident"},
        {"status": "unreviewed"}, {"case": "Саратов ОТБ-1"},
        {"date_from": datetime(2021, 1, 1)}, {"date_to": datetime(2020, 12, 31)},
        {"date_from": datetime(2020, 3, 14, 2, 18)},  # the edge minute: still overlaps
        {"date_from": datetime(2020, 3, 14, 2, 18, 1)},  # a second later: not any more
        {"date_to": datetime(2021, 5, 6, 22, 59, 59)},
        {"date_from": datetime(2020, 3, 14), "date_to": datetime(2020, 3, 14, 2, 16)},
        {"date_from": datetime(2020, 3, 14), "date_to": datetime(2020, 3, 14, 2, 17)},
        {"date_from": datetime(2019, 1, 1), "date_to": datetime(2022, 1, 1)},
        {"region": "Саратовская область", "date_from": datetime(2020, 1, 1),
         "date_to": datetime(2020, 12, 31, 23, 59, 59), "status": "unreviewed"},
    ]


@pytest.mark.parametrize("filters", list(_filter_sets()))
def test_the_filter_index_finds_what_the_sql_filters_find(
        vault: Vault, world: World, filters: dict[str, object]) -> None:
    for query in QUERIES:
        same(vault, query, **filters)


def test_a_case_membership_reindexes_the_incident_its_clips_and_people(
        vault: Vault, world: World) -> None:
    assert same(vault, "пытка", case="Саратов ОТБ-1") == {("incident", world.incident_saratov)}
    with vault.write() as s:
        case = s.query(CaseFile).one()
        s.add(CaseIncident(case_id=case.id, incident_id=world.incident_perm))
    assert same(vault, "пытка", case="Саратов ОТБ-1") == {
        ("incident", world.incident_saratov), ("incident", world.incident_perm)}
    assert ("review", 1) in same(vault, "охранник", case="Саратов ОТБ-1")
    with vault.write() as s:
        # as `case remove-incident` does: an ORM delete (bulk SQL bypasses every listener)
        s.delete(s.query(CaseIncident).filter_by(incident_id=world.incident_saratov).one())
    assert same(vault, "пытка", case="Саратов ОТБ-1") == {("incident", world.incident_perm)}
    assert same(vault, "потерпевший", case="Саратов ОТБ-1") == set()


def test_a_camera_mapping_or_merge_reindexes_its_clips(vault: Vault, world: World) -> None:
    assert same(vault, "охранник", facility="ОТБ-1 Саратов") == set()
    with vault.write() as s:  # the Perm camera turns out to be in Saratov
        cam = s.query(Camera).filter_by(label="КАМ 07 ШИЗО").one()
        cam.facility_id = s.query(Facility).filter_by(name="ОТБ-1 Саратов").one().id
    assert same(vault, "охранник", facility="ОТБ-1 Саратов") == {("review", 1)}
    assert ("incident", world.incident_perm) in same(vault, "пытка", region="Саратовская область")
    assert same(vault, "КАМ", facility="ИК-9 Пермь") == set()
    with vault.write() as s:  # merged: camera 03 stands for 07 from now on
        cam7 = s.query(Camera).filter_by(label="КАМ 07 ШИЗО").one()
        cam7.merged_into = s.query(Camera).filter_by(label="КАМ 03 ПФРСИ").one().id
    assert same(vault, "охранник", camera="КАМ 03 ПФРСИ") == {("review", 1)}
    assert same(vault, "КАМ", camera="КАМ 03 ПФРСИ") == {("camera", 1), ("camera", 2)}


def test_a_review_status_reindexes_the_clip_and_its_incidents(vault: Vault, world: World
                                                             ) -> None:
    assert same(vault, "пытка", status="in review") == set()
    with vault.write() as s:
        s.query(Review).one().status = "in review"
    assert same(vault, "пытка", status="in review") == {("incident", world.incident_perm)}
    assert same(vault, "охранник", status="in review") == {("review", 1)}
    with vault.write() as s:  # a first review of clip 1: no longer unreviewed
        s.add(Review(original_sha256=SHA1, status="no incident"))
    assert same(vault, "victim", status="unreviewed") == set()
    assert same(vault, "victim", status="no incident") == {
        ("incident_note", world.incident_saratov)}


def test_segments_and_incident_times_reindex_the_dates(vault: Vault, world: World) -> None:
    assert same(vault, "пожалуйста", date_from=datetime(2022, 1, 1)) == set()
    with vault.write() as s:  # the pipeline places the transcribed clip on the DVR clock
        s.add(Segment(original_sha256=SHA3, start_s=0, end_s=60,
                      clock_start=datetime(2022, 2, 1, 23, 59, 30),
                      clock_end=datetime(2022, 2, 2, 0, 0, 30)))
    assert same(vault, "пожалуйста", date_from=datetime(2022, 2, 2)) == {("transcript", SHA3)}
    assert same(vault, "пожалуйста", date_to=datetime(2022, 2, 1, 23, 59)) == set()
    with vault.write() as s:
        inc = s.get(Incident, world.incident_perm)
        assert inc is not None
        inc.occurred_from = datetime(2023, 7, 1, 12)
        s.add(IncidentOriginal(incident_id=world.incident_perm, original_sha256=SHA3))
    assert ("incident", world.incident_perm) in same(vault, "пытка",
                                                      date_from=datetime(2023, 7, 1, 11))
    assert ("transcript", SHA3) in same(vault, "пожалуйста", abuse_type="пытка")


def test_a_bulk_rewrite_of_segments_is_followed(vault: Vault, world: World) -> None:
    """The overlay step deletes a clip's segments with bulk SQL, then tells the index."""
    assert same(vault, "охранник", camera="КАМ 07 ШИЗО") == {("review", 1)}
    with vault.write() as s:
        s.execute(delete(Segment).where(Segment.original_sha256 == SHA2))
        search_index.clips_changed(s, [SHA2])
    assert same(vault, "охранник", camera="КАМ 07 ШИЗО") == set()
    assert same(vault, "пытка", date_from=datetime(2021, 5, 6)) == {
        ("incident", world.incident_perm)}  # by its own time still


def test_a_typed_reserved_token_is_only_a_word(vault: Vault, world: World) -> None:
    with vault.catalogue.read() as s:
        facets = s.execute(text("SELECT facets FROM search_filter_fts")).scalars().all()
    tokens = {t for f in facets for t in f.split()}
    assert day_token(date(2020, 3, 14)) in tokens and "zzcam1" in tokens
    for token in sorted(tokens):
        assert same(vault, token) == set(), token
        assert same(vault, f'"{token}" пытка', status="unreviewed") == set()
    # ... and where someone wrote it, it is found as the word it is, with filters still applied
    with vault.write() as s:
        s.add(Incident(title="zzcam1 zzfac1 zzd20200314", created_at=NOW))
    assert {k for k, _ in same(vault, "zzcam1")} == {"incident"}
    assert same(vault, "zzcam1", camera="КАМ 03 ПФРСИ") == set()
    assert same(vault, "zzd20200314", date_from=datetime(2020, 3, 14)) == set()


def _covered(tokens: list[str], day: date) -> bool:
    names = {day_token(day), f"zzm{day.year:04d}{day.month:02d}", f"zzy{day.year:04d}"}
    return any(t in names or (t.endswith("*") and any(n.startswith(t[:-1]) for n in names))
               for t in tokens)


def test_a_date_range_is_an_or_of_years_months_and_days() -> None:
    rng = random.Random(13)
    for _ in range(300):
        a = date(2018, 1, 1) + timedelta(days=rng.randrange(2000))
        b = a + timedelta(days=rng.choice([0, 1, 30, 31, 90, 364, 365, 800]))
        first, last = rng.choice([(a, b), (None, b), (a, None)])
        tokens = days_cover(first, last)
        assert len(tokens) <= 60
        for day in (a - timedelta(days=1), a, b, b + timedelta(days=1),
                    a + timedelta(days=rng.randrange(1000))):
            inside = (first is None or day >= first) and (last is None or day <= last)
            assert _covered(tokens, day) == inside, (first, last, day)
    assert days_cover(date(2021, 1, 1), date(2021, 12, 31)) == ["zzy2021"]
    assert days_cover(date(2021, 3, 1), date(2021, 3, 31)) == ["zzm202103"]
    assert days_cover(date(2021, 3, 10), date(2021, 5, 31)) == [
        "zzd2021031*", "zzd2021032*", "zzd2021033*", "zzm202104", "zzm202105"]


def test_the_migration_builds_the_filter_index(vault: Vault, world: World) -> None:
    from strongroom.catalogue.migrate import downgrade, upgrade

    engine = vault.catalogue._write_engine
    downgrade(engine, "0012")
    with vault.catalogue.read() as s:
        assert s.execute(text("SELECT count(*) FROM sqlite_master WHERE name LIKE "
                              "'search_filter%'")).scalar() == 0
    # without the filter index the SQL filters still answer
    with vault.catalogue.read() as s:
        assert {h.kind for h in search(s, "пытка", Filters(case="Саратов ОТБ-1")).hits} == {
            "incident"}
    upgrade(engine)
    with vault.catalogue.read() as s:
        assert s.execute(text("SELECT count(*) FROM search_filter_fts")).scalar() == \
            s.execute(text("SELECT count(*) FROM search_doc")).scalar()
    for filters in _filter_sets():
        same(vault, "пытка", **filters)
    assert SHA2  # the world's clips are all indexed above
