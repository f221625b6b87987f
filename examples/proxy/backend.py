#!/usr/bin/env python3
"""A cookie-session application backend for Herald's [proxy] hooks.

Python's standard library only, so it runs anywhere python3 does
(docs/integration.md shows the same in Flask). The application keeps its own
sessions: POST /login {"user": "alice"} sets a `session` cookie. A browser
that then opens Herald's /ws or /events sends that cookie along; Herald
forwards it to /herald/connect here, and this backend says who the user is
and what they may do. No JWT anywhere.

    python3 backend.py [--port 5000]

Herald's configuration (herald.conf):

    [proxy]
    connect-url=http://127.0.0.1:5000/herald/connect
    refresh-url=http://127.0.0.1:5000/herald/refresh
    subscribe-url=http://127.0.0.1:5000/herald/subscribe
    publish-url=http://127.0.0.1:5000/herald/publish
    rpc-url=http://127.0.0.1:5000/herald/rpc

    [namespace.room]
    subscribe=proxy
    publish-proxy=true
"""
import argparse
import json
import secrets
import sys
import time
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SESSION_SECONDS = 600
sessions = {}  # session id -> user
members = {"room:lobby": None, "room:staff": {"alice"}}  # None = everyone


def session_user(cookie_header):
    """The user of the `session` cookie in a Cookie header, or None."""
    cookie = SimpleCookie()
    try:
        cookie.load(cookie_header or "")
    except Exception:
        return None
    morsel = cookie.get("session")
    return sessions.get(morsel.value) if morsel else None


def connect(body):
    # The headers Herald forwards ([proxy] forward-headers): lower-case names
    user = session_user(body.get("headers", {}).get("cookie"))
    if user is None:
        return {"error": {"code": 401, "message": "not logged in"}}
    return {"result": {
        "user": user,
        "expire_at": int(time.time()) + SESSION_SECONDS,  # refresh asks again then
        "channels": ["news", "user:" + user],  # as a token's channels claim
        "publish": [],  # as a token's publish claim: nothing outside room:*
        "subs": ["user:" + user],  # subscribed at once
    }}


def refresh(body):
    if body["user"] not in sessions.values():  # logged out meanwhile
        return {"disconnect": {"code": 4003, "reason": "logged out"}}
    return {"result": {"expire_at": int(time.time()) + SESSION_SECONDS}}


def subscribe(body):
    allowed = members.get(body["channel"], set())
    if allowed is not None and body["user"] not in allowed:
        return {"error": {"code": 403, "message": "not a member of " + body["channel"]}}
    return {"result": {}}


def publish(body):
    if subscribe(body).get("error"):
        return {"error": {"code": 403, "message": "not a member of " + body["channel"]}}
    # The backend may rewrite what is published: here it signs the message
    return {"result": {"data": {"from": body["user"], "text": body["data"]}}}


def rpc(body):
    if body["method"] == "whoami":
        return {"result": {"data": {"user": body["user"], "client": body["client"]}}}
    return {"error": {"code": 404, "message": "no method " + body["method"]}}


HOOKS = {"/herald/connect": connect, "/herald/refresh": refresh,
         "/herald/subscribe": subscribe, "/herald/publish": publish, "/herald/rpc": rpc}


class Handler(BaseHTTPRequestHandler):
    def answer(self, status, obj, headers=()):
        out = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(out)

    def do_POST(self):
        try:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        except ValueError:
            return self.answer(400, {"error": "invalid JSON"})
        if self.path == "/login":
            session = secrets.token_urlsafe(16)
            sessions[session] = str(body.get("user", "guest"))
            return self.answer(200, {"user": sessions[session]},
                               [("Set-Cookie", "session=%s; HttpOnly; Path=/" % session)])
        if self.path == "/logout":
            user = session_user(self.headers.get("Cookie"))
            for key in [k for k, v in sessions.items() if v == user]:
                del sessions[key]
            return self.answer(200, {"user": user})
        hook = HOOKS.get(self.path)
        if hook is None:
            return self.answer(404, {"error": "not found"})
        self.answer(200, hook(body))

    def log_message(self, fmt, *args):
        sys.stderr.write("backend: %s\n" % (fmt % args))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=5000)
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    sys.stderr.write("backend listening on http://127.0.0.1:%d\n" % server.server_address[1])
    sys.stderr.flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
