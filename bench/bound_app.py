"""The bound: the least a secure LTI launch can do, in Flask under gunicorn, with no product.

    .venv/bin/python bench/launch.py --tool-app bound   # measured in place of Pathways

The floor's HTTP steps (bench/floor_app.py) plus only what no secure tool may skip:
  - login: the nonce travels in the state cookie (bound to this browser);
  - launch: the id_token's RS256 signature against the platform's key set (fetched once per
    process from the issuer's /jwks and kept), iss, aud, exp/iat, the nonce equal to the
    cookie's, and the nonce used up in the shared database (one autocommit INSERT ... ON
    CONFLICT DO NOTHING), so a replay to either worker fails;
  - a tiny page.
No registration lookup, no person, course or membership, no launch session, no home page, no
security headers, no CSRF, no logging. What Pathways does beyond this is its product. Not part
of Pathways: it exists to say how far above the floor a launch's unavoidable work alone lands.
"""

from __future__ import annotations

import json
import os
import secrets
import threading
import urllib.request
from typing import Any
from urllib.parse import urlencode

import jwt
import psycopg
from flask import Flask, Response, request

app = Flask(__name__)

PAGE = (
    '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Bound</title></head>'
    "<body><h1>Launched</h1></body></html>"
)
DSN = os.environ.get("LTI_APP_DATABASE_URL", "").replace("postgresql+psycopg://", "postgresql://")
_local = threading.local()
_keys: dict[str, Any] = {}
_keys_lock = threading.Lock()


def _db() -> psycopg.Connection[Any]:
    conn: psycopg.Connection[Any] | None = getattr(_local, "conn", None)
    if conn is None:
        conn = psycopg.connect(DSN, autocommit=True)
        conn.execute(
            "CREATE TABLE IF NOT EXISTS bound_nonce (nonce varchar(64) PRIMARY KEY, "
            "used_at timestamptz NOT NULL DEFAULT now())"
        )
        _local.conn = conn
    return conn


def _key(issuer: str, kid: str) -> Any:
    with _keys_lock:
        if kid not in _keys:
            with urllib.request.urlopen(issuer + "/jwks", timeout=5) as resp:  # noqa: S310
                for jwk in json.loads(resp.read())["keys"]:
                    _keys[jwk["kid"]] = jwt.PyJWK(jwk).key
        return _keys[kid]


def _cookie_name(state: str) -> str:
    return "lti1p3_state_" + state[:16]


@app.route("/lti/login", methods=["GET", "POST"])
def login() -> Response:
    params = request.values
    state = secrets.token_urlsafe(32)
    nonce = secrets.token_urlsafe(32)
    query = {
        "scope": "openid",
        "response_type": "id_token",
        "response_mode": "form_post",
        "prompt": "none",
        "client_id": params.get("client_id", ""),
        "redirect_uri": request.host_url + "lti/launch",
        "login_hint": params.get("login_hint", ""),
        "state": state,
        "nonce": nonce,
        "lti_message_hint": params.get("lti_message_hint", ""),
    }
    response = Response("", 302)
    response.headers["Location"] = params.get("iss", "") + "/auth?" + urlencode(query)
    response.headers["Cache-Control"] = "no-store"
    response.set_cookie(
        _cookie_name(state), nonce, max_age=600, path="/lti/", httponly=True, samesite="Lax"
    )
    return response


@app.post("/lti/launch")
def launch() -> Response | tuple[str, int]:
    state = request.form.get("state", "")
    id_token = request.form.get("id_token", "")
    nonce = request.cookies.get(_cookie_name(state))
    if not id_token or not nonce:
        return "no state cookie or id_token", 400
    unverified = jwt.decode(id_token, options={"verify_signature": False})
    header = jwt.get_unverified_header(id_token)
    claims = jwt.decode(
        id_token,
        _key(unverified["iss"], header["kid"]),
        algorithms=["RS256"],
        audience=unverified["aud"],  # the bound has no registrations: the platform's own
        issuer=unverified["iss"],
        leeway=300,
        options={"require": ["exp", "iat", "nonce", "sub"]},
    )
    if claims["nonce"] != nonce:
        return "nonce mismatch", 400
    used = _db().execute(
        "INSERT INTO bound_nonce (nonce) VALUES (%s) ON CONFLICT DO NOTHING RETURNING 1",
        (nonce,),
    )
    if used.fetchone() is None:
        return "replayed", 400
    response = Response(PAGE, mimetype="text/html")
    response.delete_cookie(_cookie_name(state), path="/lti/")
    return response


@app.get("/lti/jwks")
def jwks() -> Response:
    return Response('{"keys": []}', mimetype="application/json")
