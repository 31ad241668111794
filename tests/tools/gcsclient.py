#!/usr/bin/env python3
"""Google's own client (google-cloud-storage, from .deps/venv) against a test
endpoint, for the gcs tests and bench: an independent reader and writer.

    gcsclient.py ENDPOINT ls BUCKET PREFIX           names and sizes, one per line (every object)
    gcsclient.py ENDPOINT get BUCKET NAME FILE       download (checksum checked by the client)
    gcsclient.py ENDPOINT put BUCKET NAME FILE [CHUNK]  upload (resumable in CHUNK bytes if given)
    gcsclient.py ENDPOINT retention BUCKET NAME      "MODE RETAIN_UNTIL_EPOCH" as the server reports it
    gcsclient.py ENDPOINT fill BUCKET PREFIX N       N small objects PREFIX000000 ...
Anonymous credentials (the emulator checks none), so no secret is involved.
"""
import sys

from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage

endpoint, cmd, bucket = sys.argv[1], sys.argv[2], sys.argv[3]
client = storage.Client(project="arca-test", credentials=AnonymousCredentials(),
                        client_options=ClientOptions(api_endpoint=endpoint))
b = client.bucket(bucket)
if cmd == "ls":
    for blob in client.list_blobs(bucket, prefix=sys.argv[4]):
        print(blob.name, blob.size)
elif cmd == "get":
    b.blob(sys.argv[4]).download_to_filename(sys.argv[5], checksum="crc32c")
elif cmd == "put":
    blob = b.blob(sys.argv[4], chunk_size=int(sys.argv[6]) if len(sys.argv) > 6 else None)
    blob.upload_from_filename(sys.argv[5], checksum="crc32c")
elif cmd == "retention":
    blob = b.get_blob(sys.argv[4])
    r = blob.retention
    print(r.mode, int(r.retain_until_time.timestamp()) if r.retain_until_time else 0)
elif cmd == "fill":
    for i in range(int(sys.argv[5])):
        b.blob("%s%06d" % (sys.argv[4], i)).upload_from_string(b"x")
else:
    sys.exit("unknown command " + cmd)
