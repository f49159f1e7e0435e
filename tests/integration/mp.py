"""A small msgpack codec (the subset studyshare uses), stdlib only.

pack() encodes None, bool, int, float, str, bytes, list/tuple and dict.
unpack() decodes one object and refuses trailing bytes.
"""
import struct


def pack(o):
    out = bytearray()
    _pack(o, out)
    return bytes(out)


def _pack(o, out):
    if o is None:
        out.append(0xC0)
    elif o is True:
        out.append(0xC3)
    elif o is False:
        out.append(0xC2)
    elif isinstance(o, int):
        if 0 <= o < 128:
            out.append(o)
        elif -32 <= o < 0:
            out.append(o & 0xFF)
        elif 0 <= o < 2**64:
            out.append(0xCF)
            out += struct.pack(">Q", o)
        else:
            out.append(0xD3)
            out += struct.pack(">q", o)
    elif isinstance(o, float):
        out.append(0xCB)
        out += struct.pack(">d", o)
    elif isinstance(o, str):
        b = o.encode()
        _head(out, len(b), 0xA0, 32, 0xD9, 0xDA, 0xDB)
        out += b
    elif isinstance(o, (bytes, bytearray)):
        _head(out, len(o), None, 0, 0xC4, 0xC5, 0xC6)
        out += o
    elif isinstance(o, (list, tuple)):
        _head(out, len(o), 0x90, 16, None, 0xDC, 0xDD)
        for e in o:
            _pack(e, out)
    elif isinstance(o, dict):
        _head(out, len(o), 0x80, 16, None, 0xDE, 0xDF)
        for k, v in o.items():
            _pack(k, out)
            _pack(v, out)
    else:
        raise TypeError(type(o))


def _head(out, n, fix, fixmax, b8, b16, b32):
    if fix is not None and n < fixmax:
        out.append(fix | n)
    elif b8 is not None and n < 256:
        out += bytes([b8, n])
    elif n < 65536:
        out.append(b16)
        out += struct.pack(">H", n)
    else:
        out.append(b32)
        out += struct.pack(">I", n)


def unpack(b):
    o, i = _unpack(b, 0)
    if i != len(b):
        raise ValueError("trailing bytes")
    return o


def _unpack(b, i):
    t = b[i]
    i += 1
    if t < 0x80:
        return t, i
    if t >= 0xE0:
        return t - 256, i
    if 0x80 <= t <= 0x8F:
        return _map(b, i, t & 0x0F)
    if 0x90 <= t <= 0x9F:
        return _arr(b, i, t & 0x0F)
    if 0xA0 <= t <= 0xBF:
        n = t & 0x1F
        return b[i:i + n].decode(), i + n
    fixed = {0xC0: None, 0xC2: False, 0xC3: True}
    if t in fixed:
        return fixed[t], i
    ints = {0xCC: ">B", 0xCD: ">H", 0xCE: ">I", 0xCF: ">Q",
            0xD0: ">b", 0xD1: ">h", 0xD2: ">i", 0xD3: ">q",
            0xCA: ">f", 0xCB: ">d"}
    if t in ints:
        f = ints[t]
        n = struct.calcsize(f)
        return struct.unpack(f, b[i:i + n])[0], i + n
    lens = {0xD9: (">B", "s"), 0xDA: (">H", "s"), 0xDB: (">I", "s"),
            0xC4: (">B", "b"), 0xC5: (">H", "b"), 0xC6: (">I", "b"),
            0xDC: (">H", "a"), 0xDD: (">I", "a"),
            0xDE: (">H", "m"), 0xDF: (">I", "m")}
    if t in lens:
        f, kind = lens[t]
        w = struct.calcsize(f)
        n = struct.unpack(f, b[i:i + w])[0]
        i += w
        if kind == "s":
            return b[i:i + n].decode(), i + n
        if kind == "b":
            return bytes(b[i:i + n]), i + n
        if kind == "a":
            return _arr(b, i, n)
        return _map(b, i, n)
    raise ValueError("unsupported msgpack byte 0x%02x" % t)


def _arr(b, i, n):
    out = []
    for _ in range(n):
        o, i = _unpack(b, i)
        out.append(o)
    return out, i


def _map(b, i, n):
    out = {}
    for _ in range(n):
        k, i = _unpack(b, i)
        v, i = _unpack(b, i)
        out[k] = v
    return out, i
