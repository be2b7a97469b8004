"""Schemathesis over the intake's OpenAPI (issue 17 point 8): requests generated from each
operation's schema (tus headers, JSON bodies, path ids), valid and invalid, sent with no
session and with a source's session: no answer is a 5xx, and nothing but the public routes
answers without a session. `STRONGROOM_FUZZ_EXAMPLES` (default 8) sets how many per mode."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis.errors import Unsatisfiable

from conftest import Template

EXAMPLES = int(os.environ.get("STRONGROOM_FUZZ_EXAMPLES", "8"))


@schemathesis.serializer("application/offset+octet-stream")
def _tus_body(ctx: Any, value: Any) -> bytes:
    """A tus PATCH body is raw bytes: whatever was generated, as bytes."""
    if isinstance(value, bytes):
        return value
    return str(value).encode("utf-8", "surrogatepass")


@pytest.fixture(scope="module")
def app_and_token(template: Template, tmp_path_factory: pytest.TempPathFactory
                  ) -> tuple[Any, str]:
    from fastapi.testclient import TestClient

    from strongroom.intake.app import IntakeSettings, create_app
    from strongroom.intake.codenames import Cost
    from strongroom.intake.store import Limits

    data: Path = tmp_path_factory.mktemp("intake-fuzz") / "data"
    app = create_app(IntakeSettings(data, template.keys.public.age_recipient,
                                    Limits(max_file=10**6), Cost(memory_kib=8192, time=1)))
    token = TestClient(app).post("/api/sources", json={"lang": "en"}).json()["token"]
    return app, token


def test_no_5xx_under_generated_requests(app_and_token: tuple[Any, str]) -> None:
    from schemathesis import GenerationMode

    from strongroom.intake.app import PUBLIC

    app, token = app_and_token
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {f"{op.method.upper()} {op.path}" for op in operations} >= {
        "POST /files", "PATCH /files/{uid}", "HEAD /files/{uid}", "DELETE /files/{uid}",
        "POST /api/login", "POST /api/sources", "GET /api/uploads", "GET /api/messages"}
    tried: dict[str, int] = {}
    for op in operations:
        public = (op.method.upper(), op.path) in PUBLIC
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                _fuzz(op.as_strategy(generation_mode=mode), token, public, tried)()
            except Unsatisfiable:
                if mode is GenerationMode.POSITIVE:
                    raise
    assert len(tried) >= 8 and min(tried.values()) >= 1, tried


def _fuzz(strategy: Any, token: str, public: bool, tried: dict[str, int]) -> Any:
    from hypothesis import given

    @given(case=strategy)
    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def check(case: Any) -> None:
        name = f"{case.method.upper()} {case.path}"
        nobody = case.call()
        assert nobody.status_code < 500, f"{name}: {nobody.text[:300]}"
        if not public:
            assert nobody.status_code in (401, 412), f"{name} without a session"
        got = case.call(headers={"Authorization": f"Bearer {token}"})
        assert got.status_code < 500, f"{name} with a session: {got.text[:300]}"
        tried[name] = tried.get(name, 0) + 1

    return check
