"""Schemathesis over the review app's OpenAPI (issue 13 point 5, issue 14): generated
requests to every API operation, sent as each role and as nobody; no answer is a 5xx, and
none breaks deny-by-default (a role the route does not name gets 403, nobody gets 401).

`STRONGROOM_FUZZ_EXAMPLES` (default 4) sets how many generated requests each operation gets
per generation mode (valid, then invalid), each sent as nobody and as every role; set it
higher for a longer run. Every operation the schema lists (bar the two that sign out) must
have been called at least once."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from fastapi.routing import APIRoute
from hypothesis import HealthCheck, settings
from hypothesis.errors import Unsatisfiable

from conftest import Template
from review_fixtures import ROLES, Reviewed, build, person, session_for
from strongroom.review import actions
from strongroom.review.app import Authenticated, create_app

EXAMPLES = int(os.environ.get("STRONGROOM_FUZZ_EXAMPLES", "4"))
#: Operations that end the session they are sent with: fuzzing them would sign every later
#: request out (each is tested on its own in test_review_app.py).
SKIP = {("POST", "/api/logout"), ("POST", "/api/me/stop")}


@pytest.fixture(scope="module")
def fuzzed(template: Template, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[tuple[Reviewed, Any, dict[str, str]]]:
    r = build(template, tmp_path_factory, "fuzz", "probe,overlay_ocr,proxy")
    actions.update_review(r.vault, person(r, "admin"), r.clips[0], assign_to="reviewer")
    app = create_app(r.vault.settings, r.vault)
    tokens = {role: session_for(r, role) for role in ROLES}
    yield r, app, tokens
    r.vault.close()


@pytest.fixture(scope="module")
def api_schema(fuzzed: tuple[Reviewed, Any, dict[str, str]]) -> Any:
    _r, app, tokens = fuzzed
    return schemathesis.openapi.from_asgi(
        "/api/openapi.json", app, headers={"Authorization": f"Bearer {tokens['admin']}"})


def _roles(app: Any, method: str, path: str) -> tuple[str, ...] | None:
    for route in app.routes:
        if isinstance(route, APIRoute) and route.path == path and method in route.methods:
            for dep in route.dependant.dependencies:
                if isinstance(dep.call, Authenticated):
                    return dep.call.roles
            return None
    raise AssertionError(f"{method} {path} is in the schema but not in the app")


def test_no_5xx_and_deny_by_default_under_generated_requests(
        api_schema: Any, fuzzed: tuple[Reviewed, Any, dict[str, str]]) -> None:
    """Every operation, with requests generated from its schema (valid ones, then invalid
    ones), as nobody and as each role."""
    from schemathesis import GenerationMode

    r, app, tokens = fuzzed
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 15
    tried: dict[str, int] = {}
    for op in operations:
        method, path = op.method.upper(), op.path
        if (method, path) in SKIP:
            continue
        allowed = _roles(app, method, path)
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                _fuzz(op.as_strategy(generation_mode=mode), r, tokens, method, path, allowed,
                      tried)()
            except Unsatisfiable:
                if mode is GenerationMode.POSITIVE:
                    raise
                # nothing in this operation can be made invalid (no parameters, no body)
    assert len(tried) >= 15 and min(tried.values()) >= 1, tried
    # every operation got at least one generated request through to the check
    assert set(tried) == {f"{op.method.upper()} {op.path}" for op in operations
                          if (op.method.upper(), op.path) not in SKIP}, tried


def _fuzz(strategy: Any, r: Reviewed, tokens: dict[str, str], method: str, path: str,
          allowed: tuple[str, ...] | None, tried: dict[str, int]) -> Any:
    from hypothesis import given

    @given(case=strategy)
    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def check(case: Any) -> None:
        if case.path_parameters and "sha256" in case.path_parameters and \
                len(str(case.path_parameters["sha256"])) % 2:
            case.path_parameters["sha256"] = r.clips[1]  # a real clip, often
        nobody = case.call()
        assert nobody.status_code < 500, nobody.text
        if allowed is not None:
            assert nobody.status_code == 401, f"{method} {path} without a session"
        for role in ROLES:
            got = case.call(headers={"Authorization": f"Bearer {tokens[role]}"})
            assert got.status_code < 500, f"{method} {path} as {role}: {got.text[:300]}"
            if allowed is not None and role not in allowed:
                assert got.status_code == 403, f"{method} {path} as {role}: {got.status_code}"
        tried[f"{method} {path}"] = tried.get(f"{method} {path}", 0) + 1

    return check
