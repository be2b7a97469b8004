"""The review app's Intake page: admins and investigators read what sources wrote and answer
them; reviewers and lawyers do not see it; the answer reaches the source, encrypted to it."""

from __future__ import annotations

import shutil
from pathlib import Path

from conftest import Template, open_vault
from review_fixtures import PASSWORD, ROLES, Reviewed, client
from strongroom.intake import seal
from strongroom.intake.codenames import Cost
from strongroom.intake.store import Store
from strongroom.review import actions


def test_staff_read_and_answer_sources_in_the_review_app(template: Template,
                                                         tmp_path: Path) -> None:
    from strongroom.review.app import create_app

    data = tmp_path / "intake-data"
    store = Store(data, template.keys.public.age_recipient, cost=Cost(memory_kib=8192, time=1))
    _, session = store.new_source("ru")
    store.add_message(session.source_id, "source", "Камера 5 — <script>x</script>".encode())
    path = tmp_path / "vault"
    shutil.copytree(template.path, path)
    v = open_vault(path, template.keys, intake_data=data)
    r = Reviewed(v, path, [])
    for role in ROLES:
        r.secrets[role] = actions.add_user(v, role, role, PASSWORD)
    app = create_app(v.settings, v)
    try:
        assert client(app).get("/intake").status_code == 401
        for role in ("reviewer", "lawyer"):
            assert client(app, r, role).get("/intake").status_code == 403
        page = client(app, r, "investigator").get("/intake")
        assert page.status_code == 200
        assert "Камера 5 — &lt;script&gt;x&lt;/script&gt;" in page.text
        assert session.source_id[:16] in page.text
        c = client(app, r, "admin")
        sent = c.post("/intake/reply", data={"source": session.source_id[:16],
                                              "text": "Спасибо, получили."},
                      follow_redirects=False)
        assert sent.status_code == 303
        org = [m for m in store.messages(session.source_id) if m.sender == "org"]
        assert len(org) == 1
        assert seal.decrypt_for_source(org[0].ciphertext, session.identity) == \
            "Спасибо, получили.".encode()
        assert c.post("/intake/reply", data={"source": "zz", "text": "x"}).status_code == 400
    finally:
        v.close()
