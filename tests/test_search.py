"""Catalogue search (issue 15, points 6): Russian by the word, not its ending; English stems;
filters; hits marked in context; the index inside the encrypted catalogue, in step with it in
the same transaction; sealed identities never searchable. On a real SQLCipher vault."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text

from conftest import Template, cli, open_vault
from strongroom.catalogue.migrate import downgrade
from strongroom.catalogue.models import (
    Acquisition,
    Camera,
    CaseFile,
    CaseIncident,
    Facility,
    Incident,
    IncidentOriginal,
    IncidentPerson,
    Original,
    Person,
    Review,
    Segment,
    StepRun,
)
from strongroom.catalogue.search import Filters, LikeSearch, Results, parse_query, search
from strongroom.catalogue.words import normal
from strongroom.errors import StrongroomError
from strongroom.vault import Vault

SHA1, SHA2, SHA3 = "1" * 64, "2" * 64, "3" * 64
SEALED_NAME = "Сидоров Иван Петрович"
NOW = datetime.now(UTC)


@dataclass
class World:
    incident_saratov: int
    incident_perm: int
    person: int


def _clip(s: object, sha: str) -> None:
    s.add(Original(sha256=sha, size=1, md5="0" * 32, blob_name=sha[:1] * 63 + "f",  # type: ignore[attr-defined]
                   blob_size=1, first_acquisition_id=1, ingested_at=NOW))


def build_world(v: Vault) -> World:
    """Two facilities in two regions, a camera in each, three clips, two incidents (one in a
    case), a review note, a transcript, a victim with a sealed identity."""
    with v.write() as s:
        s.add(Acquisition(id=1, description="stick", source_path="/m", medium="folder",
                          created_at=NOW, actor="t", nonce="00"))
        for sha in (SHA1, SHA2, SHA3):
            _clip(s, sha)
        saratov = Facility(name="ОТБ-1 Саратов", type="ОТБ", region="Саратовская область")
        perm = Facility(name="ИК-9 Пермь", type="ИК", region="Пермский край")
        s.add_all([saratov, perm])
        s.flush()
        cam3 = Camera(label="КАМ 03 ПФРСИ", read_as="KAM 03 ПФРСИ", facility_id=saratov.id)
        cam7 = Camera(label="КАМ 07 ШИЗО", facility_id=perm.id)
        s.add_all([cam3, cam7])
        s.flush()
        s.add_all([
            Segment(original_sha256=SHA1, start_s=0, end_s=60, camera_id=cam3.id,
                    clock_start=datetime(2020, 3, 14, 2, 17),
                    clock_end=datetime(2020, 3, 14, 2, 18)),
            Segment(original_sha256=SHA2, start_s=0, end_s=60, camera_id=cam7.id,
                    clock_start=datetime(2021, 5, 6, 23, 0), clock_end=datetime(2021, 5, 6, 23, 1)),
        ])
        one = Incident(title="Пытки в душевой",
                       description="Избиения осуждённого ночью, двое сотрудников",
                       facility_id=saratov.id, abuse_types=["избиение"],
                       occurred_from=datetime(2020, 3, 14, 2, 17), created_at=NOW)
        two = Incident(title="Следы пыток",
                       description="beatings of prisoners recorded by the corridor camera",
                       facility_id=perm.id, abuse_types=["пытка"],
                       occurred_from=datetime(2021, 5, 6, 23, 0), created_at=NOW)
        victim = Person(pseudonym="Потерпевший 12", role="victim",
                        sealed_identity=v.seal_secret(SEALED_NAME.encode()))
        case = CaseFile(name="Саратов ОТБ-1", purpose="prosecution",
                        description="для прокуратуры", created_at=NOW)
        s.add_all([one, two, victim, case])
        s.flush()
        s.add_all([
            IncidentOriginal(incident_id=one.id, original_sha256=SHA1,
                             note="victim visible from 00:41"),
            IncidentOriginal(incident_id=two.id, original_sha256=SHA2),
            IncidentPerson(incident_id=one.id, person_id=victim.id, role="victim"),
            CaseIncident(case_id=case.id, incident_id=one.id),
            Review(original_sha256=SHA2, status="incident",
                   note="Охранники избили заключённого у двери"),
            StepRun(original_sha256=SHA3, step="transcribe", version="1", status="ok",
                    result={"segments": [{"start": 0, "end": 2,
                                          "text": "Не бейте меня, пожалуйста"}]},
                    finished_at=NOW),
        ])
        v.annotate(s, "incident", one.id, "created")
        v.annotate(s, "incident", two.id, "created")
        v.annotate(s, "case", case.id, "created")
        return World(one.id, two.id, victim.id)


@pytest.fixture
def world(vault: Vault) -> World:
    return build_world(vault)


def find(v: Vault, query: str, **filters: object) -> Results:
    with v.catalogue.read() as s:
        return search(s, query, Filters(**filters))  # type: ignore[arg-type]


def found(v: Vault, query: str, **filters: object) -> set[tuple[str, object]]:
    return {(h.kind, h.id) for h in find(v, query, **filters).hits}


@pytest.mark.parametrize("query", ["пытка", "пытки", "пыток", "ПЫТКАМИ"])
def test_russian_inflections_find_each_other(vault: Vault, world: World, query: str) -> None:
    # "Пытки в душевой" and "Следы пыток": Snowball alone would miss пыток (stem "пыток")
    assert found(vault, query) == {("incident", world.incident_saratov),
                                   ("incident", world.incident_perm)}


def test_избиение_finds_избиения_and_a_verb_finds_its_own_forms(vault: Vault, world: World
                                                                 ) -> None:
    assert found(vault, "избиение") == {("incident", world.incident_saratov)}
    assert found(vault, "избиения") == {("incident", world.incident_saratov)}
    review = {h.kind for h in find(vault, "избить").hits}  # "избили" in the review note
    assert review == {"review"}
    assert {h.kind for h in find(vault, "бить").hits} == {"transcript"}  # "бейте"


def test_english_words_match_by_stem(vault: Vault, world: World) -> None:
    assert found(vault, "beating prisoner") == {("incident", world.incident_perm)}
    assert found(vault, "Beating") == {("incident", world.incident_perm)}
    hits = find(vault, "visible victims").hits
    assert [(h.kind, h.sha256) for h in hits] == [("incident_note", SHA1)]


def test_every_kind_of_thing_is_found_with_where_it_is(vault: Vault, world: World) -> None:
    kinds = {h.kind: h for h in find(vault, "ПФРСИ").hits}
    assert set(kinds) == {"camera"}
    assert found(vault, "KAM") == {("camera", kinds["camera"].id)}  # what OCR read
    assert {h.kind for h in find(vault, "Пермь").hits} == {"facility"}
    assert {h.kind for h in find(vault, "Пермский").hits} == {"facility"}
    assert {h.kind for h in find(vault, "прокуратура").hits} == {"case"}
    assert found(vault, "потерпевший") == {("person", world.person)}
    transcript = find(vault, "пожалуйста").hits
    assert [(h.kind, h.id, h.sha256) for h in transcript] == [("transcript", SHA3, SHA3)]
    review = find(vault, "охранник").hits[0]
    assert review.kind == "review" and review.sha256 == SHA2
    incident = find(vault, "душевых").hits[0]
    assert incident.kind == "incident" and incident.clips == [SHA1]


def test_hits_are_marked_in_the_original_words(vault: Vault, world: World) -> None:
    hit = find(vault, "заключенный дверь").hits[0]
    assert hit.snippet() == "Охранники избили [заключённого] у [двери]"
    assert ("заключённого", True) in hit.parts and ("Охранники избили ", False) in hit.parts
    phrase = find(vault, '"избиение осуждённых"').hits[0]
    assert "[Избиения] [осуждённого]" in phrase.snippet()
    assert find(vault, '"осуждённого избиения"').hits == []  # a phrase keeps its order


def test_a_long_text_is_cut_around_the_first_hit(vault: Vault, world: World) -> None:
    long = "Вступление. " * 40 + "Здесь пытали заключённого. " + "Конец. " * 40
    with vault.write() as s:
        s.add(Incident(title="Долгое", description=long, created_at=NOW))
    snippet = find(vault, "пытать").hits[0].snippet()
    assert snippet.startswith("…") and snippet.endswith("…") and "[пытали]" in snippet
    assert len(snippet) < 300


@pytest.mark.parametrize(("filters", "expected"), [
    ({"facility": "ОТБ-1 Саратов"}, {"saratov"}),
    ({"region": "Пермский край"}, {"perm"}),
    ({"camera": "КАМ 07 ШИЗО"}, {"perm"}),
    ({"date_from": datetime(2021, 1, 1)}, {"perm"}),
    ({"date_to": datetime(2020, 12, 31)}, {"saratov"}),
    ({"abuse_type": "избиение"}, {"saratov"}),
    ({"status": "incident"}, {"perm"}),
    ({"case": "Саратов ОТБ-1"}, {"saratov"}),
    ({"facility": "ОТБ-1 Саратов", "date_from": datetime(2021, 1, 1)}, set()),
])
def test_filters_narrow_the_hits(vault: Vault, world: World, filters: dict[str, object],
                                 expected: set[str]) -> None:
    names = {world.incident_saratov: "saratov", world.incident_perm: "perm"}
    assert {names[i] for k, i in found(vault, "пытка", **filters)} == expected  # type: ignore[index]
    # the LIKE fallback (stem "пытк" as a substring) finds "Пытки", not "пыток"
    like = {names[h.id] for h in _like(vault, "пытки", Filters(**filters)).hits}  # type: ignore[arg-type,index]
    assert like == expected - {"perm"}


def test_filters_reach_clips_cameras_people_and_cases(vault: Vault, world: World) -> None:
    assert {h.kind for h in find(vault, "охранник", camera="КАМ 07 ШИЗО").hits} == {"review"}
    assert find(vault, "охранник", camera="КАМ 03 ПФРСИ").hits == []
    assert {h.kind for h in find(vault, "КАМ", facility="ИК-9 Пермь").hits} == {"camera"}
    assert found(vault, "потерпевший", case="Саратов ОТБ-1") == {("person", world.person)}
    assert found(vault, "потерпевший", region="Пермский край") == set()
    assert {h.kind for h in find(vault, "victim", status="unreviewed").hits} == {
        "incident_note"}


@pytest.mark.parametrize(("filters", "message"), [
    ({"facility": "ИК-100"}, "no facility 'ИК-100'"),
    ({"region": "Марс"}, "no facility in region 'Марс'"),
    ({"camera": "КАМ 99"}, "no camera 'КАМ 99'"),
    ({"case": "нет такого"}, "no case 'нет такого'"),
    ({"status": "done"}, "no review status 'done'"),
    ({"date_from": datetime(2021, 1, 2), "date_to": datetime(2021, 1, 1)}, "ends before"),
])
def test_an_unknown_filter_is_named_not_an_empty_result(
        vault: Vault, world: World, filters: dict[str, object], message: str) -> None:
    with pytest.raises(StrongroomError, match=message):
        find(vault, "пытка", **filters)


@pytest.mark.parametrize("query", ['"пытки', "пытки AND OR NOT", "пыт*", "(пытки",
                                   "NEAR(пытки избиение)", "пытки:", "^пытки", "-пытки"])
def test_query_syntax_is_never_an_error(vault: Vault, world: World, query: str) -> None:
    # FTS5 operators are read as words: whatever the user types reaches FTS5 only as quoted
    # normal forms
    results = find(vault, query)
    assert isinstance(results, Results)


def test_a_query_with_no_words_is_a_clear_error(vault: Vault, world: World) -> None:
    for query in ("", '"', '""', "*** ()"):
        with pytest.raises(StrongroomError, match="nothing to search for"):
            find(vault, query)


@pytest.mark.sqlite_only
def test_a_sealed_identity_is_never_searchable(vault: Vault, world: World) -> None:
    for word in SEALED_NAME.split():
        assert find(vault, word).hits == []
        assert _like(vault, word, Filters()).hits == []
    with vault.catalogue.read() as s:
        for word in SEALED_NAME.split():
            assert s.execute(text("SELECT rowid FROM search_fts WHERE search_fts MATCH :q"),
                             {"q": f'"{normal(word)}"'}).all() == []
    # ... while the person is found by pseudonym, and the identity opens for whoever may
    [hit] = find(vault, "Потерпевший 12").hits
    assert hit.to_json() == {"kind": "person", "id": world.person, "sha256": None,
                             "snippet": "[Потерпевший] [12]"}


@pytest.mark.sqlite_only
def test_the_index_changes_in_the_same_transaction_as_the_rows(vault: Vault, world: World
                                                              ) -> None:
    with pytest.raises(RuntimeError), vault.write() as s:
        s.add(Incident(title="Изнасилование шваброй", created_at=NOW))
        s.flush()
        # inside the transaction the index already has it...
        assert [h.kind for h in search(s, "швабра").hits] == ["incident"]
        raise RuntimeError("the change is abandoned")
    # ... and rolled back with it: no index entry is left behind
    assert find(vault, "швабра").hits == []
    with vault.catalogue.read() as s:
        assert s.execute(text("SELECT count(*) FROM search_doc WHERE kind = 'incident'")
                         ).scalar() == 2
        assert s.execute(text("SELECT count(*) FROM search_fts WHERE search_fts MATCH "
                              "'швабра'")).scalar() == 0


def test_edits_and_deletions_are_followed(vault: Vault, world: World) -> None:
    with vault.write() as s:
        inc = s.get(Incident, world.incident_perm)
        assert inc is not None
        inc.description = "удушение в камере"
        cam = s.get(Camera, 2)
        assert cam is not None
        cam.label = "КАМ 7 карцер"
    assert found(vault, "beatings") == set()
    assert found(vault, "удушение") == {("incident", world.incident_perm)}
    assert {h.kind for h in find(vault, "карцер").hits} == {"camera"}
    with vault.write() as s:
        review = s.query(Review).one()
        review.note = None  # an emptied note leaves the index
        s.query(IncidentPerson).delete()
        s.delete(s.get(Person, world.person))
    assert find(vault, "охранник").hits == [] and find(vault, "потерпевший").hits == []


def test_the_review_apps_writer_is_followed_without_knowing_about_search(
        vault: Vault, world: World) -> None:
    """`review/actions.update_review` writes Review rows through `vault.write()`: the listener
    sees them like any other."""
    from strongroom.review import actions

    admin = actions.Person(0, "admin", "admin", "en", {}, 0, "", None)
    actions.update_review(vault, admin, SHA1, note="Видно удары дубинкой по ногам")
    hits = find(vault, "удар дубинка").hits
    assert [(h.kind, h.sha256) for h in hits] == [("review", SHA1)]


def test_search_is_not_a_custody_event(vault: Vault, world: World) -> None:
    with vault.catalogue.read() as s:
        before = s.execute(text("SELECT count(*) FROM custody_event")).scalar()
    find(vault, "пытка", facility="ОТБ-1 Саратов")
    with vault.catalogue.read() as s:
        assert s.execute(text("SELECT count(*) FROM custody_event")).scalar() == before


@pytest.mark.sqlite_only
def test_the_index_words_are_never_plaintext_on_disk(vault_path: Path, template: Template,
                                                     source: Path) -> None:
    from test_sealing import SECRETS, fill_with_secrets, leaked, strings_output

    fill_with_secrets(vault_path, template, source)
    with open_vault(vault_path, template.keys) as v:
        # the index holds the secrets' words (so the check below is not vacuous)...
        assert {h.kind for h in find(v, "избиение осуждённый").hits} == {"incident"}
        assert {h.kind for h in find(v, "Щука").hits} == {"person"}
        with v.write() as s:  # ... and the last writes sit in the WAL while we look
            s.add(Incident(title="пытки в душевой ОТБ-1", created_at=NOW))
        assert leaked(vault_path) == []
        seen = strings_output(vault_path)
    seen += strings_output(vault_path)
    normalised = {normal(w) for t in SECRETS.values() for w in t.split()}
    for word in {w for t in SECRETS.values() for w in t.split()} | normalised:
        if len(word) >= 6:
            assert word not in seen, word


@pytest.mark.sqlite_only
def test_the_migration_indexes_an_existing_vault(vault_path: Path, template: Template) -> None:
    with open_vault(vault_path, template.keys) as v:
        downgrade(v.catalogue._write_engine, "0005")
        with v.catalogue.read() as s:
            assert s.execute(text("SELECT count(*) FROM sqlite_master WHERE name LIKE "
                                  "'search%'")).scalar() == 0
        # rows written before the index existed (the listener finds no index: a no-op)
        with v.write() as s:  # as the code of 0005 wrote them (later columns do not exist)
            s.execute(text("INSERT INTO incident (title, created_at) VALUES (:t, :c)"),
                      {"t": "Избиения в ПФРСИ", "c": NOW})
            s.execute(text("INSERT INTO person (pseudonym, role) VALUES (:p, 'witness')"),
                      {"p": "Свидетель 4"})
        with v.catalogue.read() as s:
            assert search(s, "избиение").backend == "like"  # no index yet: the fallback
    with open_vault(vault_path, template.keys) as v:  # opening upgrades to 0006
        results = find(v, "избиение")
        assert results.backend == "fts5"
        assert [h.kind for h in results.hits] == ["incident"]
        assert [h.kind for h in find(v, "свидетель").hits] == ["person"]


def test_cli_search_lists_hits_as_json(vault_path: Path, template: Template) -> None:
    with open_vault(vault_path, template.keys) as v:
        world = build_world(v)
    r = cli("search", vault_path, "пыток", "--facility", "ИК-9 Пермь", "--from", "2021-05-06",
            "--to", "2021-05-06", "--json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["hits"] == [{"kind": "incident", "id": world.incident_perm, "sha256": None,
                             "snippet": "Следы [пыток] · beatings of prisoners recorded by "
                                        "the corridor camera", "clips": [SHA2]}]
    assert data["filters"] == {"facility": "ИК-9 Пермь", "date_from": "2021-05-06 00:00:00",
                               "date_to": "2021-05-06 23:59:59"}
    r = cli("search", vault_path, "охранники", "--status", "incident", "--type", "пытка",
            "--region", "Пермский край", "--camera", "КАМ 07 ШИЗО")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"clip review note 1 (clip {SHA2[:12]}): [Охранники] избили")


@pytest.mark.parametrize(("args", "message"), [
    (["пытка", "--facility", "ИК-100"], "error: no facility 'ИК-100'"),
    (["пытка", "--from", "14.03.2020"], "error: not a date or time: '14.03.2020'"),
    (['"()"'], "error: nothing to search for"),
])
def test_cli_search_errors_are_one_line(vault_path: Path, template: Template, args: list[str],
                                        message: str) -> None:
    r = cli("search", vault_path, *args)
    assert r.returncode == 2
    assert r.stderr.strip() == message + (r.stderr.strip()[len(message):])
    assert r.stderr.startswith(message) and "Traceback" not in r.stderr


def test_cli_search_with_no_hits_says_so(vault_path: Path) -> None:
    r = cli("search", vault_path, "пытка")
    assert r.returncode == 0 and r.stdout.strip() == "no matches for 'пытка'"


def test_phrases_and_words_parse_as_asked() -> None:
    q = parse_query('пытки "в душевой" beat')
    assert q.groups == (("в", "душевой"), ("пытки",), ("beat",))
    assert q.fts() == f'"в {normal("душевой")}" "пытка" "beat"'
    with pytest.raises(StrongroomError, match="too long"):
        parse_query("слово " * 200)


def _like(v: Vault, query: str, filters: Filters) -> Results:
    with v.catalogue.read() as s:
        return search(s, query, filters, backend=LikeSearch())


def test_the_like_fallback_finds_by_stem_with_the_same_filters(vault: Vault, world: World
                                                               ) -> None:
    """PostgreSQL's search until a to_tsvector backend exists: stems as substrings."""
    # "пытк" is in "Пытки", not in "пыток"
    assert {h.id for h in _like(vault, "пытки", Filters()).hits} == {world.incident_saratov}
    hit = _like(vault, "охранник", Filters()).hits[0]
    assert hit.kind == "review" and "[Охранники]" in hit.snippet()
    assert [h.kind for h in _like(vault, "пожалуйста", Filters()).hits] == ["transcript"]


# -- bad input: whatever is typed, a search or one clear message, never an FTS error ----------
NASTY = ['"', '""', '"пытки', 'пытки"', '"пытки "избиение', "'", "`", "*", "-", ":", "^", "+",
         "(", ")", "{", "}", "[", "]", "пыт*", "-пытки", "^пытки", "пытки:", ":пытки",
         "terms:пытки", "search_fts:пытки", "rank:1", "{terms}: пытки", "terms : пытки",
         "NEAR", "NEAR(пытки избиение)", "NEAR(пытки избиение, 3)", '"пытки" NEAR/3 "избиение"',
         "пытки AND", "OR пытки", "NOT", "NOT пытки", "AND OR NOT", "пытки + избиение",
         "\x00", "пытки\x00", "\x00пытки\x00избиение", "пы\x00тки", "%", "_", "%пыт%", "\\",
         "'; DROP TABLE incident; --", "пытки' OR '1'='1", "…", "«пытки»", "—", "№", "§",
         "ⅷ", "²", "ǅ", "𝔸𝔹", "İstanbul", "straße", "й", "ё", "пытки\u0301", "\u200bпытки",
         "\ufeffпытки", "🙂", "日本語", "مرحبا", "a" * 499, "пытки " * 32, "!!! ??? ...",
         "\t\n\r", " " * 400]
KNOWN_ERRORS = ("nothing to search for", "the query is too long",
                "the query has too many words")


def _search_or_clear_error(v: Vault, query: str, **filters: object) -> Results | None:
    try:
        return find(v, query, **filters)
    except StrongroomError as exc:
        assert str(exc).startswith(KNOWN_ERRORS), (query, str(exc))
        return None


def test_any_text_is_a_search_or_one_clear_message(vault: Vault, world: World) -> None:
    """FTS syntax (quotes, NEAR, *, -, :, ^, column filters), SQL, NUL, odd Unicode, long and
    punctuation-only queries, and random mixes of them: each is either searched as words or
    refused with one of the query's own messages, never an FTS or SQL error."""
    import random

    rng = random.Random(1515)
    alphabet = list('"\'*-:^+(){}[]<>!?.,;=/\\%_~`|&#@$\x00 \t\nNEARORANDNOTпыткиbeat0123ё́​')
    queries = [*NASTY, "x" * 501, "пытки " * 33]
    queries += ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 40)))
                for _ in range(300)]
    queries += [" ".join(rng.sample(NASTY[:60], 3)) for _ in range(100)]
    outcomes = {q: _search_or_clear_error(vault, q) for q in queries}
    assert outcomes["x" * 501] is None and outcomes["пытки " * 33] is None
    # operators around a real word still find it, as a word
    for q in ('"пытки', "* пытки", "-пытки", "^пытки", "пытки:", ":пытки", "+пытки",
              "(пытки)", "{пытки}", "пытки\x00", "«пытки»", "\ufeffпытки"):
        found_ = _search_or_clear_error(vault, q)
        assert found_ is not None, q
        assert {h.id for h in found_.hits} == {world.incident_saratov, world.incident_perm}, q
    # an operator or a column name that is a word is searched as a word: nothing here says
    # "near" or "terms"
    for q in ("NEAR(пытки избиение)", "terms:пытки"):
        assert outcomes[q] is not None and outcomes[q].hits == [], q  # type: ignore[union-attr]
    # and with filters, the same
    for q in NASTY:
        _search_or_clear_error(vault, q, facility="ОТБ-1 Саратов",
                               date_from=datetime(2020, 1, 1))


def test_the_cli_reads_search_syntax_as_words(vault_path: Path, template: Template) -> None:
    with open_vault(vault_path, template.keys) as v:
        build_world(v)
    for query in ("(пыток)", ":пыток", '"пыток', "* -пыток ^пыток:"):
        r = cli("search", vault_path, query, "--json")
        assert r.returncode == 0, (query, r.stderr)
        assert json.loads(r.stdout)["hits"], query
    for query, message in (("x" * 600, "the query is too long"),
                           ("... ??? !!!", "nothing to search for")):
        r = cli("search", vault_path, query)
        assert r.returncode == 2 and r.stderr.startswith("error: " + message), r.stderr
        assert "Traceback" not in r.stderr and "fts5" not in r.stderr.lower()


def test_the_app_never_answers_search_syntax_with_a_500(vault: Vault, world: World) -> None:
    """The search page and the JSON API, with each of the bad queries: a page of hits, or a
    400/422 with the query's own message; never a 500, never FTS5's or SQLite's words."""
    from review_fixtures import PASSWORD, Reviewed, client
    from strongroom.review import actions
    from strongroom.review.app import create_app

    r = Reviewed(vault, Path("."), [])
    r.secrets["investigator"] = actions.add_user(vault, "investigator", "investigator",
                                                 PASSWORD)
    c = client(create_app(vault.settings, vault, heartbeat_seconds=1), r, "investigator")
    for q in [*NASTY, "x" * 501, "пытки " * 33]:
        for path in ("/search", "/api/search"):
            for params in ({"q": q}, {"q": q, "facility": "ОТБ-1 Саратов",
                                      "day_from": "2020-01-01"}):
                resp = c.get(path, params=params)
                assert resp.status_code in (200, 400, 422), (path, q, resp.status_code)
                body = resp.text.lower()
                assert not any(w in body for w in (
                    "fts5:", "syntax error", "sqlite", "traceback", "no such column",
                    "unterminated", "malformed", "internal server error")), (path, q, body[:300])
    got = c.get("/api/search", params={"q": "(пытки*"}).json()
    assert got["hits"], got
    resp = c.get("/search", params={"q": "пытки " * 33})
    assert resp.status_code == 400 and "too many words" in resp.text


def test_every_catalogue_keeps_its_index_however_many_came_before(vault: Vault) -> None:
    # The listener was once bound per sessionmaker after `event.contains`, which answers by
    # the sessionmaker's id(): a catalogue made where a freed one had lived (CPython reuses
    # addresses) was told it was listening, and wrote a whole vault with no index: the search
    # tests failed now and then on an empty index. It is bound to the session class now.
    import gc

    from strongroom.catalogue.db import Catalogue
    from strongroom.catalogue.search_index import IndexedSession

    for _ in range(5):
        c = Catalogue(vault.catalogue.url, vault.keys.catalogue_key)
        with c.write() as s:
            assert isinstance(s, IndexedSession)
            s.add(Incident(title="Пытки", created_at=NOW))
        c.dispose()
        del c, s
        gc.collect()
    assert len(find(vault, "пытка").hits) == 5
