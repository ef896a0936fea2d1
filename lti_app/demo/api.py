"""LTI Advantage services: Names and Role Provisioning, Assignment and Grade Services."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Response, request

from lti_app.demo.launches import (
    SCOPE_LINEITEM,
    SCOPE_LINEITEM_READONLY,
    SCOPE_NRPS,
    SCOPE_RESULT_READONLY,
    SCOPE_SCORE,
)
from lti_app.demo.platform import DemoPlatform, current_platform
from lti_app.demo.seed import COURSES, PEOPLE, Course, Enrollment, Role
from lti_app.demo.state import LineItem, ScoreRejectedError

bp = Blueprint("api", __name__, url_prefix="/api/contexts/<context_id>")

MEMBERSHIPS_TYPE = "application/vnd.ims.lti-nrps.v2.membershipcontainer+json"
LINEITEM_TYPE = "application/vnd.ims.lis.v2.lineitem+json"
LINEITEMS_TYPE = "application/vnd.ims.lis.v2.lineitemcontainer+json"
SCORE_TYPE = "application/vnd.ims.lis.v1.score+json"
RESULTS_TYPE = "application/vnd.ims.lis.v2.resultcontainer+json"

ACTIVITY_PROGRESS = {"Initialized", "Started", "InProgress", "Submitted", "Completed"}
GRADING_PROGRESS = {"FullyGraded", "Pending", "PendingManual", "Failed", "NotReady"}


class ApiError(Exception):
    """An API answer other than success."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


@bp.errorhandler(ApiError)
def _api_error(err: ApiError) -> Response:
    body = json.dumps({"error": err.message})
    return Response(body, status=err.status, headers=err.headers, mimetype="application/json")


def _json(data: Any, mimetype: str, status: int = 200, link: str | None = None) -> Response:
    resp = Response(json.dumps(data, ensure_ascii=False), status=status, mimetype=mimetype)
    if link:
        resp.headers["Link"] = f'<{link}>; rel="next"'
    return resp


def _require(*scopes: str) -> DemoPlatform:
    """Check the bearer token holds one of `scopes`; return the platform."""
    platform = current_platform()
    auth = request.headers.get("Authorization", "")
    scheme, _, value = auth.partition(" ")
    token = platform.state.find_token(value.strip()) if scheme.lower() == "bearer" else None
    if token is None:
        raise ApiError(
            401,
            "missing, unknown or expired access token",
            {"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )
    if not token.scopes & set(scopes):
        raise ApiError(
            403,
            f"the access token lacks scope {' or '.join(scopes)}",
            {"WWW-Authenticate": 'Bearer error="insufficient_scope"'},
        )
    return platform


def _course(context_id: str) -> Course:
    course = COURSES.get(context_id)
    if course is None:
        raise ApiError(404, f"no context {context_id!r}")
    return course


def _page(total: int, default_size: int) -> tuple[int, int]:
    """(offset, limit) from the query; `limit` above the page size is capped, like Canvas."""
    try:
        offset = int(request.args.get("offset", 0))
        limit = int(request.args.get("limit", default_size))
    except ValueError as err:
        raise ApiError(400, "limit and offset must be integers") from err
    if offset < 0 or limit < 1:
        raise ApiError(400, "limit must be positive and offset not negative")
    return offset, min(limit, default_size)


def _next_link(platform: DemoPlatform, offset: int, limit: int, total: int) -> str | None:
    if offset + limit >= total:
        return None
    args = {k: v for k, v in request.args.items() if k not in ("offset", "limit")}
    args.update(offset=str(offset + limit), limit=str(limit))
    return platform.url(request.path) + "?" + urlencode(args)


# -- NRPS --------------------------------------------------------------------------------------
def _member(enrollment: Enrollment) -> dict[str, Any]:
    person = PEOPLE[enrollment.user_id]
    member: dict[str, Any] = {
        "status": "Active",
        "user_id": enrollment.user_id,
        "roles": enrollment.roles,
        "name": person.name,
        "given_name": person.given_name,
        "family_name": person.family_name,
        "email": person.email,
    }
    return {k: v for k, v in member.items() if v}


def _role_matches(wanted: str, role: Role) -> bool:
    # The spec's filter takes a full URI; short names ("Learner") are accepted too.
    return wanted in (str(role), str(role).rsplit("#", 1)[-1])


@bp.get("/memberships")
def memberships(context_id: str) -> Response:
    """The course roster, paged with `limit`/`offset` and `Link: rel="next"`."""
    platform = _require(SCOPE_NRPS)
    course = _course(context_id)
    wanted = request.args.get("role")
    members = [
        _member(e) for e in course.enrollments if wanted is None or _role_matches(wanted, e.role)
    ]
    offset, limit = _page(len(members), platform.config.nrps_page_size)
    body = {
        "id": platform.url(request.full_path.rstrip("?")),
        "context": {"id": course.context_id, "label": course.label, "title": course.title},
        "members": members[offset : offset + limit],
    }
    return _json(body, MEMBERSHIPS_TYPE, link=_next_link(platform, offset, limit, len(members)))


# -- AGS line items ------------------------------------------------------------------------------
def _line_item_json(platform: DemoPlatform, item: LineItem) -> dict[str, Any]:
    data: dict[str, Any] = {
        **item.extra,
        "id": platform.line_item_url(item.context_id, item.id),
        "label": item.label,
        "scoreMaximum": item.score_maximum,
    }
    for key, value in (
        ("resourceLinkId", item.resource_link_id),
        ("resourceId", item.resource_id),
        ("tag", item.tag),
    ):
        if value is not None:
            data[key] = value
    return data


def _line_item_fields(
    platform: DemoPlatform, context_id: str, body: dict[str, Any]
) -> dict[str, Any]:
    """Validated constructor fields for a LineItem from a JSON body."""
    label, maximum = body.get("label"), body.get("scoreMaximum")
    if not isinstance(label, str) or not label.strip():
        raise ApiError(400, "label is required")
    if isinstance(maximum, bool) or not isinstance(maximum, int | float) or maximum <= 0:
        raise ApiError(400, "scoreMaximum must be a number greater than 0")
    link_id = body.get("resourceLinkId")
    if link_id is not None:
        link = platform.state.resource_links.get(link_id)
        if link is None or link.context_id != context_id:
            raise ApiError(400, f"unknown resourceLinkId {link_id!r} in this context")
    known = {"id", "label", "scoreMaximum", "resourceLinkId", "resourceId", "tag"}
    return {
        "label": label,
        "score_maximum": float(maximum),
        "resource_link_id": link_id,
        "resource_id": body.get("resourceId"),
        "tag": body.get("tag"),
        "extra": {k: v for k, v in body.items() if k not in known},
    }


def _body() -> dict[str, Any]:
    data = request.get_json(force=True, silent=True)
    if not isinstance(data, dict):
        raise ApiError(400, "the body must be a JSON object")
    return data


def _item(platform: DemoPlatform, context_id: str, item_id: int) -> LineItem:
    _course(context_id)
    item = platform.state.get_line_item(context_id, item_id)
    if item is None:
        raise ApiError(404, f"no line item {item_id} in {context_id}")
    return item


@bp.get("/lineitems")
def list_line_items(context_id: str) -> Response:
    """Line items, filtered by resource_link_id, resource_id and tag, paged."""
    platform = _require(SCOPE_LINEITEM, SCOPE_LINEITEM_READONLY)
    _course(context_id)
    filters = {"resource_link_id": "resource_link_id", "resource_id": "resource_id", "tag": "tag"}
    items = [
        li
        for li in platform.state.line_items_in(context_id)
        if all(request.args.get(arg) in (None, getattr(li, attr)) for arg, attr in filters.items())
    ]
    offset, limit = _page(len(items), platform.config.ags_page_size)
    page = [_line_item_json(platform, li) for li in items[offset : offset + limit]]
    return _json(page, LINEITEMS_TYPE, link=_next_link(platform, offset, limit, len(items)))


@bp.post("/lineitems")
def create_line_item(context_id: str) -> Response:
    """Create a line item."""
    platform = _require(SCOPE_LINEITEM)
    _course(context_id)
    item = platform.state.add_line_item(
        context_id, **_line_item_fields(platform, context_id, _body())
    )
    return _json(_line_item_json(platform, item), LINEITEM_TYPE, status=201)


@bp.get("/lineitems/<int:item_id>")
def get_line_item(context_id: str, item_id: int) -> Response:
    """One line item."""
    platform = _require(SCOPE_LINEITEM, SCOPE_LINEITEM_READONLY)
    return _json(_line_item_json(platform, _item(platform, context_id, item_id)), LINEITEM_TYPE)


@bp.put("/lineitems/<int:item_id>")
def update_line_item(context_id: str, item_id: int) -> Response:
    """Replace a line item's fields."""
    platform = _require(SCOPE_LINEITEM)
    item = _item(platform, context_id, item_id)
    fields = _line_item_fields(platform, context_id, _body())
    with platform.state.lock:
        for name, value in fields.items():
            setattr(item, name, value)
    return _json(_line_item_json(platform, item), LINEITEM_TYPE)


@bp.delete("/lineitems/<int:item_id>")
def delete_line_item(context_id: str, item_id: int) -> Response:
    """Delete a line item."""
    platform = _require(SCOPE_LINEITEM)
    platform.state.delete_line_item(_item(platform, context_id, item_id).id)
    return Response(status=204)


# -- AGS scores and results ----------------------------------------------------------------------
def _score_problem(body: dict[str, Any]) -> str | None:
    if not isinstance(body.get("userId"), str) or not body["userId"]:
        return "userId is required"
    if body.get("activityProgress") not in ACTIVITY_PROGRESS:
        return f"activityProgress must be one of {sorted(ACTIVITY_PROGRESS)}"
    if body.get("gradingProgress") not in GRADING_PROGRESS:
        return f"gradingProgress must be one of {sorted(GRADING_PROGRESS)}"
    if "timestamp" not in body:
        return "timestamp is required"
    given = body.get("scoreGiven")
    if given is not None:
        maximum = body.get("scoreMaximum")
        if not isinstance(given, int | float) or isinstance(given, bool) or given < 0:
            return "scoreGiven must be a number >= 0"
        if not isinstance(maximum, int | float) or isinstance(maximum, bool) or maximum <= 0:
            return "scoreMaximum is required with scoreGiven and must be > 0"
    return None


@bp.post("/lineitems/<int:item_id>/scores")
def post_score(context_id: str, item_id: int) -> Response:
    """Receive a score: 415 for the wrong media type, 422 for non-learners, 400 when older."""
    platform = _require(SCOPE_SCORE)
    item = _item(platform, context_id, item_id)
    if request.mimetype != SCORE_TYPE:
        raise ApiError(415, f"Content-Type must be {SCORE_TYPE}")
    body = _body()
    user_id = str(body.get("userId", ""))
    status, problem = 400, _score_problem(body)
    # Canvas answers 422 for anyone but an active student of the course (teachers included).
    if problem is None and COURSES[context_id].role_of(user_id) is not Role.LEARNER:
        status, problem = 422, "user is not an active student in this course"
    if problem is not None:
        platform.state.log_rejected_score(item.id, user_id, body, status)
        raise ApiError(status, problem)
    try:
        platform.state.record_score(item, user_id, body)
    except ScoreRejectedError as err:
        raise ApiError(err.status, err.message) from err
    result_url = platform.url(f"{request.path.rsplit('/scores', 1)[0]}/results?user_id={user_id}")
    return _json({"resultUrl": result_url}, "application/json")


@bp.get("/lineitems/<int:item_id>/results")
def results(context_id: str, item_id: int) -> Response:
    """Current results per user, optionally for one `user_id`."""
    platform = _require(SCOPE_RESULT_READONLY)
    item = _item(platform, context_id, item_id)
    wanted = request.args.get("user_id")
    item_url = platform.line_item_url(context_id, item.id)
    out = []
    for user_id, record in platform.state.results(item.id).items():
        if wanted not in (None, user_id):
            continue
        result: dict[str, Any] = {
            "id": f"{platform.line_items_url(context_id)}/{item.id}/results/{user_id}",
            "scoreOf": item_url,
            "userId": user_id,
            "resultScore": record.body.get("scoreGiven"),
            "resultMaximum": record.body.get("scoreMaximum"),
            "comment": record.body.get("comment"),
            "timestamp": record.body.get("timestamp"),
        }
        out.append({k: v for k, v in result.items() if v is not None})
    return _json(out, RESULTS_TYPE)
