"""Bad input to the standalone server: each malformed message gets MongoDB's
error reply (or the connection is closed where MongoDB closes it), other
connections keep being served, and stored documents are untouched.
"""

from __future__ import annotations

import socket
import struct

import bson
import pymongo
import pytest
from pymongo.errors import OperationFailure, WriteError

from tests.engine_server import Server

OP_MSG = 2013
OP_QUERY = 2004
SEED = [{"_id": i, "k": f"k{i}", "v": {"n": i}} for i in range(10)]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = Server(tmp_path_factory.mktemp("bad-input") / "data").start()
    c = s.client()
    c.keep.seed.create_index("k", unique=True)
    c.keep.seed.insert_many(SEED)
    c.close()
    yield s
    s.stop()


@pytest.fixture
def client(server):
    c = server.client()
    yield c
    c.close()


@pytest.fixture(autouse=True)
def nothing_harmed(server):
    """After every case: the server answers a new client and the seed data is as stored."""
    yield
    assert server.proc.poll() is None, "the server exited"
    c = server.client()
    try:
        assert c.admin.command("ping")["ok"] == 1.0
        assert list(c.keep.seed.find().sort("_id", 1)) == SEED
        with pytest.raises(pymongo.errors.DuplicateKeyError):
            c.keep.seed.insert_one({"k": "k1"})
    finally:
        c.close()


def header(length: int, op_code: int, request_id: int = 1) -> bytes:
    return struct.pack("<iiii", length, request_id, 0, op_code)


def op_msg(body: bytes, flags: int = 0, sections: bytes = b"") -> bytes:
    payload = struct.pack("<I", flags) + b"\x00" + body + sections
    return header(16 + len(payload), OP_MSG) + payload


def exchange(server: Server, data: bytes, *, finish: bool = True) -> dict | None:
    """Sends ``data`` on a new connection; the reply document, or None if the
    server closed the connection without one."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        s.sendall(data)
        if finish:
            s.shutdown(socket.SHUT_WR)
        head = _read(s, 16)
        if head is None:
            return None
        length, _, _, op_code = struct.unpack("<iiii", head)
        payload = _read(s, length - 16)
        assert payload is not None, "reply cut short"
        if op_code == OP_MSG:
            return bson.decode(payload[5:])
        return bson.decode(payload[20:])  # OP_REPLY


def _read(s: socket.socket, n: int) -> bytes | None:
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


def nested(depth: int) -> bytes:
    """Raw BSON ``{"a": {"a": ... {}}}``, built by hand so no encoder recurses."""
    heads = b"".join(struct.pack("<i", level * 8 + 13) + b"\x03a\x00"
                     for level in reversed(range(depth)))
    return heads + b"\x05\x00\x00\x00\x00" + b"\x00" * depth


def insert_body(document: bytes) -> bytes:
    """``{insert: "c", $db: "scratch", documents: [document]}`` around raw document bytes."""
    element = b"\x030\x00" + document
    array = struct.pack("<i", len(element) + 5) + element + b"\x00"
    head = bson.encode({"insert": "c", "$db": "scratch"})[4:-1]
    body = head + b"\x04documents\x00" + array
    return struct.pack("<i", len(body) + 5) + body + b"\x00"


PING = bson.encode({"ping": 1, "$db": "admin"})


def error_code(reply: dict | None) -> int | None:
    assert reply is not None, "expected an error reply, the connection was closed"
    assert reply["ok"] == 0.0
    assert reply["errmsg"]
    return reply["code"]


# ---- framing: MongoDB closes the connection ------------------------------------

@pytest.mark.parametrize("data", [
    pytest.param(header(16, OP_MSG)[:9], id="truncated-header"),
    pytest.param(header(-5, OP_MSG), id="negative-length"),
    pytest.param(header(10, OP_MSG), id="length-below-header"),
    pytest.param(header(48_000_001, OP_MSG), id="length-above-max-message"),
    pytest.param(header(1000, OP_MSG) + b"\x00" * 30, id="length-promises-more-than-sent"),
    pytest.param(header(20, 2002) + b"abcd", id="removed-opcode-op-insert"),
    pytest.param(header(20, 9999) + b"abcd", id="unknown-opcode"),
    pytest.param(header(26, 2012) + b"\x00" * 10, id="op-compressed-never-negotiated"),
])
def test_broken_framing_closes_the_connection(server, data):
    assert exchange(server, data) is None


def test_a_lying_length_does_not_block_other_clients(server):
    # The header promises 40 MB that never come; the connection just waits.
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as hung:
        hung.sendall(header(40_000_000, OP_MSG) + b"\x00" * 100)
        assert exchange(server, op_msg(PING))["ok"] == 1.0


# ---- content errors: an error reply, the connection stays usable ----------------

def test_invalid_bson_gets_invalid_bson(server):
    body = bytearray(PING)
    body[0] = 0x7F  # document length larger than the message
    assert error_code(exchange(server, op_msg(bytes(body)))) in (9, 22)
    body = bytearray(PING)
    body[4] = 0x42  # unknown element type
    assert error_code(exchange(server, op_msg(bytes(body)))) == 22


def test_invalid_utf8_in_a_string(server):
    body = bson.encode({"insert": "c", "$db": "scratch", "documents": [{"s": "ok"}]})
    body = body.replace(b"ok\x00", b"\xff\xfe\x00")
    assert error_code(exchange(server, op_msg(body))) == 22


def test_illegal_opmsg_flags_reply_then_close(server):
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        s.sendall(op_msg(PING, flags=1 << 4))
        head = _read(s, 16)
        reply = bson.decode(_read(s, struct.unpack("<i", head[:4])[0] - 16)[5:])
        assert reply["code"] == 223 and reply["codeName"] == "IllegalOpMsgFlag"
        assert _read(s, 1) is None  # closed


def test_bad_checksum_is_refused(server):
    message = op_msg(PING + b"\x00\x00\x00\x00", flags=1)
    assert error_code(exchange(server, message)) == 17


def test_good_checksum_is_accepted(server):
    def crc32c(data: bytes) -> int:
        crc = 0xFFFFFFFF
        for byte in data:
            crc ^= byte
            for _ in range(8):
                crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
        return crc ^ 0xFFFFFFFF

    unsigned = op_msg(PING + b"\x00\x00\x00\x00", flags=1)[:-4]
    message = unsigned + struct.pack("<I", crc32c(unsigned))
    assert exchange(server, message)["ok"] == 1.0


def test_opmsg_structure_errors(server):
    assert error_code(exchange(server, op_msg(PING, sections=b"\x00" + PING))) == 40430
    assert error_code(exchange(server, op_msg(PING, sections=b"\x07"))) == 40432
    no_body = struct.pack("<I", 0) + b"\x01" + struct.pack("<i", 6) + b"x\x00"
    assert error_code(exchange(server, header(16 + len(no_body), OP_MSG) + no_body)) == 40587


def test_message_nested_past_200_levels(server):
    assert error_code(exchange(server, op_msg(insert_body(nested(250))))) == 15
    # Deep enough to have overflowed the stack of a recursive decoder.
    assert error_code(exchange(server, op_msg(insert_body(nested(200_000))))) == 15


def test_document_nested_past_100_levels_is_not_stored(server, client):
    reply = exchange(server, op_msg(insert_body(nested(120))))
    assert reply["ok"] == 1.0 and reply["n"] == 0
    assert reply["writeErrors"][0]["code"] == 15
    deep: dict = {}
    for _ in range(101):
        deep = {"a": deep or 1}
    with pytest.raises(WriteError) as info:
        client.scratch.c.insert_one(deep)
    assert info.value.code == 15


def test_field_path_too_long(client):
    with pytest.raises(OperationFailure) as info:
        client.scratch.paths.update_one({}, {"$set": {".".join(["x"] * 100_000): 1}}, upsert=True)
    assert info.value.code == 15
    assert client.scratch.paths.count_documents({}) == 0


def test_document_over_16_mib_is_refused_as_mongod_7_does(server, client):
    # pymongo leaves the server to judge documents up to its 16 KiB margin.
    with pytest.raises(WriteError) as info:
        client.scratch.big.insert_one({"x": "a" * (16 * 1024 * 1024)})
    assert info.value.code == 2
    assert "object to insert too large" in str(info.value)
    # Over the wire as a document sequence, well past the margin.
    body = bson.encode({"insert": "big", "$db": "scratch"})
    doc = bson.encode({"x": "a" * (17 * 1024 * 1024)})
    section = b"documents\x00" + doc
    sequence = b"\x01" + struct.pack("<i", len(section) + 4) + section
    reply = exchange(server, op_msg(body, sections=sequence))
    assert error_code(reply) == 10334
    assert client.scratch.big.count_documents({}) == 0


def test_update_past_16_mib(client):
    client.scratch.grow.insert_one({"_id": 1, "x": "a" * (9 * 1024 * 1024)})
    with pytest.raises(WriteError) as info:
        client.scratch.grow.update_one({"_id": 1}, {"$set": {"y": "b" * (9 * 1024 * 1024)}})
    assert info.value.code == 17419
    assert "y" not in client.scratch.grow.find_one({"_id": 1})


def test_unknown_command(client):
    with pytest.raises(OperationFailure) as info:
        client.admin.command("frobnicate")
    assert info.value.code == 59
    assert info.value.details["codeName"] == "CommandNotFound"


def test_legacy_query_with_invalid_bson_gets_an_op_reply(server):
    query = bytearray(bson.encode({"isMaster": 1}))
    query[4] = 0x42
    payload = struct.pack("<i", 0) + b"admin.$cmd\x00" + struct.pack("<ii", 0, -1) + bytes(query)
    assert error_code(exchange(server, header(16 + len(payload), OP_QUERY) + payload)) == 22


def test_errors_leave_the_connection_usable(server):
    bad = bytearray(PING)
    bad[4] = 0x42
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        for data in (op_msg(bytes(bad)), op_msg(PING)):
            s.sendall(data)
            head = _read(s, 16)
            reply = bson.decode(_read(s, struct.unpack("<i", head[:4])[0] - 16)[5:])
        assert reply["ok"] == 1.0
