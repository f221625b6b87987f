#!/usr/bin/env python3
"""Subscribe to a Herald channel and print every message received.

Uses only the Python standard library, so it runs on any python3:

    python3 subscribe.py news                       # WebSocket, ws://127.0.0.1:8080
    python3 subscribe.py --sse news                 # Server-Sent Events
    python3 subscribe.py --url http://host:8080 --token JWT --count 1 news

Each message's data is printed as one line of JSON. With --count N the
script exits after N messages. "subscribed to CHANNEL" goes to stderr once
the server has confirmed the subscription.

The WebSocket client below is deliberately tiny (RFC 6455, client side): one
text message at a time, no extensions, no fragmentation on send. A real
application would use a WebSocket library instead.
"""

import argparse
import base64
import hashlib
import http.client
import json
import os
import socket
import struct
import sys
import urllib.parse
import urllib.request

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # fixed by RFC 6455


class WebSocket:
    """A minimal RFC 6455 client: handshake, masked text frames out, frames in."""

    def __init__(self, url, token=None):
        parts = urllib.parse.urlsplit(url)
        if parts.scheme != "ws":
            raise ValueError("this small client speaks plain ws:// only")
        self.sock = socket.create_connection((parts.hostname, parts.port or 80), timeout=60)
        self.buffer = b""
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        # The handshake: a random key, and the server proves it read it by
        # answering base64(sha1(key + GUID)).
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [
            f"GET {path} HTTP/1.1",
            f"Host: {parts.hostname}:{parts.port or 80}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {key}",
            "Sec-WebSocket-Version: 13",
        ]
        if token:
            lines.append(f"Authorization: Bearer {token}")
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        head = self._read_until(b"\r\n\r\n").decode("iso-8859-1")
        status = head.split("\r\n", 1)[0]
        if " 101 " not in status + " ":
            raise ConnectionError(f"upgrade refused: {status}")
        expected = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
        headers = dict(
            (name.strip().lower(), value.strip())
            for name, _, value in (line.partition(":") for line in head.split("\r\n")[1:])
        )
        if headers.get("sec-websocket-accept") != expected:
            raise ConnectionError("bad Sec-WebSocket-Accept")

    def _read_until(self, marker):
        while marker not in self.buffer:
            self._fill()
        head, _, self.buffer = self.buffer.partition(marker)
        return head

    def _read_exactly(self, n):
        while len(self.buffer) < n:
            self._fill()
        data, self.buffer = self.buffer[:n], self.buffer[n:]
        return data

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("connection closed by the server")
        self.buffer += chunk

    def _send_frame(self, opcode, payload):
        # Client frames are always masked (RFC 6455 §5.3) and sent whole (FIN).
        header = bytes([0x80 | opcode])
        n = len(payload)
        if n < 126:
            header += bytes([0x80 | n])
        elif n < 65536:
            header += bytes([0x80 | 126]) + struct.pack("!H", n)
        else:
            header += bytes([0x80 | 127]) + struct.pack("!Q", n)
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(header + mask + masked)

    def send_json(self, obj):
        self._send_frame(0x1, json.dumps(obj).encode())

    def receive_json(self):
        """The next text message as a Python object; answers pings on the way."""
        message = b""
        while True:
            b0, b1 = self._read_exactly(2)
            fin, opcode, n = b0 & 0x80, b0 & 0x0F, b1 & 0x7F
            if n == 126:
                n = struct.unpack("!H", self._read_exactly(2))[0]
            elif n == 127:
                n = struct.unpack("!Q", self._read_exactly(8))[0]
            payload = self._read_exactly(n)  # server frames are not masked
            if opcode == 0x9:  # ping → pong with the same payload
                self._send_frame(0xA, payload)
            elif opcode == 0x8:  # close: echo the code and stop
                code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
                self._send_frame(0x8, payload[:2])
                raise ConnectionError(f"closed by the server with {code}")
            elif opcode in (0x0, 0x1):  # text frame or continuation
                message += payload
                if fin:
                    return json.loads(message)


def subscribe_websocket(base, channel, token, count):
    ws = WebSocket(base.replace("http", "ws", 1) + "/ws", token)
    ws.send_json({"type": "subscribe", "channel": channel})
    received = 0
    while count is None or received < count:
        frame = ws.receive_json()
        if frame.get("type") == "subscribed":
            print(f"subscribed to {frame['channel']}", file=sys.stderr, flush=True)
        elif frame.get("type") == "ping":  # Herald's application-level heartbeat
            ws.send_json({"type": "pong"})
        elif frame.get("type") == "message":
            print(json.dumps(frame["data"]), flush=True)
            received += 1
        elif frame.get("type") == "error":
            raise RuntimeError(f"{frame['code']}: {frame['message']}")


def subscribe_sse(base, channel, token, count):
    query = urllib.parse.urlencode({"channel": channel})
    request = urllib.request.Request(f"{base}/events?{query}",
                                     headers={"Accept": "text/event-stream"})
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    received = 0
    with urllib.request.urlopen(request, timeout=60) as stream:
        event, data = "message", []
        for raw in stream:  # the body is read line by line as it arrives
            line = raw.decode("utf-8").rstrip("\r\n")
            if line == "":  # a blank line ends an event
                if event == "connected":
                    print(f"subscribed to {channel}", file=sys.stderr, flush=True)
                elif event == "message" and data:
                    print(json.dumps(json.loads("\n".join(data))["data"]), flush=True)
                    received += 1
                    if count is not None and received >= count:
                        return
                event, data = "message", []
            elif line.startswith(":"):  # a comment, e.g. the ": ping" heartbeat
                continue
            else:
                field, _, value = line.partition(":")
                value = value[1:] if value.startswith(" ") else value
                if field == "event":
                    event = value
                elif field == "data":
                    data.append(value)
    raise ConnectionError("the server ended the event stream")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("channel")
    parser.add_argument("--url", default="http://127.0.0.1:8080", help="Herald's base URL")
    parser.add_argument("--sse", action="store_true", help="use Server-Sent Events")
    parser.add_argument("--token", help="a JWT, when Herald requires one")
    parser.add_argument("--count", type=int, help="exit after this many messages")
    args = parser.parse_args()
    subscribe = subscribe_sse if args.sse else subscribe_websocket
    try:
        subscribe(args.url.rstrip("/"), args.channel, args.token, args.count)
    except KeyboardInterrupt:
        pass
    except (OSError, http.client.HTTPException, RuntimeError, ValueError) as error:
        # The server closed the connection (e.g. 1001 when it shuts down),
        # refused it, or is not there: one line, not a traceback.
        print(f"subscribe.py: {error}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
