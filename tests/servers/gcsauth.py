#!/usr/bin/env python3
"""Test OAuth token endpoint and GCE metadata-server stand-in for the gcs plugin.

    gcsauth.py LOG_FILE TOKENS_FILE --pubkey PEM --email EMAIL [--life SECONDS]
               [--client-id ID --client-secret S --refresh-token R]

Prints the port it listens on (127.0.0.1) and serves until killed.
  POST /token  grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer: the
               assertion is verified with google-auth (RS256 against the public
               half of the service-account key, audience = this endpoint's URL,
               issuer = EMAIL, scope must name devstorage); a good one gets a
               fresh token, a bad one 400 invalid_grant as Google answers.
               grant_type=refresh_token: client id, secret and refresh token must match.
  GET /computeMetadata/v1/instance/service-accounts/default/token: requires
               "Metadata-Flavor: Google" (else 403, as the real server answers).
Every token issued is appended to TOKENS_FILE as "TOKEN EXPIRY_EPOCH" (the
fault proxy checks requests against it) and logged as "ISSUED KIND TOKEN LIFE".
"""
import json
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from google.auth import crypt, jwt  # verifies RS256 with the cryptography package

args = sys.argv[1:]
LOG = open(args.pop(0), "a", buffering=1)
TOKENS = args.pop(0)
opts = {}
while args:
    k = args.pop(0)
    opts[k.lstrip("-")] = args.pop(0)
PUBKEY = open(opts["pubkey"]).read() if "pubkey" in opts else None
EMAIL = opts.get("email")
LIFE = int(opts.get("life", "3600"))
LOCK = threading.Lock()
COUNT = [0]


def issue(kind):
    with LOCK:
        COUNT[0] += 1
        tok = "%s-%d-%d" % (kind, COUNT[0], int(time.time() * 1000) % 100000)
        with open(TOKENS, "a") as f:
            f.write("%s %.3f\n" % (tok, time.time() + LIFE))
    LOG.write("ISSUED %s %s %d\n" % (kind, tok, LIFE))
    return {"access_token": tok, "expires_in": LIFE, "token_type": "Bearer"}


class H(BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def reply(self, status, obj):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def refuse(self, why):
        LOG.write("REFUSED %s\n" % why)
        self.reply(400, {"error": "invalid_grant", "error_description": why})

    def jwt_grant(self, form):
        if not PUBKEY:
            return self.refuse("no service account here")
        aud = "http://%s/token" % self.headers.get("Host")
        try:
            claims = jwt.decode(form.get("assertion", ""), certs=PUBKEY, audience=aud)
        except (ValueError, crypt.base.exceptions.GoogleAuthError if hasattr(crypt, "base") else ValueError) as e:
            return self.refuse("Invalid JWT Signature. (%s)" % str(e).splitlines()[0][:120])
        except Exception as e:  # google-auth raises its own error types across versions
            return self.refuse("Invalid JWT Signature. (%s)" % str(e).splitlines()[0][:120])
        if claims.get("iss") != EMAIL:
            return self.refuse("Invalid JWT: iss %s is not the service account" % claims.get("iss"))
        if "devstorage" not in claims.get("scope", ""):
            return self.refuse("Invalid JWT: no storage scope")
        if claims.get("exp", 0) - claims.get("iat", 0) > 3600:
            return self.refuse("Invalid JWT: Token must be a short-lived token (60 minutes)")
        self.reply(200, issue("sa"))

    def refresh_grant(self, form):
        want = (opts.get("client-id"), opts.get("client-secret"), opts.get("refresh-token"))
        got = (form.get("client_id"), form.get("client_secret"), form.get("refresh_token"))
        if not want[0] or want != got:
            LOG.write("REFUSED refresh token\n")
            return self.reply(400, {"error": "invalid_grant", "error_description": "Token has been expired or revoked."})
        self.reply(200, issue("user"))

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        form = dict(urllib.parse.parse_qsl(self.rfile.read(n).decode()))
        if self.path != "/token":
            return self.reply(404, {"error": "not_found"})
        grant = form.get("grant_type")
        if grant == "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return self.jwt_grant(form)
        if grant == "refresh_token":
            return self.refresh_grant(form)
        self.reply(400, {"error": "unsupported_grant_type"})

    def do_GET(self):
        if self.path != "/computeMetadata/v1/instance/service-accounts/default/token":
            return self.reply(404, {"error": "not_found"})
        if self.headers.get("Metadata-Flavor") != "Google":
            LOG.write("REFUSED metadata request without Metadata-Flavor: Google\n")
            return self.reply(403, {"error": "Missing Metadata-Flavor:Google header."})
        self.reply(200, issue("meta"))


srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
print(srv.server_address[1], flush=True)
srv.serve_forever()
