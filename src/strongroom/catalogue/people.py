"""People in incidents, by pseudonym ("Victim 12"), never by name in the open.

A real identity, if the NGO records one at all, is sealed: age-encrypted to the vault's key
(`Vault.seal_secret`), never indexed for search, never in a page a non-admin can open, and each
view of it is a custody event (`Vault.open_identity`). The custody log and the history keep
only a digest of the sealed bytes, so a defence lawyer reading the log learns that an identity
was recorded or changed, never what it is.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from strongroom.catalogue.cases import (
    MAX_DESCRIPTION,
    clean_name,
    clean_text,
    count_by,
    skeleton,
    unlink,
)
from strongroom.catalogue.models import PERSON_ROLES, Incident, IncidentPerson, Person
from strongroom.errors import StrongroomError
from strongroom.vault import Vault

MAX_PSEUDONYM = 80
MAX_IDENTITY = 500


def _pseudonym(value: str) -> str:
    import unicodedata

    clean = clean_name(value, MAX_PSEUDONYM, "pseudonym")
    if not clean or "\n" in clean or "\t" in clean or any(
            unicodedata.category(c) in ("Zl", "Zp") for c in clean):
        raise StrongroomError("give a pseudonym on one line (e.g. \"Victim 12\")")
    return " ".join(clean.split())


def _role(role: str) -> str:
    if role not in PERSON_ROLES:
        raise StrongroomError(f"unknown role {role!r} (one of {', '.join(PERSON_ROLES)})")
    return role


def _lookalike(s: Session, pseudonym: str, but: int | None = None) -> Person | None:
    """Someone else whose pseudonym looks like `pseudonym` (see `skeleton`)."""
    wanted = skeleton(pseudonym)
    return next((p for p in s.scalars(select(Person).order_by(Person.id))
                 if p.id != but and skeleton(p.pseudonym) == wanted), None)


def _taken(s: Session, pseudonym: str, but: int | None = None) -> None:
    other = _lookalike(s, pseudonym, but)
    if other is not None:
        same = other.pseudonym.casefold() == pseudonym.casefold()
        raise StrongroomError(f"the pseudonym {pseudonym!r} is taken" + (
            "" if same else f" (it looks like {other.pseudonym!r}, person {other.id})")
            + "; choose another")


def add_person(vault: Vault, pseudonym: str, role: str, *, identity: str | None = None,
               note: str | None = None, actor: str | None = None) -> dict[str, Any]:
    """A new person; `identity` (a real name) is sealed. One `annotated` event."""
    name = _pseudonym(pseudonym)
    _role(role)
    sealed = _seal(vault, identity)
    with vault.write() as s:
        _taken(s, name)
        person = Person(pseudonym=name, role=role, sealed_identity=sealed,
                        note=clean_text(note, MAX_DESCRIPTION, "note"))
        s.add(person)
        s.flush()
        vault.annotate(s, "person", person.id, "made", actor=actor)
        return {"person": person.id, "pseudonym": name, "role": role,
                "identity_recorded": sealed is not None}


def _seal(vault: Vault, identity: str | None) -> bytes | None:
    clean = clean_text(identity, MAX_IDENTITY, "identity")
    return vault.seal_secret(clean.encode("utf-8")) if clean else None


def edit_person(vault: Vault, person_id: int, *, pseudonym: str | None = None,
                role: str | None = None, note: str | None = None,
                identity: str | None = None, forget_identity: bool = False,
                actor: str | None = None) -> dict[str, Any]:
    """Change a person's pseudonym, role, note or sealed identity; one `annotated` event."""
    sealed = _seal(vault, identity)
    with vault.write() as s:
        person = s.get(Person, person_id)
        if person is None:
            raise StrongroomError(f"no person {person_id}")
        changed = []
        if pseudonym is not None and _pseudonym(pseudonym) != person.pseudonym:
            _taken(s, _pseudonym(pseudonym), but=person_id)
            person.pseudonym = _pseudonym(pseudonym)
            changed.append("pseudonym")
        if role is not None and _role(role) != person.role:
            person.role = role
            changed.append("role")
        clean_note = clean_text(note, MAX_DESCRIPTION, "note")
        if note is not None and clean_note != person.note:
            person.note = clean_note
            changed.append("note")
        if sealed is not None or (forget_identity and person.sealed_identity is not None):
            person.sealed_identity = sealed
            changed.append("identity")
        if not changed:
            raise StrongroomError("nothing to change")
        vault.annotate(s, "person", person_id, "+".join(changed), actor=actor)
        return {"person": person_id, "changed": changed}


def find_person(s: Session, pseudonym: str) -> Person | None:
    """The person called `pseudonym`, in any case and spacing (in every script)."""
    import unicodedata

    def key(text: str) -> str:
        return " ".join(unicodedata.normalize("NFKC", text).casefold().split())

    wanted = key(pseudonym)
    return next((p for p in s.scalars(select(Person).order_by(Person.id))
                 if key(p.pseudonym) == wanted), None)


def involve(vault: Vault, incident_id: int, pseudonym: str, role: str, *,
            actor: str | None = None) -> dict[str, Any]:
    """Put a person in an incident in `role`, making the person (with that role) when the
    pseudonym is new. One `annotated` event on the incident (and one on a new person)."""
    name = _pseudonym(pseudonym)
    _role(role)
    with vault.write() as s:
        if s.get(Incident, incident_id) is None:
            raise StrongroomError(f"no incident {incident_id}")
        person = find_person(s, name)
        made = person is None
        if person is None:
            _taken(s, name)  # not the same name, but one that looks like it: ambiguous
            person = Person(pseudonym=name, role=role)
            s.add(person)
            s.flush()
            vault.annotate(s, "person", person.id, "made", actor=actor)
        elif s.get(IncidentPerson, (incident_id, person.id)) is not None:
            raise StrongroomError(f"{person.pseudonym} is already in incident {incident_id}")
        s.add(IncidentPerson(incident_id=incident_id, person_id=person.id, role=role))
        vault.annotate(s, "incident", incident_id, f"person {person.id} added", actor=actor)
        return {"incident": incident_id, "person": person.id, "pseudonym": person.pseudonym,
                "role": role, "new_person": made}


def uninvolve(vault: Vault, incident_id: int, person_id: int, *,
              actor: str | None = None) -> dict[str, Any]:
    unlink(vault, IncidentPerson, (incident_id, person_id), ("incident", incident_id),
           f"person {person_id}", f"person {person_id} is not in incident {incident_id}",
           actor=actor)
    return {"incident": incident_id, "person": person_id, "removed": True}


def list_people(s: Session) -> list[dict[str, Any]]:
    """Everyone, by pseudonym, with how many incidents; never the identity itself."""
    counts = count_by(s, IncidentPerson.person_id)
    return [{"id": p.id, "pseudonym": p.pseudonym, "role": p.role, "note": p.note,
             "identity_recorded": p.sealed_identity is not None,
             "incidents": counts.get(p.id, 0)}
            for p in s.scalars(select(Person).order_by(Person.pseudonym))]


def person_detail(s: Session, person_id: int) -> dict[str, Any]:
    p = s.get(Person, person_id)
    if p is None:
        raise StrongroomError(f"no person {person_id}")
    rows = s.execute(select(Incident.id, Incident.title, IncidentPerson.role).join(
        IncidentPerson, IncidentPerson.incident_id == Incident.id).where(
        IncidentPerson.person_id == person_id).order_by(Incident.id)).all()
    return {"id": p.id, "pseudonym": p.pseudonym, "role": p.role, "note": p.note,
            "identity_recorded": p.sealed_identity is not None,
            "incidents": [{"incident": i, "title": t, "role": r} for i, t, r in rows]}


def incident_people(s: Session, incident_id: int) -> list[dict[str, Any]]:
    rows = s.execute(select(Person.id, Person.pseudonym, IncidentPerson.role).join(
        IncidentPerson, IncidentPerson.person_id == Person.id).where(
        IncidentPerson.incident_id == incident_id).order_by(Person.pseudonym)).all()
    return [{"person": i, "pseudonym": p, "role": r} for i, p, r in rows]
