#!/usr/bin/env python3
"""Loopback HTTP/1.1 proxy that injects faults into chosen S3 requests.

    faultproxy.py UPSTREAM_PORT LOG_FILE [RULE ...]

Prints the port it listens on (127.0.0.1) and serves until killed. A rule is
ACTION:METHOD:MATCH:COUNT[:SECONDS]. It applies to requests whose method is
METHOD (or *) and whose target (path?query) contains MATCH (or *), the first
COUNT times (or every time with COUNT = always). Actions:
    reset      read the headers and half the body, then reset the connection
    slowdown   answer 503 SlowDown without forwarding
    500        answer 500 InternalError without forwarding
    nosuchupload  answer 404 NoSuchUpload without forwarding (what S3 may say to
               a CompleteMultipartUpload retried after the first one completed)
    500after   forward, drop the real answer, answer 500 InternalError
    200error   forward, drop the real answer, answer 200 with an <Error> body
    stall      read the request, answer nothing for SECONDS, then close
Every request is logged to LOG_FILE as "REQ METHOD TARGET STATUS"; every
injected fault as "FIRED ACTION METHOD TARGET".
"""
import socket
import socketserver
import struct
import sys
import threading
import time

UP_PORT = int(sys.argv[1])
LOG = open(sys.argv[2], "a", buffering=1)
LOCK = threading.Lock()


class Rule:
    def __init__(self, text):
        parts = text.split(":")
        self.action, self.method, self.match = parts[0], parts[1], parts[2]
        self.left = -1 if parts[3] == "always" else int(parts[3])
        self.seconds = float(parts[4]) if len(parts) > 4 else 0.0

    def take(self, method, target):
        if self.method not in ("*", method) or (self.match != "*" and self.match not in target):
            return False
        with LOCK:
            if self.left == 0:
                return False
            if self.left > 0:
                self.left -= 1
            return True


RULES = [Rule(r) for r in sys.argv[3:]]


def log(line):
    with LOCK:
        LOG.write(line + "\n")


def read_head(f):
    """Request or status line and headers as raw bytes, or None at EOF."""
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


def read_body(f, head, method=None, status=None):
    """The body of a request (method None) or an answer, raw."""
    if status is not None and (method == "HEAD" or status in (204, 304) or 100 <= status < 200):
        return b""
    te = header(head, b"transfer-encoding")
    if te and "chunked" in te.lower():
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
    if status is None:
        return b""
    return f.read()  # until close


def error_xml(code, message):
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>%s</Code><Message>%s</Message>'
            "<RequestId>faultproxy</RequestId></Error>" % (code, message)).encode()


def answer(wfile, status, reason, body):
    wfile.write(("HTTP/1.1 %d %s\r\nContent-Type: application/xml\r\nContent-Length: %d\r\n\r\n"
                 % (status, reason, len(body))).encode() + body)
    wfile.flush()


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
                rbody = read_body(f, rhead, method, status)
                return rhead, rbody, status
            except (ConnectionError, OSError):
                if self.up:
                    self.up[0].close()
                self.up = None
                if attempt == 2:
                    raise

    def reset(self):
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()

    def handle(self):
        try:
            while True:
                head = read_head(self.rfile)
                if head is None:
                    return
                method, target = head.split(b" ")[0].decode(), head.split(b" ")[1].decode()
                rule = next((r for r in RULES if r.take(method, target)), None)
                if rule and rule.action == "reset":
                    n = int(header(head, b"content-length") or 0)
                    self.rfile.read(n // 2)
                    log("FIRED reset %s %s" % (method, target))
                    self.reset()
                    return
                body = read_body(self.rfile, head)
                if rule and rule.action == "slowdown":
                    log("FIRED slowdown %s %s" % (method, target))
                    answer(self.wfile, 503, "Slow Down", error_xml("SlowDown", "Please reduce your request rate."))
                    continue
                if rule and rule.action == "500":
                    log("FIRED 500 %s %s" % (method, target))
                    answer(self.wfile, 500, "Internal Server Error",
                           error_xml("InternalError", "We encountered an internal error. Please try again."))
                    continue
                if rule and rule.action == "nosuchupload":
                    log("FIRED nosuchupload %s %s" % (method, target))
                    answer(self.wfile, 404, "Not Found", error_xml(
                        "NoSuchUpload", "The specified upload does not exist. The upload ID may be invalid, "
                        "or the upload may have been aborted or completed."))
                    continue
                if rule and rule.action == "stall":
                    log("FIRED stall %s %s" % (method, target))
                    time.sleep(rule.seconds)
                    self.reset()
                    return
                rhead, rbody, status = self.forward(head, body, method)
                if rule and rule.action == "500after":
                    log("FIRED 500after %s %s (upstream said %d)" % (method, target, status))
                    answer(self.wfile, 500, "Internal Server Error",
                           error_xml("InternalError", "We encountered an internal error. Please try again."))
                    continue
                if rule and rule.action == "200error":
                    log("FIRED 200error %s %s (upstream said %d)" % (method, target, status))
                    answer(self.wfile, 200, "OK",
                           error_xml("InternalError", "We encountered an internal error. Please try again."))
                    continue
                log("REQ %s %s %d" % (method, target, status))
                self.wfile.write(rhead + rbody)
                self.wfile.flush()
        except (ConnectionError, OSError, ValueError, IndexError):
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
