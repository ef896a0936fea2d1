"""Token endpoint, NRPS and AGS of the demo platform, over HTTP."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from lti_app.demo.keys import SigningKey
from lti_app.demo.launches import (
    SCOPE_LINEITEM,
    SCOPE_NRPS,
    SCOPE_RESULT_READONLY,
    SCOPE_SCORE,
)
from lti_app.demo.platform import DemoPlatform
from lti_app.demo.seed import BIOLOGY, STUDENTS, TEACHER
from lti_app.demo.state import Fault

from .conftest import FakeTool

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
SCORE_TYPE = "application/vnd.ims.lis.v1.score+json"


def request_token(
    http: httpx.Client, lms: DemoPlatform, assertion: str, scopes: str
) -> httpx.Response:
    return http.post(
        lms.token_url,
        data={
            "grant_type": "client_credentials",
            "client_assertion_type": JWT_BEARER,
            "client_assertion": assertion,
            "scope": scopes,
        },
    )


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_token_grants_only_enabled_scopes(
    http: httpx.Client, lms: DemoPlatform, tool: FakeTool
) -> None:
    lms.granted_scopes = frozenset({SCOPE_SCORE, SCOPE_LINEITEM})
    resp = request_token(
        http, lms, tool.assertion(lms.token_url), f"{SCOPE_SCORE} {SCOPE_NRPS} {SCOPE_LINEITEM}"
    )
    assert resp.status_code == 200
    body = resp.json()
    assert set(body["scope"].split()) == {SCOPE_SCORE, SCOPE_LINEITEM}
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert resp.headers["Cache-Control"] == "no-store"
    nrps = http.get(lms.memberships_url(BIOLOGY.context_id), headers=bearer(body["access_token"]))
    assert nrps.status_code == 403
    assert lms.counters.token_requests == 1
    assert lms.counters.tool_jwks_fetches == 1


def test_token_refuses_when_no_requested_scope_is_enabled(
    http: httpx.Client, lms: DemoPlatform, tool: FakeTool
) -> None:
    lms.granted_scopes = frozenset({SCOPE_SCORE})
    resp = request_token(http, lms, tool.assertion(lms.token_url), SCOPE_NRPS)
    assert resp.status_code == 400
    assert resp.json()["error"] == "invalid_scope"


@pytest.mark.parametrize(
    "bad",
    ["wrong_aud", "trailing_slash_aud", "foreign_key", "wrong_sub", "expired", "garbage"],
)
def test_token_rejects_a_bad_assertion(
    http: httpx.Client, lms: DemoPlatform, tool: FakeTool, bad: str
) -> None:
    assertions: dict[str, Callable[[], str]] = {
        "wrong_aud": lambda: tool.assertion("https://elsewhere.example/token"),
        "trailing_slash_aud": lambda: tool.assertion(lms.token_url + "/"),
        "foreign_key": lambda: SigningKey.generate(tool.key.kid).sign(
            {
                "iss": tool.client_id,
                "sub": tool.client_id,
                "aud": lms.token_url,
                "iat": 0,
                "exp": 2**31,
                "jti": "x",
            }
        ),
        "wrong_sub": lambda: tool.assertion(lms.token_url, sub="someone"),
        "expired": lambda: tool.assertion(lms.token_url, exp=1000, iat=900),
        "garbage": lambda: "not.a.jwt",
    }
    resp = request_token(http, lms, assertions[bad](), SCOPE_SCORE)
    assert resp.status_code == 400
    assert resp.json()["error"] == "invalid_client"


def test_token_rejects_a_tool_key_without_alg_and_use(
    http: httpx.Client, lms: DemoPlatform, tool: FakeTool
) -> None:
    tool.published = [{k: v for k, v in tool.key.public_jwk.items() if k not in ("alg", "use")}]
    resp = request_token(http, lms, tool.assertion(lms.token_url), SCOPE_SCORE)
    assert resp.status_code == 400
    assert "lacks alg, use" in resp.json()["error_description"]


def test_token_rejects_a_replayed_jti_and_honours_the_refusal_hook(
    http: httpx.Client, lms: DemoPlatform, tool: FakeTool
) -> None:
    assertion = tool.assertion(lms.token_url)
    assert request_token(http, lms, assertion, SCOPE_SCORE).status_code == 200
    assert request_token(http, lms, assertion, SCOPE_SCORE).status_code == 400
    lms.token_refusal = (401, "unauthorized_client")
    resp = request_token(http, lms, tool.assertion(lms.token_url), SCOPE_SCORE)
    assert resp.status_code == 401
    assert resp.json()["error"] == "unauthorized_client"


def next_link(resp: httpx.Response) -> str | None:
    match = re.search(r'<([^>]+)>;\s*rel="next"', resp.headers.get("link", ""))
    return match.group(1) if match else None


def test_nrps_paging_follows_link_headers_to_the_end(
    http: httpx.Client, lms: DemoPlatform, access_token: str
) -> None:
    url: str | None = lms.memberships_url(BIOLOGY.context_id) + "?limit=100"
    members: list[dict[str, Any]] = []
    pages = 0
    while url:
        resp = http.get(url, headers=bearer(access_token))
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith(
            "application/vnd.ims.lti-nrps.v2.membershipcontainer+json"
        )
        members += resp.json()["members"]
        pages += 1
        url = next_link(resp)
    assert pages == 5  # 31 members, capped at 7 a page
    assert len({m["user_id"] for m in members}) == 31
    names = {m["name"] for m in members}
    assert {"José Núñez", "Siobhán O'Brien", "李小龍", "Ольга Петрова", "محمد علي"} <= names


def test_nrps_role_filter_and_auth(
    http: httpx.Client, lms: DemoPlatform, access_token: str
) -> None:
    url = lms.memberships_url(BIOLOGY.context_id)
    resp = http.get(url, params={"role": "Instructor"}, headers=bearer(access_token))
    assert [m["user_id"] for m in resp.json()["members"]] == [TEACHER.user_id]
    assert next_link(resp) is None
    assert http.get(url).status_code == 401
    assert http.get(url, headers=bearer("nope")).status_code == 401
    lms.revoke_tokens()
    assert http.get(url, headers=bearer(access_token)).status_code == 401


def create_line_item(
    http: httpx.Client, lms: DemoPlatform, token: str, **fields: Any
) -> dict[str, Any]:
    body = {"label": "Cells", "scoreMaximum": 10, **fields}
    resp = http.post(
        lms.line_items_url(BIOLOGY.context_id),
        json=body,
        headers={**bearer(token), "Content-Type": "application/vnd.ims.lis.v2.lineitem+json"},
    )
    assert resp.status_code == 201, resp.text
    item: dict[str, Any] = resp.json()
    return item


def post_score(
    http: httpx.Client,
    token: str,
    item: dict[str, Any],
    user_id: str,
    timestamp: str,
    given: float = 7,
    content_type: str = SCORE_TYPE,
) -> httpx.Response:
    body = {
        "userId": user_id,
        "scoreGiven": given,
        "scoreMaximum": 10,
        "activityProgress": "Completed",
        "gradingProgress": "FullyGraded",
        "timestamp": timestamp,
    }
    return http.post(
        item["id"] + "/scores", json=body, headers={**bearer(token), "Content-Type": content_type}
    )


def test_ags_rejects_an_older_score_and_keeps_all_in_order(
    http: httpx.Client, lms: DemoPlatform, access_token: str
) -> None:
    item = create_line_item(http, lms, access_token, resourceLinkId="rl-pathways-bio9")
    user = STUDENTS[1].user_id
    assert (
        post_score(http, access_token, item, user, "2025-01-01T10:00:00+00:00", 5).status_code
        == 200
    )
    assert post_score(http, access_token, item, user, "2025-01-01T11:00:00Z", 8).status_code == 200
    older = post_score(http, access_token, item, user, "2025-01-01T10:30:00Z", 6)
    assert older.status_code == 400
    assert [(s.body["scoreGiven"], s.status) for s in lms.state.scores] == [
        (5, 200),
        (8, 200),
        (6, 400),
    ]
    assert lms.counters.scores_received == 3
    results = http.get(item["id"] + "/results", headers=bearer(access_token)).json()
    assert [(r["userId"], r["resultScore"]) for r in results] == [(user, 8)]


def test_ags_score_needs_its_media_type_and_a_learner(
    http: httpx.Client, lms: DemoPlatform, access_token: str
) -> None:
    item = create_line_item(http, lms, access_token)
    stamp = "2025-01-01T10:00:00Z"
    wrong_type = post_score(
        http, access_token, item, STUDENTS[0].user_id, stamp, content_type="application/json"
    )
    assert wrong_type.status_code == 415
    assert post_score(http, access_token, item, TEACHER.user_id, stamp).status_code == 422


def test_ags_line_items_filter_page_update_delete(
    http: httpx.Client, lms: DemoPlatform, access_token: str
) -> None:
    for n in range(3):
        create_line_item(http, lms, access_token, label=f"Quiz {n}", tag="quiz")
    create_line_item(http, lms, access_token, label="Essay", tag="essay", resourceId="e1")
    url = lms.line_items_url(BIOLOGY.context_id)
    first = http.get(url, params={"tag": "quiz"}, headers=bearer(access_token))
    assert [li["label"] for li in first.json()] == ["Quiz 0", "Quiz 1"]
    link = next_link(first)
    assert link is not None
    second = http.get(link, headers=bearer(access_token))
    assert [li["label"] for li in second.json()] == ["Quiz 2"]
    assert next_link(second) is None
    essay = http.get(url, params={"resource_id": "e1"}, headers=bearer(access_token)).json()[0]
    put = http.put(
        essay["id"], json={**essay, "label": "Essay (revised)"}, headers=bearer(access_token)
    )
    assert put.json()["label"] == "Essay (revised)"
    assert http.delete(essay["id"], headers=bearer(access_token)).status_code == 204
    assert http.get(essay["id"], headers=bearer(access_token)).status_code == 404


def test_scripted_faults_come_in_order_then_service_resumes(
    http: httpx.Client, lms: DemoPlatform, access_token: str
) -> None:
    lms.queue_faults("ags", Fault(503), Fault(429, {"Retry-After": "2"}), Fault(429))
    url = lms.line_items_url(BIOLOGY.context_id)
    answers = [http.get(url, headers=bearer(access_token)) for _ in range(4)]
    assert [r.status_code for r in answers] == [503, 429, 429, 200]
    assert answers[1].headers["Retry-After"] == "2"
    assert "Retry-After" not in answers[2].headers
    # NRPS has its own queue: untouched by the AGS faults.
    lms.queue_faults("nrps", Fault(500))
    nrps = lms.memberships_url(BIOLOGY.context_id)
    assert http.get(nrps, headers=bearer(access_token)).status_code == 500
    assert http.get(nrps, headers=bearer(access_token)).status_code == 200


def test_moodle_style_line_item_urls_carry_a_query(
    http: httpx.Client, lms: DemoPlatform, access_token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dataclasses

    monkeypatch.setattr(
        lms, "config", dataclasses.replace(lms.config, line_item_url_query="type_id=3")
    )
    item = create_line_item(http, lms, access_token)
    assert item["id"].endswith("?type_id=3")
    base, _, query = item["id"].partition("?")
    resp = http.post(
        f"{base}/scores?{query}",
        json={
            "userId": STUDENTS[2].user_id,
            "activityProgress": "Started",
            "gradingProgress": "NotReady",
            "timestamp": "2025-02-01T00:00:00Z",
        },
        headers={**bearer(access_token), "Content-Type": SCORE_TYPE},
    )
    assert resp.status_code == 200
    assert lms.state.accepted_scores()[-1].user_id == STUDENTS[2].user_id


def test_scopes_are_checked_per_endpoint(
    http: httpx.Client, lms: DemoPlatform, tool: FakeTool, access_token: str
) -> None:
    item = create_line_item(http, lms, access_token)
    lms.granted_scopes = frozenset({SCOPE_RESULT_READONLY})
    token = request_token(http, lms, tool.assertion(lms.token_url), SCOPE_RESULT_READONLY).json()[
        "access_token"
    ]
    assert http.get(item["id"] + "/results", headers=bearer(token)).status_code == 200
    assert (
        post_score(http, token, item, STUDENTS[0].user_id, "2025-01-01T00:00:00Z").status_code
        == 403
    )
