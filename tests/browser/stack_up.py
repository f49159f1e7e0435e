#!/usr/bin/python3
"""Starts the whole stack for the browser tests and keeps it up until
SIGTERM/SIGINT: redis, authz, share, guestlink, notify with an SMTP
catcher, and the gateway (tests/integration/test_gateway.py FullStack),
all on free loopback ports, with the test directory and a few studies.

Writes what the tests need as JSON to the file named by its argument
(written under a temporary name and renamed, so a reader never sees half
of it): the gateway's URL, the catcher's mail directory and the studies.
"""
import json
import os
import signal
import sys
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

from test_gateway import FullStack, new_uid  # noqa: E402


def main():
    out = sys.argv[1]
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: stop.set())
    signal.signal(signal.SIGINT, lambda *a: stop.set())
    stack = FullStack(mail=True, acl_users=True)
    try:
        pid = "PB%d" % os.getpid()
        patient = {"id": pid, "name": "DOE^JANE", "birth_date": "19800131"}
        prior = stack.arrive(new_uid(), patient=patient, study_date="20240110",
                             modality="CT", description="CT HEAD PRIOR", accession="B0")
        study = stack.arrive(new_uid(), patient=patient, study_date="20261101",
                             modality="CT", description="CT HEAD BROWSER", accession="B1")
        email_study = stack.arrive(new_uid(), patient={"id": "PB-E", "name": "ROE^RICHARD"},
                                   study_date="20261102", modality="MR",
                                   description="MR KNEE INVITE", accession="B2")
        info = {"url": stack.public_url, "mail_dir": stack.catcher.dir,
                "redis_port": stack.redis.port,
                "study": study, "prior": prior, "email_study": email_study,
                "logs": {n: getattr(stack, n).log for n in
                         ("gateway", "guestlink", "share", "authz", "notify")}}
        tmp = out + ".tmp"
        with open(tmp, "w") as f:
            json.dump(info, f)
        os.rename(tmp, out)
        stop.wait()
    finally:
        rcs = stack.close()
        print("stack stopped: %s" % json.dumps(rcs), file=sys.stderr)


if __name__ == "__main__":
    main()
