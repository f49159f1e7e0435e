#!/usr/bin/python3
"""Starts the stack for the upload page's browser test (upload.test.mjs)
and keeps it up until SIGTERM/SIGINT: tests/integration/test_gateway.py
FullStack with guest uploads enabled (a spool directory, share's ingest
address), on free loopback ports.  Alice makes two upload links for
location:ct (one with a password); DICOM files are made with dcmtk.

Writes the test's needs as JSON to the file named by its argument (under a
temporary name, then renamed): the gateway's URL, the links' URLs, the
password, and the paths of the files to upload.
"""
import json
import os
import shutil
import signal
import sys
import tempfile
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

from test_gateway import FullStack  # noqa: E402
from test_upload import CT_DUMP, bmp, run  # noqa: E402


def make_files(d):
    ct = os.path.join(d, "ct.dump")
    with open(ct, "w") as f:
        f.write(CT_DUMP % {"uid": "1.2.826.0.1.3680043.10.81.%d" % os.getpid()})
    run("dump2dcm", "+te", ct, os.path.join(d, "ct-explicit.dcm"))
    run("dump2dcm", "+ti", ct, os.path.join(d, "ct-implicit.dcm"))
    bmp(os.path.join(d, "photo.bmp"), 8, 8)
    run("img2dcm", "-i", "BMP", "-k", "PatientName=ROE^RICHARD", "-k", "PatientID=UB-2",
        "-k", "StudyInstanceUID=1.2.826.0.1.3680043.10.82.%d" % os.getpid(),
        "-k", "StudyDate=20261103", "-k", "Modality=OT", "-k", "StudyDescription=PHOTO",
        os.path.join(d, "photo.bmp"), os.path.join(d, "photo.dcm"))
    with open(os.path.join(d, "notes.txt"), "w") as f:
        f.write("not a DICOM file\n")
    return [os.path.join(d, n) for n in
            ("ct-explicit.dcm", "ct-implicit.dcm", "photo.dcm", "notes.txt")]


def main():
    out = sys.argv[1]
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: stop.set())
    signal.signal(signal.SIGINT, lambda *a: stop.set())
    tmp = tempfile.mkdtemp(prefix="ss-browser-upload-")
    spool = os.path.join(tmp, "spool")
    os.mkdir(spool)
    stack = FullStack(gateway_env={"STUDYSHARE_SPOOL_DIR": spool}, acl_users=True)
    try:
        stack.gateway.stop()
        stack.gateway.env["STUDYSHARE_INGEST_URL"] = "tcp://127.0.0.1:%d" % stack.ingest_port
        stack.gateway.start()
        files = make_files(tmp)
        alice = stack.login("alice")
        links = []
        for body in ({"message": "Please send the CT of Jane Doe"},
                     {"password": "upload-pass-1", "max_password_attempts": 3}):
            r = stack.request("POST", "/api/v1/worklists/location:ct/upload-links",
                              body, token=alice)
            assert r.status == 201, r.body
            links.append(r.json["url"])
        info = {"url": stack.public_url, "open_link": links[0], "pw_link": links[1],
                "password": "upload-pass-1", "files": files, "spool": spool,
                "alice_token": alice,
                "logs": {n: getattr(stack, n).log for n in ("gateway", "guestlink", "share")}}
        with open(out + ".tmp", "w") as f:
            json.dump(info, f)
        os.rename(out + ".tmp", out)
        stop.wait()
    finally:
        rcs = stack.close()
        shutil.rmtree(tmp, ignore_errors=True)
        print("stack stopped: %s" % json.dumps(rcs), file=sys.stderr)


if __name__ == "__main__":
    main()
