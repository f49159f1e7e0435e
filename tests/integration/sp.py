"""The NNG (scalability protocols) REQ side over TCP, stdlib only.

SP over TCP: each side sends an 8-byte header (0x00 'S' 'P' 0x00, the
16-bit protocol number, two zero bytes); each message is then a 64-bit
big-endian length and the bytes.  A REQ message starts with a 32-bit
request id whose high bit is set; the REP peer echoes it back.  Keeping our
own ids lets one connection carry many requests at once, as a raw REQ
socket does.
"""
import itertools
import socket
import struct

import mp

PROTO_REQ = 0x30
PROTO_REP = 0x31
PROTO_SUB = 0x21
_ids = itertools.count(1)


class Conn:
    def __init__(self, host, port, timeout=10.0, proto=PROTO_REQ):
        self.s = socket.create_connection((host, port), timeout=timeout)
        self.s.sendall(b"\x00SP\x00" + struct.pack(">H", proto) + b"\x00\x00")
        peer = self._read(8)
        if peer[:4] != b"\x00SP\x00":
            raise IOError("not an SP peer")

    def close(self):
        self.s.close()

    def _read(self, n):
        buf = bytearray()
        while len(buf) < n:
            chunk = self.s.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("peer closed")
            buf += chunk
        return bytes(buf)

    def send_raw(self, payload, rid=None):
        """Sends payload as one REQ message; returns its request id."""
        rid = rid if rid is not None else (next(_ids) | 0x80000000)
        msg = struct.pack(">I", rid) + payload
        self.s.sendall(struct.pack(">Q", len(msg)) + msg)
        return rid

    def send_bytes(self, data):
        """Sends arbitrary bytes on the wire (for hostile-input tests)."""
        self.s.sendall(data)

    def recv(self):
        """Returns (request id, decoded reply)."""
        n = struct.unpack(">Q", self._read(8))[0]
        msg = self._read(n)
        rid = struct.unpack(">I", msg[:4])[0]
        return rid, mp.unpack(msg[4:])

    def request(self, mtype, body, rid_str="test"):
        env = {"v": 1, "type": mtype, "id": rid_str, "body": body}
        rid = self.send_raw(mp.pack(env))
        got, reply = self.recv()
        if got != rid:
            raise IOError("reply to another request")
        return reply


def call(port, mtype, body, host="127.0.0.1", timeout=10.0):
    """One request on a fresh connection; returns the reply envelope."""
    c = Conn(host, port, timeout=timeout)
    try:
        return c.request(mtype, body)
    finally:
        c.close()
