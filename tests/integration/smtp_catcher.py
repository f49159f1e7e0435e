#!/usr/bin/python3
"""A small SMTP server that writes every mail it accepts to a directory.

For the integration tests of notify and for the local stack (`make run`),
which points notify at it so that mail lands in $STUDYSHARE_HOME/mail/.
It needs Debian's python3-aiosmtpd, so run it with /usr/bin/python3.

    smtp_catcher.py --port 2525 --dir var/mail [--mode accept|451|550]
                    [--delay SECONDS] [--host 127.0.0.1]

Each accepted mail becomes one file <dir>/<time ns>-<n>.eml, written under
a temporary name and renamed, so a reader never sees half a mail.  The
file is the message as received, after two lines a delivering MTA adds:
"Return-Path: <sender>" and "Delivered-To: <recipients>".

Modes (what the end of DATA is answered; the message is read in full
first, as a real server would):
    accept  250, and the mail is written
    451     "451 4.3.0 try again later": a temporary failure
    550     "550 5.1.1 mailbox unavailable": a permanent failure
--delay waits that long before answering the end of DATA (mails in flight).

stdout gets one line per event, flushed: "ready <port>" once listening
(with --port 0 the port is picked by the system), "session" per accepted
connection, "mail <file>" or "refused <code>" per message.  SIGTERM or
SIGINT stops it; it can be started again on the same port at once.
"""
import argparse
import asyncio
import itertools
import os
import signal
import sys
import time

from aiosmtpd.smtp import SMTP

REPLIES = {
    "451": "451 4.3.0 try again later",
    "550": "550 5.1.1 mailbox unavailable",
}


def say(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


class Handler:
    def __init__(self, directory, mode, delay):
        self.dir = directory
        self.mode = mode
        self.delay = delay
        self.seq = itertools.count(1)

    async def handle_DATA(self, server, session, envelope):
        if self.delay > 0:
            await asyncio.sleep(self.delay)
        if self.mode in REPLIES:
            say("refused " + self.mode)
            return REPLIES[self.mode]
        name = "%d-%d.eml" % (time.time_ns(), next(self.seq))
        tmp = os.path.join(self.dir, "." + name + ".tmp")
        head = ("Return-Path: <%s>\r\nDelivered-To: %s\r\n"
                % (envelope.mail_from, ", ".join(envelope.rcpt_tos))).encode()
        with open(tmp, "wb") as f:
            f.write(head)
            f.write(envelope.original_content)
        os.rename(tmp, os.path.join(self.dir, name))
        say("mail " + name)
        return "250 2.0.0 OK: queued as " + name


class Session(SMTP):
    def connection_made(self, transport):
        say("session")
        super().connection_made(transport)


async def serve(args):
    handler = Handler(args.dir, args.mode, args.delay)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: Session(handler, decode_data=False, hostname="catcher",
                        ident="studyshare smtp catcher",
                        data_size_limit=64 * 1024 * 1024),
        host=args.host, port=args.port, reuse_address=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    say("ready %d" % server.sockets[0].getsockname()[1])
    await stop.wait()
    server.close()
    await server.wait_closed()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=2525)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--mode", choices=["accept", "451", "550"], default="accept")
    ap.add_argument("--delay", type=float, default=0.0)
    args = ap.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    asyncio.run(serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
