"""A small RFC 6455 websocket endpoint over one accepted HTTP/1.1 connection.

Enough for the Kubernetes streaming subresources (exec, port-forward): the
opening handshake with a chosen subprotocol, masked client frames (fragmented or
not), binary and text messages, ping/pong and the closing handshake. Sends are
serialized by a lock so several threads (stdout, stderr, status) may send.
"""

from __future__ import annotations

import base64
import hashlib
import socket
import struct
import threading

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
MAX_MESSAGE = 16 * 1024 * 1024  # larger client messages close the connection (1009)
CLOSE_TIMEOUT = 5.0  # a peer that does not answer our close frame within this is cut off


class Closed(Exception):
    """The peer closed the websocket (or the connection broke)."""


def is_upgrade(headers: dict[str, str]) -> bool:
    """A websocket opening handshake (header names lower-case)."""
    return "websocket" in headers.get("upgrade", "").lower() and "upgrade" in headers.get("connection", "").lower()


def accept_key(key: str) -> str:
    digest = hashlib.sha1(key.encode() + _GUID, usedforsecurity=False).digest()  # RFC 6455's SHA-1
    return base64.b64encode(digest).decode()


def offered_protocols(headers: dict[str, str]) -> list[str]:
    return [p.strip() for p in headers.get("sec-websocket-protocol", "").split(",") if p.strip()]


class WebSocket:
    """The server side of an upgraded connection (`rfile`/`wfile` of the request handler)."""

    def __init__(self, sock: socket.socket, rfile, wfile):
        self.sock, self.rfile, self.wfile = sock, rfile, wfile
        self._send_lock = threading.Lock()
        self.closed = False
        self._finished = threading.Event()  # the reader has seen the end

    def send(self, payload: bytes, opcode: int = OP_BINARY) -> None:
        """Send one unfragmented, unmasked frame. Raises `Closed` once the connection is gone."""
        n = len(payload)
        if n < 126:
            header = struct.pack("!BB", 0x80 | opcode, n)
        elif n < 1 << 16:
            header = struct.pack("!BBH", 0x80 | opcode, 126, n)
        else:
            header = struct.pack("!BBQ", 0x80 | opcode, 127, n)
        with self._send_lock:
            if self.closed and opcode != OP_CLOSE:
                raise Closed()
            try:
                self.wfile.write(header + payload)
                self.wfile.flush()
            except (OSError, ValueError) as exc:
                self.closed = True
                raise Closed() from exc

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Start (or answer) the closing handshake; idempotent. A peer that never answers is cut off
        after `CLOSE_TIMEOUT`, so the thread reading it is not left waiting."""
        with self._send_lock:
            if self.closed:
                return
            self.closed = True
        try:
            payload = struct.pack("!H", code) + reason.encode()[:120]
            self.wfile.write(struct.pack("!BB", 0x80 | OP_CLOSE, len(payload)) + payload)
            self.wfile.flush()
        except (OSError, ValueError):
            pass
        if not self._finished.is_set():
            timer = threading.Timer(CLOSE_TIMEOUT, self._cut_off)
            timer.daemon = True
            timer.start()

    def _cut_off(self) -> None:
        if not self._finished.is_set():
            self.shutdown()

    def shutdown(self) -> None:
        """Drop the connection (readers see `Closed`)."""
        self.closed = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def receive(self) -> tuple[int, bytes]:
        """The next data message as (opcode, payload); answers pings. Raises `Closed` at the end."""
        try:
            return self._receive()
        except Closed:
            self._finished.set()
            raise

    def _receive(self) -> tuple[int, bytes]:
        message = bytearray()
        opcode = None
        while True:
            fin, op, payload = self._frame()
            if op == OP_PING:
                try:
                    self.send(payload, OP_PONG)
                except Closed:
                    pass
                continue
            if op == OP_PONG:
                continue
            if op == OP_CLOSE:
                code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1000
                self.close(code if code in (1000, 1001) else 1000)
                raise Closed()
            if op == OP_CONT:
                if opcode is None:
                    self._fail(1002, "continuation without a message")
            elif op in (OP_TEXT, OP_BINARY):
                if opcode is not None:
                    self._fail(1002, "a new message inside a fragmented one")
                opcode = op
            else:
                self._fail(1002, f"unknown opcode {op}")
            message += payload
            if len(message) > MAX_MESSAGE:
                self._fail(1009, "message too big")
            if fin:
                return opcode, bytes(message)

    def _fail(self, code: int, reason: str):
        self.close(code, reason)
        raise Closed()

    def _read(self, n: int) -> bytes:
        try:
            data = self.rfile.read(n)
        except (OSError, ValueError) as exc:
            raise Closed() from exc
        if len(data) < n:
            raise Closed()
        return data

    def _frame(self) -> tuple[bool, int, bytes]:
        first, second = self._read(2)
        fin, opcode = bool(first & 0x80), first & 0x0F
        if not second & 0x80:
            self._fail(1002, "client frames must be masked")
        length = second & 0x7F
        if length == 126:
            length = struct.unpack("!H", self._read(2))[0]
        elif length == 127:
            length = struct.unpack("!Q", self._read(8))[0]
        if opcode >= 0x8 and (length > 125 or not fin):
            self._fail(1002, "bad control frame")
        if length > MAX_MESSAGE:
            self._fail(1009, "frame too big")
        mask = self._read(4)
        data = self._read(length) if length else b""
        if data:
            # XOR with the 4-byte mask, done on integers (fast enough for megabytes).
            repeated = (mask * (length // 4 + 1))[:length]
            data = (int.from_bytes(data, "little") ^ int.from_bytes(repeated, "little")).to_bytes(length, "little")
        return fin, opcode, data
