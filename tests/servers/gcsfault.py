#!/usr/bin/env python3
"""Loopback proxy in front of fake-gcs-server that behaves as Google documents
for resumable uploads, injects faults, and checks bearer tokens.

    gcsfault.py UPSTREAM_PORT LOG_FILE [--tokens FILE] [RULE ...]

Prints the port it listens on (127.0.0.1) and serves until killed.

Resumable sessions (PUT .../o?...upload_id=...) are kept here, as GCS keeps
them, because fake-gcs-server appends blindly and commits on a status query:
  - the proxy tracks how many bytes of each session reached the server
    ("persisted"); a status query ("bytes */*", or "bytes */N" before all N
    bytes are there) is answered 308 with "Range: bytes=0-(persisted-1)" (no
    Range when nothing persisted) and never forwarded;
  - re-sent bytes below "persisted" are ignored (Google's resent-data rule); a
    chunk that starts past "persisted" is refused with 400;
  - only the accepted bytes are forwarded, with their true Content-Range.
A rule is ACTION:METHOD:MATCH:COUNT[:ARG], for requests whose method is METHOD
(or *) and whose target contains MATCH (or *), the first COUNT times (or
always). Actions on a session chunk:
    partial   persist only half the chunk (256 KiB aligned), answer 308 with the shorter Range
    503mid    persist half the chunk, then answer 503 backendError
    reset     read half the chunk, persist what was read (256 KiB aligned), reset the connection
    401       answer 401 authError without forwarding (a token that expired mid-upload)
    gone      answer 410 (the session was terminated)
On any request:
    delay     wait ARG seconds, then go on as without a rule (slow uploads, for token refresh tests)
On other requests:
    503       answer 503 backendError without forwarding
    reset     read the head and half the body, reset the connection
    500after  forward, drop the real answer, answer 503 (the request took effect; the answer was lost)
    stall     read the request, answer nothing for ARG seconds, then close
With --tokens FILE (lines "TOKEN EXPIRY_EPOCH", appended by gcsauth.py), every
request carrying a bearer token must carry a known, unexpired one: else 401,
logged as "BADTOKEN" or "EXPIRED". Every request is logged to LOG_FILE as
"REQ METHOD TARGET STATUS", every fault as "FIRED ACTION METHOD TARGET".
"""
import re
import socket
import socketserver
import struct
import sys
import threading
import time

UNIT = 256 * 1024
args = sys.argv[1:]
UP_PORT = int(args.pop(0))
LOG = open(args.pop(0), "a", buffering=1)
TOKENS = None
if args and args[0] == "--tokens":
    args.pop(0)
    TOKENS = args.pop(0)
LOCK = threading.Lock()
SESSIONS = {}  # upload_id -> bytes persisted upstream


class Rule:
    def __init__(self, text):
        parts = text.split(":")
        self.action, self.method, self.match = parts[0], parts[1], parts[2]
        self.left = -1 if parts[3] == "always" else int(parts[3])
        self.arg = float(parts[4]) if len(parts) > 4 else 0.0

    def take(self, method, target):
        if self.method not in ("*", method) or (self.match != "*" and self.match not in target):
            return False
        with LOCK:
            if self.left == 0:
                return False
            if self.left > 0:
                self.left -= 1
            return True


RULES = [Rule(r) for r in args]


def log(line):
    with LOCK:
        LOG.write(line + "\n")


def read_head(f):
    lines = []
    while True:
        line = f.readline(65537)
        if not line:
            return None
        if not lines and line in (b"\r\n", b"\n"):
            continue
        lines.append(line)
        if line in (b"\r\n", b"\n"):
            return b"".join(lines)


def header(head, name):
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == name:
            return v.strip().decode()
    return None


def set_header(head, name, value):
    """head with header `name` replaced (or added)."""
    lines = head.split(b"\r\n")
    out = [lines[0]] + [l for l in lines[1:] if l and l.split(b":")[0].strip().lower() != name.lower()]
    out.append(name + b": " + value.encode())
    return b"\r\n".join(out) + b"\r\n\r\n"


def read_body(f, head, method=None, status=None):
    if status is not None and (method == "HEAD" or status in (204, 304) or 100 <= status < 200):
        return b""
    te = header(head, b"transfer-encoding")
    if te and "chunked" in te.lower():  # kept framed: it is forwarded as it came
        out = []
        while True:
            size_line = f.readline()
            out.append(size_line)
            size = int(size_line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while True:
                    t = f.readline()
                    out.append(t)
                    if t in (b"\r\n", b"\n", b""):
                        return b"".join(out)
            out.append(f.read(size + 2))
    n = header(head, b"content-length")
    if n is not None:
        return f.read(int(n))
    return b"" if status is None else f.read()


def gcs_error(status, reason, message):
    return ('{"error":{"code":%d,"message":"%s","errors":[{"reason":"%s","message":"%s"}]}}'
            % (status, message, reason, message)).encode()


def answer(wfile, status, reason, body=b"", extra=""):
    wfile.write(("HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n%s\r\n"
                 % (status, reason, len(body), extra)).encode() + body)
    wfile.flush()


def token_problem(head):
    """None when the bearer token is fine (or absent), else 'BADTOKEN'/'EXPIRED'."""
    if not TOKENS:
        return None
    auth = header(head, b"authorization")
    if not auth:
        return None
    tok = auth.split(" ", 1)[-1]
    try:
        known = dict(line.split()[:2] for line in open(TOKENS) if line.strip())
    except OSError:
        known = {}
    if tok not in known:
        return "BADTOKEN"
    if float(known[tok]) <= time.time():
        return "EXPIRED"
    return None


class Handler(socketserver.StreamRequestHandler):
    def setup(self):
        super().setup()
        self.up = None

    def upstream(self):
        if self.up is None:
            s = socket.create_connection(("127.0.0.1", UP_PORT))
            self.up = (s, s.makefile("rb"))
        return self.up

    def forward(self, head, body, method):
        for attempt in (1, 2):
            try:
                s, f = self.upstream()
                s.sendall(head + body)
                rhead = read_head(f)
                if rhead is None:
                    raise ConnectionError("upstream closed")
                status = int(rhead.split(b" ")[1])
                return rhead, read_body(f, rhead, method, status), status
            except (ConnectionError, OSError):
                if self.up:
                    self.up[0].close()
                self.up = None
                if attempt == 2:
                    raise

    def reset(self):
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()

    def persist(self, head, uid, data, total):
        """Forwards `data` at the session's persisted offset; the upstream answer (or None)."""
        at = SESSIONS.get(uid, 0)
        if not data:
            return None
        last = at + len(data) - 1
        tail = str(total) if total is not None and last + 1 == total else "*"
        h = set_header(set_header(head, b"Content-Range", "bytes %d-%d/%s" % (at, last, tail)),
                       b"Content-Length", str(len(data)))
        h = h.replace(b"\r\n\r\n\r\n", b"\r\n\r\n")
        rhead, rbody, status = self.forward(h, data, "PUT")
        if status in (200, 201, 308):
            SESSIONS[uid] = at + len(data)
        return rhead, rbody, status

    def range_answer(self, uid, note=""):
        at = SESSIONS.get(uid, 0)
        extra = ("Range: bytes=0-%d\r\n" % (at - 1)) if at else ""
        answer(self.wfile, 308, "Permanent Redirect", b"", extra)
        log("REQ PUT session %s 308 persisted=%d%s" % (uid[:8], at, note))

    def session(self, head, method, target, rule):
        uid = re.search(r"upload_id=([0-9a-zA-Z_-]+)", target).group(1)
        cr = header(head, b"content-range") or ""
        m = re.match(r"bytes (\*|(\d+)-(\d+))/(\*|\d+)$", cr)
        n = int(header(head, b"content-length") or 0)
        if method == "DELETE":
            self.rfile.read(n)
            SESSIONS.pop(uid, None)
            answer(self.wfile, 499, "Client Closed Request")
            log("REQ DELETE session %s 499" % uid[:8])
            return True
        if not m:
            self.rfile.read(n)
            answer(self.wfile, 400, "Bad Request", gcs_error(400, "invalid", "bad Content-Range '%s'" % cr))
            return True
        total = None if m.group(4) == "*" else int(m.group(4))
        if rule and rule.action == "reset":
            got = self.rfile.read(n // 2)
            start = int(m.group(2) or 0)
            keep = got[max(0, SESSIONS.get(uid, 0) - start):]
            keep = keep[: (len(keep) // UNIT) * UNIT]
            self.persist(head, uid, keep, None)
            log("FIRED reset PUT session %s persisted=%d" % (uid[:8], SESSIONS.get(uid, 0)))
            self.reset()
            return False
        body = self.rfile.read(n)
        if rule and rule.action in ("401", "gone"):
            log("FIRED %s PUT session %s" % (rule.action, uid[:8]))
            if rule.action == "401":
                answer(self.wfile, 401, "Unauthorized", gcs_error(401, "authError", "Invalid Credentials"))
            else:
                answer(self.wfile, 410, "Gone", gcs_error(410, "gone", "The upload session was terminated"))
            return True
        if m.group(1) == "*":  # a status query, or the end of a stream of known total
            if total is not None and SESSIONS.get(uid, 0) == total:
                h = set_header(head, b"Content-Range", "bytes */%d" % total)
                rhead, rbody, status = self.forward(h, b"", "PUT")
                log("REQ PUT session %s final %d" % (uid[:8], status))
                self.wfile.write(rhead + rbody)
                self.wfile.flush()
            else:
                self.range_answer(uid, " (status query)")
            return True
        start = int(m.group(2))
        at = SESSIONS.get(uid, 0)
        if start > at:
            answer(self.wfile, 400, "Bad Request", gcs_error(400, "invalid", "the upload offset %d is past the %d "
                                                             "bytes persisted" % (start, at)))
            log("REQ PUT session %s 400 gap start=%d persisted=%d" % (uid[:8], start, at))
            return True
        data = body[at - start:]  # resent bytes are ignored
        if rule and rule.action in ("partial", "503mid"):
            data = data[: ((len(data) // 2) // UNIT) * UNIT]
            self.persist(head, uid, data, None)
            log("FIRED %s PUT session %s persisted=%d" % (rule.action, uid[:8], SESSIONS.get(uid, 0)))
            if rule.action == "partial":
                self.range_answer(uid, " (partial)")
            else:
                answer(self.wfile, 503, "Service Unavailable", gcs_error(503, "backendError", "Backend Error"))
            return True
        res = self.persist(head, uid, data, total)
        if res and res[2] in (200, 201):
            log("REQ PUT session %s %d complete" % (uid[:8], res[2]))
            self.wfile.write(res[0] + res[1])
            self.wfile.flush()
        elif res and res[2] != 308:
            log("REQ PUT session %s upstream %d" % (uid[:8], res[2]))
            self.wfile.write(res[0] + res[1])
            self.wfile.flush()
        else:
            self.range_answer(uid)
        return True

    def other(self, head, method, target, rule):
        if rule and rule.action == "reset":
            self.rfile.read(int(header(head, b"content-length") or 0) // 2)
            log("FIRED reset %s %s" % (method, target))
            self.reset()
            return False
        body = read_body(self.rfile, head)
        if rule and rule.action == "503":
            log("FIRED 503 %s %s" % (method, target))
            answer(self.wfile, 503, "Service Unavailable", gcs_error(503, "backendError", "Backend Error"))
            return True
        if rule and rule.action == "stall":
            log("FIRED stall %s %s" % (method, target))
            time.sleep(rule.arg)
            self.reset()
            return False
        rhead, rbody, status = self.forward(head, body, method)
        if rule and rule.action == "500after":
            log("FIRED 500after %s %s (upstream said %d)" % (method, target, status))
            answer(self.wfile, 503, "Service Unavailable", gcs_error(503, "backendError", "Backend Error"))
            return True
        log("REQ %s %s %d" % (method, target, status))
        self.wfile.write(rhead + rbody)
        self.wfile.flush()
        return True

    def handle(self):
        try:
            while True:
                head = read_head(self.rfile)
                if head is None:
                    return
                method, target = head.split(b" ")[0].decode(), head.split(b" ")[1].decode()
                bad = token_problem(head)
                if bad:
                    read_body(self.rfile, head)
                    log("%s %s %s" % (bad, method, target))
                    answer(self.wfile, 401, "Unauthorized", gcs_error(401, "authError", "Invalid Credentials"))
                    continue
                rule = next((r for r in RULES if r.take(method, target)), None)
                if rule and rule.action == "delay":
                    time.sleep(rule.arg)
                    rule = None
                is_session = "upload_id=" in target and method in ("PUT", "POST", "DELETE")
                ok = self.session(head, method, target, rule) if is_session else self.other(head, method, target, rule)
                if not ok:
                    return
        except (ConnectionError, OSError, ValueError, IndexError, AttributeError):
            return
        finally:
            if self.up:
                self.up[0].close()


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


srv = Server(("127.0.0.1", 0), Handler)
print(srv.server_address[1], flush=True)
srv.serve_forever()
