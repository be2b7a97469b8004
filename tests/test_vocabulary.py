"""Vocabularies (issue 15, point 8): abuse types and facility types ship with English and
Russian labels; a vault adds, relabels, retires and restores terms, each change an `annotated`
custody event with the person's name and a kept version, which `verify` checks; bad terms are
refused with one clear message and nothing stored. On a real SQLCipher vault, and through the
CLI."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from sqlalchemy import func, select

from conftest import cli, sql
from strongroom.catalogue import vocabulary
from strongroom.catalogue.cases import ABUSE_TYPES, history
from strongroom.catalogue.models import CustodyEvent, VocabularyTerm
from strongroom.custody.verify import verify
from strongroom.errors import StrongroomError
from strongroom.vault import Vault

ADMIN = "anna (admin, review app)"
CYRILLIC = re.compile(r"[а-яё]", re.IGNORECASE)

#: Every code Strongroom has shipped. Records keep codes: a code must never leave `SHIPPED`,
#: or old incidents and facilities would carry a type nothing knows.
EVER_SHIPPED = {
    "abuse": {"beating", "torture", "rape", "sexual violence", "humiliation", "threats",
              "restraint", "denial of medical care", "death in custody", "forced labour",
              "ill-treatment", "forced nudity", "solitary confinement",
              "deprivation of food or water", "extortion"},
    "facility": {"penal colony", "pre-trial detention", "pre-trial cell in a colony", "prison",
                 "prison hospital", "tuberculosis hospital", "medical colony",
                 "temporary detention", "settlement colony", "educational colony",
                 "correctional centre", "special detention centre", "foreign nationals centre",
                 "psychiatric hospital", "police station"},
}


def problems(v: Vault) -> list[str]:
    return [f"{p.subject}: {p.message}" for p in verify(v, fixity=False).problems]  # type: ignore[arg-type]


def annotated(v: Vault) -> list[CustodyEvent]:
    with v.catalogue.read() as s:
        rows = list(s.scalars(select(CustodyEvent).where(CustodyEvent.action == "annotated")
                              .order_by(CustodyEvent.seq)))
        for e in rows:
            s.expunge(e)
        return rows


def offered(v: Vault, kind: str) -> dict[str, dict[str, object]]:
    return {t["code"]: t for t in vocabulary.listing(v, kind)}


def test_the_shipped_lists_have_a_code_and_an_english_and_a_russian_label(vault: Vault) -> None:
    for kind, codes in EVER_SHIPPED.items():
        terms = offered(vault, kind)
        assert codes <= set(terms), f"a shipped {kind} code was removed"
        for code, t in terms.items():
            assert t["en"] and not CYRILLIC.search(str(t["en"])), code
            assert CYRILLIC.search(str(t["ru"])), code
            assert t["shipped"] is True and t["retired"] is False
    # the tuple other code imports is the shipped abuse list
    assert set(ABUSE_TYPES) <= set(offered(vault, "abuse"))
    facility = offered(vault, "facility")
    assert facility["pre-trial detention"]["ru"] == "Следственный изолятор (СИЗО)"
    assert facility["penal colony"]["en"] == "Penal colony (IK)"
    ru = {t["code"]: t["label"] for t in vocabulary.listing(vault, "abuse", "ru")}
    assert ru["torture"] == "Пытка" and ru["beating"] == "Избиение"


def test_check_takes_a_code_a_label_or_an_abbreviation_and_names_the_choices(
        vault: Vault) -> None:
    with vault.catalogue.read() as s:
        assert vocabulary.check(s, "facility", "pre-trial detention") == "pre-trial detention"
        assert vocabulary.check(s, "facility", "СИЗО") == "pre-trial detention"
        assert vocabulary.check(s, "facility", "сизо") == "pre-trial detention"
        assert vocabulary.check(s, "facility", "ОТБ") == "tuberculosis hospital"
        assert vocabulary.check(s, "facility", "Исправительная колония (ИК)") == "penal colony"
        assert vocabulary.check(s, "abuse", "Torture") == "torture"
        assert vocabulary.check(s, "abuse", "пытка") == "torture"
        with pytest.raises(StrongroomError, match=r"unknown abuse type 'waterboarding' "
                                                  r"\(one of: beating, torture, "):
            vocabulary.check(s, "abuse", "waterboarding")
        with pytest.raises(StrongroomError, match="unknown facility type ''"):
            vocabulary.check(s, "facility", "  ")
        with pytest.raises(StrongroomError, match="unknown vocabulary 'weapon'"):
            vocabulary.check(s, "weapon", "knife")


def test_add_relabel_retire_and_restore_are_logged_with_the_actor_and_kept(
        vault: Vault) -> None:
    before = len(annotated(vault))
    added = vocabulary.add(vault, "abuse", "Mock  execution", en="Mock execution",
                           ru="Имитация расстрела", actor=ADMIN)
    assert added["code"] == "mock execution" and added["shipped"] is False
    assert offered(vault, "abuse")["mock execution"]["ru"] == "Имитация расстрела"
    vocabulary.relabel(vault, "abuse", "beating", ru="Избиение (удары)", actor=ADMIN)
    vocabulary.retire(vault, "facility", "police station", actor=ADMIN)

    events = annotated(vault)[before:]
    assert [(e.subject.split(":")[0], json.loads(e.details)["change"], e.actor)
            for e in events] == [("vocabulary", "added", ADMIN), ("vocabulary", "relabelled",
                                                                  ADMIN),
                                 ("vocabulary", "retired", ADMIN)]
    # a relabelled shipped term keeps its code; its label is the vault's now
    beating = offered(vault, "abuse")["beating"]
    assert beating["ru"] == "Избиение (удары)" and beating["en"] == "Beating"
    # a retired term is not offered, and not accepted for a new record...
    assert "police station" not in offered(vault, "facility")
    with vault.catalogue.read() as s:
        with pytest.raises(StrongroomError, match="'police station' is retired"):
            vocabulary.check(s, "facility", "police station")
        # ...but stays valid on a record that has it, with its label
        assert vocabulary.check(s, "facility", "police station", allow_retired=True)
        assert vocabulary.labels(s, "facility", "ru")["police station"] == "Отдел полиции"
    listed = {t["code"]: t for t in vocabulary.listing(vault, "facility", retired=True)}
    assert listed["police station"]["retired"] is True

    vocabulary.restore(vault, "facility", "police station", actor=ADMIN)
    assert "police station" in offered(vault, "facility")
    with vault.catalogue.read() as s:
        row_id = s.scalar(select(VocabularyTerm.id).where(
            VocabularyTerm.code == "police station"))
    assert row_id is not None
    versions = history(vault, "vocabulary", row_id)
    assert [(v["change"], v["view"]["retired"], v["actor"], v["matches_log"])
            for v in versions] == [("retired", True, ADMIN, True),
                                   ("restored", False, ADMIN, True)]
    assert problems(vault) == []


def test_a_term_edited_or_added_by_hand_is_named_by_verify(vault: Vault,
                                                           vault_path: Path) -> None:
    vocabulary.add(vault, "facility", "transit point", en="Transit point",
                   ru="Пересыльный пункт", actor=ADMIN)
    assert problems(vault) == []
    sql(vault_path, "UPDATE vocabulary_term SET label_en = 'Holiday camp' "
                    "WHERE code = 'transit point'")
    found = problems(vault)
    assert len(found) == 1 and found[0].startswith("vocabulary 1: no longer says what custody "
                                                   "event"), found
    sql(vault_path, "UPDATE vocabulary_term SET label_en = 'Transit point' "
                    "WHERE code = 'transit point'")
    assert problems(vault) == []
    sql(vault_path, "INSERT INTO vocabulary_term (kind, code, label_en, label_ru, retired) "
                    "VALUES ('abuse', 'nothing', 'Nothing', 'Ничего', 0)")
    assert problems(vault) == ["vocabulary 2: no custody event records it (added by hand)"]


@pytest.mark.parametrize(("call", "message"), [
    (lambda v: vocabulary.add(v, "weapon", "knife", en="Knife", ru="Нож"),
     "unknown vocabulary 'weapon'"),
    (lambda v: vocabulary.add(v, "abuse", "Bad code!", en="Bad", ru="Плохо"),
     "is not a term code"),
    (lambda v: vocabulary.add(v, "abuse", "x" * 65, en="Long", ru="Длинно"),
     "is not a term code"),
    (lambda v: vocabulary.add(v, "abuse", "beating", en="Hitting", ru="Удары"),
     "the abuse type 'beating' exists already"),
    (lambda v: vocabulary.add(v, "abuse", "hitting", en="beating", ru="Удары"),
     "'beating' already has that label"),
    (lambda v: vocabulary.add(v, "abuse", "hitting", en="  ", ru="Удары"),
     "English label must be printable and not empty"),
    (lambda v: vocabulary.add(v, "abuse", "hitting", en="Hitting", ru="Уд\u202eары"),
     "Russian label must be printable"),
    (lambda v: vocabulary.add(v, "abuse", "hitting", en="Hit\x1b[2J", ru="Удары"),
     "English label must be printable"),
    (lambda v: vocabulary.add(v, "abuse", "hitting", en="H" * 201, ru="Удары"),
     "at most 200"),
    (lambda v: vocabulary.relabel(v, "abuse", "no such", en="X"), "unknown abuse type"),
    (lambda v: vocabulary.relabel(v, "abuse", "beating"), "give a new English label"),
    (lambda v: vocabulary.relabel(v, "abuse", "beating", en="Beating"), "already says that"),
    (lambda v: vocabulary.retire(v, "facility", "nowhere"), "unknown facility type 'nowhere'"),
])
def test_bad_terms_get_one_clear_message_and_nothing_is_stored(
        vault: Vault, call: object, message: str) -> None:
    before = len(annotated(vault))
    with pytest.raises(StrongroomError, match=re.escape(message)):
        call(vault)  # type: ignore[operator]
    assert len(annotated(vault)) == before
    with vault.catalogue.read() as s:
        assert s.scalar(select(func.count()).select_from(VocabularyTerm)) == 0


def test_retiring_a_term_twice_is_refused(vault: Vault) -> None:
    vocabulary.retire(vault, "abuse", "threats")
    with pytest.raises(StrongroomError, match="already says that"):
        vocabulary.retire(vault, "abuse", "threats")


def test_cli_lists_adds_relabels_and_retires(vault_path: Path) -> None:
    r = cli("vocabulary", "list", vault_path, "--kind", "facility", "--json")
    assert r.returncode == 0, r.stderr
    listed = {t["code"]: t for t in json.loads(r.stdout)}
    assert listed["temporary detention"]["ru"] == "Изолятор временного содержания (ИВС)"
    assert {t["kind"] for t in listed.values()} == {"facility"}
    r = cli("vocabulary", "add", vault_path, "abuse", "mock execution", "--en", "Mock execution",
            "--ru", "Имитация расстрела", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["code"] == "mock execution"
    r = cli("vocabulary", "relabel", vault_path, "abuse", "mock execution", "--en",
            "Mock execution (simulated shooting)")
    assert r.returncode == 0 and "Mock execution (simulated shooting)" in r.stdout, r.stderr
    assert cli("vocabulary", "retire", vault_path, "abuse", "mock execution").returncode == 0
    codes = [t["code"] for t in json.loads(cli("vocabulary", "list", vault_path, "--kind",
                                               "abuse", "--json").stdout)]
    assert "mock execution" not in codes and "torture" in codes
    text = cli("vocabulary", "list", vault_path, "--retired").stdout
    assert "mock execution" in text and "(retired)" in text and "penal colony" in text
    log = json.loads(cli("log", vault_path, "--action", "annotated", "--json").stdout)
    assert [e["details"]["change"] for e in log] == ["added", "relabelled", "retired"]
    bad = cli("vocabulary", "add", vault_path, "weapon", "knife", "--en", "Knife", "--ru", "Нож")
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1, bad.stderr
    assert "unknown vocabulary 'weapon'" in bad.stderr
    r = cli("verify", vault_path, "--json")
    assert json.loads(r.stdout)["ok"] is True, r.stdout


def test_check_many_keeps_a_retired_term_a_record_already_has(vault: Vault) -> None:
    vocabulary.retire(vault, "abuse", "threats")
    with vault.catalogue.read() as s:
        assert vocabulary.check_many(s, "abuse", ["Torture", " ", "beating", "torture"]) == [
            "beating", "torture"]
        assert vocabulary.check_many(s, "abuse", ["threats", "beating"],
                                     keep=["threats"]) == ["beating", "threats"]
        with pytest.raises(StrongroomError, match="'threats' is retired"):
            vocabulary.check_many(s, "abuse", ["threats"], keep=["beating"])


def test_cameras_map_takes_a_facility_type_from_the_vocabulary(vault: Vault,
                                                               vault_path: Path) -> None:
    sql(vault_path, "INSERT INTO camera (id, label) VALUES (1, 'КАМ 03 ПФРСИ')")
    bad = cli("cameras", "map", vault_path, "КАМ 03 ПФРСИ", "--facility", "СИЗО-2",
              "--type", "spa")
    assert bad.returncode == 2 and "unknown facility type 'spa' (one of: penal colony" \
        in bad.stderr, bad.stderr
    assert sql(vault_path, "SELECT count(*) FROM facility") == [(0,)]
    r = cli("cameras", "map", vault_path, "КАМ 03 ПФРСИ", "--facility", "СИЗО-2", "--type",
            "СИЗО", "--region", "Москва")
    assert r.returncode == 0, r.stderr
    assert sql(vault_path, "SELECT name, type, region FROM facility") == [
        ("СИЗО-2", "pre-trial detention", "Москва")]
    log = json.loads(cli("log", vault_path, "--action", "annotated", "--json").stdout)
    assert [e["subject"].split(":")[0] for e in log] == ["facility", "camera"]
    assert problems(vault) == []
