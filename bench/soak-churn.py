#!/usr/bin/env python3
"""Connection churn for bench/soak.sh (standard library only).

THREADS client loops, each: open a WebSocket (or SSE stream), subscribe to
one of CHANNELS channels, read a few deliveries, then end the connection one
of four ways (close handshake, plain close, RST, or vanish mid-frame). One
publisher thread posts to /api/publish at RATE messages/s. Runs DURATION
seconds, then prints totals as one line: CHURN opened=… errors=… …
"""
import argparse, base64, http.client, json, os, random, socket, struct, sys, threading, time

p = argparse.ArgumentParser()
p.add_argument('--port', type=int, required=True)
p.add_argument('--api-key', default='soakkey')
p.add_argument('--duration', type=float, default=600)
p.add_argument('--threads', type=int, default=8)
p.add_argument('--channels', type=int, default=4)
p.add_argument('--rate', type=float, default=200)
a = p.parse_args()

stop = time.monotonic() + a.duration
lock = threading.Lock()
stats = dict(opened=0, sse=0, received=0, closed_clean=0, closed_plain=0, reset=0,
             midframe=0, errors=0, published=0, publish_errors=0)


def bump(k, n=1):
    with lock:
        stats[k] += n


def frame(opcode, payload):
    mask = os.urandom(4)
    n = len(payload)
    h = bytes([0x80 | opcode])
    h += bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + struct.pack('>H', n)
    return h + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def recv_exact(s, n, buf):
    while len(buf) < n:
        d = s.recv(65536)
        if not d:
            raise EOFError
        buf += d
    return buf


def read_frame(s, buf):
    buf = recv_exact(s, 2, buf)
    n = buf[1] & 0x7f
    h = 2
    if n == 126:
        buf = recv_exact(s, 4, buf); n = struct.unpack('>H', buf[2:4])[0]; h = 4
    elif n == 127:
        buf = recv_exact(s, 10, buf); n = struct.unpack('>Q', buf[2:10])[0]; h = 10
    buf = recv_exact(s, h + n, buf)
    return buf[0] & 0x0f, bytes(buf[h:h + n]), buf[h + n:]


def ws_client(rng):
    s = socket.create_connection(('127.0.0.1', a.port), timeout=5)
    try:
        key = base64.b64encode(os.urandom(16)).decode()
        s.sendall(('GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n'
                   'Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n' % key).encode())
        buf = bytearray()
        while b'\r\n\r\n' not in buf:
            buf = recv_exact(s, len(buf) + 1, buf)
        head, _, rest = bytes(buf).partition(b'\r\n\r\n')
        if not head.startswith(b'HTTP/1.1 101'):
            raise RuntimeError(head[:40])
        buf = bytearray(rest)
        bump('opened')
        ch = 'soak-%d' % rng.randrange(a.channels)
        s.sendall(frame(1, json.dumps({'type': 'subscribe', 'channel': ch}).encode()))
        want = rng.randrange(1, 6)
        got = 0
        while got < want:
            op, payload, buf = read_frame(s, buf)
            if op == 1 and b'"type":"message"' in payload:
                got += 1
            elif op == 8:
                return
        bump('received', got)
        how = rng.randrange(4)
        if how == 0:
            s.sendall(frame(8, struct.pack('>H', 1000)))
            s.settimeout(5)
            while True:
                op, _, buf = read_frame(s, buf)
                if op == 8:
                    break
            bump('closed_clean')
        elif how == 1:
            bump('closed_plain')
        elif how == 2:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
            bump('reset')
        else:
            s.sendall(frame(1, b'{"type":"ping"}' * 4)[:20])
            bump('midframe')
    finally:
        s.close()


def sse_client(rng):
    s = socket.create_connection(('127.0.0.1', a.port), timeout=5)
    try:
        ch = 'soak-%d' % rng.randrange(a.channels)
        s.sendall(('GET /events?channel=%s HTTP/1.1\r\nHost: x\r\n\r\n' % ch).encode())
        bump('sse')
        data = b''
        while data.count(b'event: message') < 2:
            d = s.recv(65536)
            if not d:
                return
            data += d
        bump('received', 2)
        if rng.randrange(2):
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
            bump('reset')
    finally:
        s.close()


def churn(seed):
    rng = random.Random(seed)
    while time.monotonic() < stop:
        try:
            (sse_client if rng.randrange(5) == 0 else ws_client)(rng)
        except Exception:
            bump('errors')
            time.sleep(0.05)


def publisher():
    n = 0
    t0 = time.monotonic()
    while time.monotonic() < stop + 2:
        n += 1
        ch = 'soak-%d' % (n % a.channels)
        body = json.dumps({'channel': ch, 'data': {'n': n, 'pad': 'x' * 100}})
        try:
            c = http.client.HTTPConnection('127.0.0.1', a.port, timeout=5)
            c.request('POST', '/api/publish', body, {'Authorization': 'Bearer ' + a.api_key,
                                                      'Content-Type': 'application/json'})
            r = c.getresponse(); r.read(); c.close()
            bump('published' if r.status == 200 else 'publish_errors')
        except Exception:
            bump('publish_errors')
        delay = t0 + n / a.rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)


threads = [threading.Thread(target=churn, args=(i,), daemon=True) for i in range(a.threads)]
threads.append(threading.Thread(target=publisher, daemon=True))
for t in threads:
    t.start()
for t in threads:
    t.join()
print('CHURN ' + ' '.join('%s=%d' % kv for kv in stats.items()), flush=True)
