#!/usr/bin/env python3
"""A misbehaving S3 endpoint on 127.0.0.1, one misbehaviour per run, for the
tests that an S3 client must survive: it answers without checking signatures.

  bads3.py MODE PORTFILE [CATALOGUE]
    endless-list   a 200 listing whose body never ends
    endless-500    a 500 whose body never ends
    repeat-token   every listing page is truncated with the same continuation token
    drip           a listing sent one byte every 2 s
    huge-head      lists "p.<id>.arca" and "p.<id>.manifest.json" (the catalogue
                   file given, served for ranged GETs); HEAD claims 2^63 bytes
    cut-complete   a multipart upload whose CompleteMultipartUpload answer is cut
                   after "<ETag>"
  Writes the port it listens on to PORTFILE; appends one line per request
  ("METHOD PATH?QUERY") to PORTFILE.log.
"""
import http.server, os, socketserver, sys, time

MODE, PORTFILE = sys.argv[1], sys.argv[2]
CAT = open(sys.argv[3], "rb").read() if len(sys.argv) > 3 else b""
CAT_NAME = os.path.basename(sys.argv[3]) if len(sys.argv) > 3 else ""
XMLNS = 'xmlns="http://s3.amazonaws.com/doc/2006-03-01/"'


class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def note(self):
        with open(PORTFILE + ".log", "a") as f:
            f.write(f"{self.command} {self.path}\n")

    def send(self, code, body=b"", headers=()):
        self.send_response(code)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def endless(self, code):
        self.send_response(code)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        chunk = b"<Contents><Key>x</Key><Size>1</Size></Contents>" * 1000
        try:
            while True:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        except (BrokenPipeError, ConnectionResetError):
            pass

    def listing(self, keys, truncated=False, token=""):
        items = "".join(f"<Contents><Key>{k}</Key><LastModified>2026-11-21T06:01:23.000Z</LastModified>"
                        f"<Size>{s}</Size></Contents>" for k, s in keys)
        t = f"<IsTruncated>true</IsTruncated><NextContinuationToken>{token}</NextContinuationToken>" if truncated \
            else "<IsTruncated>false</IsTruncated>"
        return f'<?xml version="1.0"?><ListBucketResult {XMLNS}><Name>b</Name>{t}{items}</ListBucketResult>'.encode()

    def do_GET(self):
        self.note()
        if MODE == "endless-list":
            return self.endless(200)
        if MODE == "endless-500":
            return self.endless(500)
        if MODE == "repeat-token":
            return self.send(200, self.listing([("p.x", 1)], True, "SAMETOKEN"))
        if MODE == "drip":
            body = self.listing([])
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            try:
                for b in body:
                    self.wfile.write(bytes([b]))
                    self.wfile.flush()
                    time.sleep(2)
            except (BrokenPipeError, ConnectionResetError):
                pass
            return
        if MODE == "huge-head":
            if "list-type=2" in self.path:
                ident = CAT_NAME[len("p."):-len(".manifest.json")]
                return self.send(200, self.listing([(CAT_NAME, len(CAT)), (f"p.{ident}.arca", 5000)]))
            if self.path.endswith(CAT_NAME):
                rng = self.headers.get("Range", "")
                if rng.startswith("bytes="):
                    a, b = rng[6:].split("-")
                    part = CAT[int(a):int(b) + 1]
                    return self.send(206, part, [("Content-Range", f"bytes {a}-{int(a) + len(part) - 1}/{len(CAT)}"),
                                                 ("ETag", '"cat"')])
                return self.send(200, CAT, [("ETag", '"cat"')])
        return self.send(404, f"<Error><Code>NoSuchKey</Code><Message>no</Message></Error>".encode())

    def do_HEAD(self):
        self.note()
        if MODE == "huge-head":
            self.send_response(200)
            self.send_header("Content-Length", str(2 ** 63 - 1))
            self.send_header("ETag", '"huge"')
            self.end_headers()
            return
        self.send(404)

    def do_PUT(self):
        self.note()
        n = int(self.headers.get("Content-Length", "0"))
        self.rfile.read(n)
        self.send(200, b"", [("ETag", '"%032x"' % n)])

    def do_POST(self):
        self.note()
        n = int(self.headers.get("Content-Length", "0"))
        self.rfile.read(n)
        if "uploads" in self.path:
            return self.send(200, f'<?xml version="1.0"?><InitiateMultipartUploadResult {XMLNS}><Bucket>b</Bucket>'
                                  f'<Key>k</Key><UploadId>UPLOAD1</UploadId></InitiateMultipartUploadResult>'.encode())
        if "uploadId" in self.path and MODE == "cut-complete":
            return self.send(200, f'<?xml version="1.0"?><CompleteMultipartUploadResult {XMLNS}><Location>l'
                                  f'</Location><Bucket>b</Bucket><Key>k</Key><ETag>'.encode())
        self.send(400)

    def do_DELETE(self):
        self.note()
        self.send(204)


class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


srv = S(("127.0.0.1", 0), H)
with open(PORTFILE, "w") as f:
    f.write(str(srv.server_address[1]))
srv.serve_forever()
