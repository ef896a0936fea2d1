"""The floor: a trivial Flask app doing a launch's HTTP steps with no LTI work.

    gunicorn -c config/gunicorn.conf.py --pythonpath bench floor_app:app

GET/POST /lti/login answers 302 to the issuer's /auth with a random state and nonce and a
state cookie, as the tool does; POST /lti/launch checks that the state cookie came back and
answers a tiny page. No database, no JWT, no templates: what is left is Flask, gunicorn, the
platform and the load generator, the part of a launch's cost the tool cannot remove.
"""

from __future__ import annotations

import secrets
from urllib.parse import urlencode

from flask import Flask, Response, request

app = Flask(__name__)

PAGE = (
    '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Floor</title></head>'
    "<body><h1>Launched</h1></body></html>"
)


def _cookie_name(state: str) -> str:
    return "lti1p3_state_" + state[:16]


@app.route("/lti/login", methods=["GET", "POST"])
def login() -> Response:
    params = request.values
    state = secrets.token_urlsafe(32)
    query = {
        "scope": "openid",
        "response_type": "id_token",
        "response_mode": "form_post",
        "prompt": "none",
        "client_id": params.get("client_id", ""),
        "redirect_uri": request.host_url + "lti/launch",
        "login_hint": params.get("login_hint", ""),
        "state": state,
        "nonce": secrets.token_urlsafe(32),
        "lti_message_hint": params.get("lti_message_hint", ""),
    }
    response = Response("", 302)
    response.headers["Location"] = params.get("iss", "") + "/auth?" + urlencode(query)
    response.headers["Cache-Control"] = "no-store"
    response.set_cookie(
        _cookie_name(state), "1", max_age=600, path="/lti/", httponly=True, samesite="Lax"
    )
    return response


@app.post("/lti/launch")
def launch() -> Response | tuple[str, int]:
    state = request.form.get("state", "")
    if not request.form.get("id_token") or not request.cookies.get(_cookie_name(state)):
        return "no state cookie or id_token", 400
    response = Response(PAGE, mimetype="text/html")
    response.delete_cookie(_cookie_name(state), path="/lti/")
    return response


@app.get("/hello")
def hello() -> str:
    return "hello"
