"""Search on PostgreSQL (issue 18, point 2): the same interface finds the same things as on
SQLite — the catalogue's normalised words as a GIN-indexed `tsvector` (migration 0015),
queried with a `tsquery` of the same lemmas and stems — on Debian's PostgreSQL, side by side
with a SQLCipher vault holding the same world."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import text

from conftest import Template, open_vault
from strongroom.catalogue.models import Incident, Person, Review
from strongroom.catalogue.search import backend_for
from strongroom.vault import Vault
from test_search import NOW, SEALED_NAME, World, build_world, find, found


@pytest.fixture
def pair(template: Template, tmp_path: Path, postgres_url: str
         ) -> Iterator[tuple[Vault, Vault, World]]:
    """The same world in a SQLite vault and in a PostgreSQL one."""
    for name in ("lite", "pg"):
        shutil.copytree(template.path, tmp_path / name)
    lite = open_vault(tmp_path / "lite", template.keys)
    pg = open_vault(tmp_path / "pg", template.keys, database_url=postgres_url)
    world = build_world(lite)
    assert build_world(pg) == world
    yield lite, pg, world
    lite.close()
    pg.close()


QUERIES = ["пытка", "пытки", "пыток", "ПЫТКАМИ", "избиения", "избили", "beatings",
           '"избиение осуждённых"', '"осуждённого избиения"', "заключенный дверь",
           "Потерпевший 12", "КАМ 03", "KAM03", "Не бейте меня", "пыт*", "пытки AND OR NOT",
           "NEAR(пытки избиение)", "-пытки", "it's", "a\\b"]
FILTERS: list[dict[str, object]] = [
    {}, {"facility": "ОТБ-1 Саратов"}, {"region": "Пермский край"}, {"camera": "КАМ 07 ШИЗО"},
    {"date_from": datetime(2021, 1, 1)}, {"date_to": datetime(2020, 12, 31)},
    {"date_from": datetime(2021, 5, 6), "date_to": datetime(2021, 5, 6, 23, 59, 59)},
    {"abuse_type": "избиение"}, {"status": "incident"}, {"case": "Саратов ОТБ-1"},
    {"facility": "ОТБ-1 Саратов", "date_from": datetime(2021, 1, 1)}]


def test_postgresql_finds_what_sqlite_finds(pair: tuple[Vault, Vault, World]) -> None:
    lite, pg, _ = pair
    with pg.catalogue.read() as s:
        assert backend_for(s).name == "postgresql"
    compared = 0
    for query in QUERIES:
        for filters in FILTERS:
            assert found(pg, query, **filters) == found(lite, query, **filters), (query, filters)
            compared += 1
    # and not because both find nothing
    assert found(pg, "пыток") == {("incident", 1), ("incident", 2)}
    assert found(pg, "пытка", status="incident") == {("incident", 2)}
    assert compared == len(QUERIES) * len(FILTERS)


def test_the_best_match_comes_first_and_hits_are_marked(pair: tuple[Vault, Vault, World]
                                                        ) -> None:
    _, pg, world = pair
    hit = find(pg, "заключенный дверь").hits[0]
    assert hit.snippet() == "Охранники избили [заключённого] у [двери]"
    assert [h.id for h in find(pg, "избиение").hits][:1] == [world.incident_saratov]


def test_postgresql_follows_edits_in_the_same_transaction(pair: tuple[Vault, Vault, World]
                                                          ) -> None:
    _, pg, world = pair
    with pytest.raises(RuntimeError), pg.write() as s:
        s.add(Incident(title="Изнасилование шваброй", created_at=NOW))
        s.flush()
        raise RuntimeError("abandoned")
    assert find(pg, "швабра").hits == []
    with pg.write() as s:
        inc = s.get(Incident, world.incident_perm)
        assert inc is not None
        inc.description = "удушение в камере"
        s.add(Incident(title="Изнасилование шваброй", created_at=NOW))
    assert found(pg, "beatings") == set()
    assert found(pg, "удушение") == {("incident", world.incident_perm)}
    assert [h.kind for h in find(pg, "швабра").hits] == ["incident"]
    with pg.write() as s:
        s.query(Review).one().note = None
        person = s.get(Person, world.person)
        assert person is not None
        person.pseudonym = "Свидетель 3"
    assert find(pg, "охранник").hits == [] and find(pg, "потерпевший").hits == []
    assert [h.kind for h in find(pg, "свидетель").hits] == ["person"]


def test_a_sealed_identity_is_not_in_the_postgresql_index(pair: tuple[Vault, Vault, World]
                                                          ) -> None:
    _, pg, _ = pair
    for word in SEALED_NAME.split():
        assert find(pg, word).hits == []
    with pg.catalogue.read() as s:
        vectors = " ".join(s.execute(text("SELECT terms::text FROM search_doc")).scalars())
    assert vectors and not any(w.lower() in vectors for w in SEALED_NAME.split())
