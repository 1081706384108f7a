#!/usr/bin/env python3
"""A capturing TCP proxy for Kafka connections: records the frames real clients and brokers
exchange, as seeds for the fuzz targets (stdlib only).

    capture_frames.py --out DIR --leg NAME --map LISTEN=TARGET [--map LISTEN=TARGET ...]

Each --map is HOST:PORT=HOST:PORT: connections accepted on LISTEN are relayed to TARGET byte for
byte, unchanged and unbuffered. On the side, every length-prefixed request the client sends and
the response with the same correlation id are written (length prefix removed) as

    DIR/frames/<leg>-c<conn>-<seq>-<api key>-<api version>.req   and   .resp (same stem)

and the first bytes of each client-to-server stream as DIR/streams/<leg>-c<conn>.c2s.
`fuzz/src/bin/make_seeds/capture.rs` turns them into seeds for each target's input format.

To keep the corpus small, at most --per-api requests are kept per (API, version) and leg (the SASL
APIs always), frames over --max-frame bytes are dropped, and --streams streams of at most
--stream-bytes bytes are kept per leg. Stops on SIGTERM / SIGINT.

scripts/fuzz.sh --capture runs two of these: `client` between the clients and the gateway (every
gateway port), `upstream` between the gateway and the broker.
"""

import argparse
import asyncio
import os
import signal
import struct
import sys

SASL_APIS = {17, 36}  # SaslHandshake, SaslAuthenticate
MAX_PLAUSIBLE_FRAME = 100 * 1024 * 1024


class Recorder:
    def __init__(self, out, leg, per_api, max_frame, streams, stream_bytes):
        self.frames = os.path.join(out, "frames")
        self.streams = os.path.join(out, "streams")
        os.makedirs(self.frames, exist_ok=True)
        os.makedirs(self.streams, exist_ok=True)
        self.leg = leg
        self.per_api = per_api
        self.max_frame = max_frame
        self.streams_left = streams
        self.stream_bytes = stream_bytes
        self.kept = {}  # (api, version) -> requests kept
        self.next_conn = 0
        self.written = 0

    def conn_id(self):
        self.next_conn += 1
        return self.next_conn

    def keep(self, api, version, size):
        if size > self.max_frame:
            return False
        if api in SASL_APIS:
            return True
        n = self.kept.get((api, version), 0)
        if n >= self.per_api:
            return False
        self.kept[(api, version)] = n + 1
        return True

    def write(self, name, data):
        with open(name, "wb") as f:
            f.write(data)
        self.written += 1


def frames(buf):
    """Splits whole frames off the front of `buf` (a bytearray); None once the stream is not
    Kafka framing any more."""
    out = []
    while len(buf) >= 4:
        (n,) = struct.unpack_from(">i", buf, 0)
        if n < 0 or n > MAX_PLAUSIBLE_FRAME:
            return None
        if len(buf) < 4 + n:
            break
        out.append(bytes(buf[4 : 4 + n]))
        del buf[: 4 + n]
    return out


class Connection:
    def __init__(self, rec):
        self.rec = rec
        self.conn = rec.conn_id()
        self.seq = 0
        self.pending = {}  # correlation id -> stem to write the response under (or None)
        self.c2s = bytearray()
        self.s2c = bytearray()
        self.framed = True
        self.stream = bytearray() if rec.streams_left > 0 else None
        if self.stream is not None:
            rec.streams_left -= 1

    def from_client(self, data):
        if self.stream is not None and len(self.stream) < self.rec.stream_bytes:
            self.stream += data[: self.rec.stream_bytes - len(self.stream)]
        if not self.framed:
            return
        self.c2s += data
        got = frames(self.c2s)
        if got is None:
            self.framed = False
            return
        for payload in got:
            if len(payload) < 8:
                continue
            api, version, corr = struct.unpack_from(">hhi", payload, 0)
            self.seq += 1
            stem = None
            if self.rec.keep(api, version, len(payload)):
                stem = os.path.join(
                    self.rec.frames,
                    "%s-c%d-%d-%d-%d" % (self.rec.leg, self.conn, self.seq, api, version),
                )
                self.rec.write(stem + ".req", payload)
            self.pending[corr] = stem

    def from_server(self, data):
        if not self.framed:
            return
        self.s2c += data
        got = frames(self.s2c)
        if got is None:
            self.framed = False
            return
        for payload in got:
            if len(payload) < 4:
                continue
            (corr,) = struct.unpack_from(">i", payload, 0)
            stem = self.pending.pop(corr, None)
            if stem is not None and len(payload) <= self.rec.max_frame:
                self.rec.write(stem + ".resp", payload)

    def close(self):
        if self.stream:
            name = os.path.join(self.rec.streams, "%s-c%d.c2s" % (self.rec.leg, self.conn))
            self.rec.write(name, bytes(self.stream))


async def pump(reader, writer, observe):
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            try:
                observe(data)
            except Exception as e:  # recording must never break the relay
                print("capture_frames: recording error: %r" % e, file=sys.stderr)
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        try:
            if writer.can_write_eof():
                writer.write_eof()
        except (OSError, RuntimeError):
            pass


async def relay(rec, target, client_reader, client_writer):
    host, port = target
    try:
        server_reader, server_writer = await asyncio.open_connection(host, port)
    except OSError as e:
        print("capture_frames: cannot reach %s:%d: %s" % (host, port, e), file=sys.stderr)
        client_writer.close()
        return
    conn = Connection(rec)
    await asyncio.gather(
        pump(client_reader, server_writer, conn.from_client),
        pump(server_reader, client_writer, conn.from_server),
    )
    conn.close()
    for w in (client_writer, server_writer):
        w.close()


def addr(s):
    host, _, port = s.rpartition(":")
    return host, int(port)


async def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="capture directory")
    p.add_argument("--leg", required=True, help="name in the file names (client, upstream)")
    p.add_argument("--map", action="append", required=True, metavar="LISTEN=TARGET")
    p.add_argument("--per-api", type=int, default=8, help="requests kept per (API, version)")
    p.add_argument("--max-frame", type=int, default=64 * 1024, help="largest frame kept (bytes)")
    p.add_argument("--streams", type=int, default=16, help="client streams kept")
    p.add_argument("--stream-bytes", type=int, default=8 * 1024, help="bytes kept per stream")
    args = p.parse_args()
    rec = Recorder(args.out, args.leg, args.per_api, args.max_frame, args.streams, args.stream_bytes)

    servers = []
    for m in args.map:
        listen, _, target = m.partition("=")
        lhost, lport = addr(listen)
        target = addr(target)
        handler = lambda r, w, t=target: relay(rec, t, r, w)  # noqa: E731
        servers.append(await asyncio.start_server(handler, lhost, lport, reuse_address=True))
    print("capture_frames: %s: relaying %d address(es)" % (args.leg, len(servers)), flush=True)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    for s in servers:
        s.close()
    print("capture_frames: %s: %d files written" % (args.leg, rec.written), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
