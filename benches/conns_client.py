#!/usr/bin/env python3
"""Connection benchmark client for scripts/bench-conns.sh (stdlib only: asyncio + ssl; run it with
$KGW_PYTHON or any Python >= 3.8).

Subcommands (diagnostics go to stderr; an error exits 1):

  storm     open --count mTLS connections to the gateway, --concurrency at a time, from source
            addresses --sources (bound round-robin, e.g. 127.0.0.2-127.0.0.11). Each connection is
            opened when its TCP connect, TLS handshake (client certificate) and one ApiVersions
            v3 round trip have completed; then it stays idle. Writes --out (JSON: open rate,
            handshake / open-time percentiles, CPU of the --cpu-pid processes and of itself during
            the storm, monotonic start/end) once every connection is open, then waits for
            --close-file to exist, closes them all, and appends the close timing to --out.
            Sockets are non-blocking ssl.SSLSockets driven by the event loop (no asyncio streams:
            their 256 KiB per-connection read buffer would cost the client GBs for 10,000).
  probe     the "established clients": --conns mTLS connections opened at start, then every
            --interval-ms one ApiVersions v3 (answered by the gateway) and one Metadata v4 for
            one topic (forwarded to the broker), each timed on its own connection. Blocking
            sockets in a process of their own, so the storm's event loop cannot delay them.
            Writes --ready-file once warmed up, stops when --stop-file exists, then writes --out
            (every sample: monotonic send time, kind, latency in µs).
  snapshot  append one JSON line to --out: the gateway's RSS, and from /proc/PID/smaps_rollup
            Pss / Private_Dirty / Anonymous (kB), its thread and fd counts, the
            kafka_gateway_connections_active gauge (--metrics-url), /proc/net/sockstat TCP.
  report    read the files above and print the Markdown report (stdout and --out).
"""

import argparse
import asyncio
import json
import os
import socket
import ssl
import struct
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402
from benchlib import (Failed, cpu_seconds, make_log, parse_pid, percentile,  # noqa: E402
                      proc_rss_kb, read_meta, self_cpu_seconds, write_report)

CLIENT_ID = b"kgw-conns"
log = make_log("[conns_client]")


# --------------------------------------------------------------------------------- Kafka frames

def _uvarint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _compact_str(s):
    return _uvarint(len(s) + 1) + s


def api_versions_v3(corr):
    # request header v2 (api_key, version, correlation, client_id, tagged fields), then the body:
    # client_software_name, client_software_version (compact strings), tagged fields
    body = (struct.pack(">hhih", 18, 3, corr, len(CLIENT_ID)) + CLIENT_ID + b"\x00"
            + _compact_str(b"kgw-conns") + _compact_str(b"1.0") + b"\x00")
    return struct.pack(">i", len(body)) + body


def metadata_v4(corr, topic):
    # request header v1, then topics [name], allow_auto_topic_creation
    t = topic.encode()
    body = (struct.pack(">hhih", 3, 4, corr, len(CLIENT_ID)) + CLIENT_ID
            + struct.pack(">ih", 1, len(t)) + t + b"\x01")
    return struct.pack(">i", len(body)) + body


def check_response(frame, corr, api_versions):
    """frame = the response without its length prefix (response header v0 for both APIs)."""
    got = struct.unpack_from(">i", frame, 0)[0]
    if got != corr:
        raise Failed("correlation id %d, expected %d" % (got, corr))
    if api_versions:
        err = struct.unpack_from(">h", frame, 4)[0]
        if err != 0:
            raise Failed("ApiVersions error code %d" % err)


# --------------------------------------------------------------------------------- helpers

def parse_sources(s):
    """'127.0.0.2-127.0.0.11' or 'a,b,c'."""
    if "-" in s and "," not in s:
        lo, hi = s.split("-")
        a, b = (struct.unpack(">I", socket.inet_aton(x))[0] for x in (lo, hi))
        if b < a:
            raise argparse.ArgumentTypeError("empty source range %r" % s)
        return [socket.inet_ntoa(struct.pack(">I", i)) for i in range(a, b + 1)]
    return [x for x in s.split(",") if x]


def pcts(vals):
    s = sorted(vals)
    return {"n": len(s), "p50": percentile(s, 50), "p90": percentile(s, 90),
            "p99": percentile(s, 99), "max": s[-1] if s else None}


def tls_context(args):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(args.ca)
    ctx.load_cert_chain(args.cert, args.key)
    ctx.check_hostname = True
    return ctx


def write_json_atomic(path, obj):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f)
    os.replace(tmp, path)


# --------------------------------------------------------------------------------- storm

async def _wait_fd(loop, fd, write):
    fut = loop.create_future()

    def ready():
        if not fut.done():
            fut.set_result(None)

    (loop.add_writer if write else loop.add_reader)(fd, ready)
    try:
        await fut
    finally:
        (loop.remove_writer if write else loop.remove_reader)(fd)


async def _ssl_op(loop, ss, fn, *a):
    while True:
        try:
            return fn(*a)
        except ssl.SSLWantReadError:
            await _wait_fd(loop, ss.fileno(), False)
        except ssl.SSLWantWriteError:
            await _wait_fd(loop, ss.fileno(), True)


async def _roundtrip(loop, ss, frame, corr, api_versions):
    view = memoryview(frame)
    while view:
        n = await _ssl_op(loop, ss, ss.send, view)
        view = view[n:]
    buf = bytearray()
    while True:
        if len(buf) >= 4:
            size = struct.unpack_from(">i", buf, 0)[0]
            if len(buf) >= 4 + size:
                check_response(bytes(buf[4:4 + size]), corr, api_versions)
                return
        chunk = await _ssl_op(loop, ss, ss.recv, 65536)
        if not chunk:
            raise Failed("connection closed by the gateway before the response")
        buf += chunk


async def _pipelined(loop, ss, k):
    """k ApiVersions requests in one write, then their k responses: what a client that was busy
    once leaves behind in the gateway's per-connection buffers and queues."""
    frame = b"".join(api_versions_v3(100 + i) for i in range(k))
    view = memoryview(frame)
    while view:
        n = await _ssl_op(loop, ss, ss.send, view)
        view = view[n:]
    buf = bytearray()
    got = 0
    while got < k:
        if len(buf) >= 4:
            size = struct.unpack_from(">i", buf, 0)[0]
            if len(buf) >= 4 + size:
                check_response(bytes(buf[4:4 + size]), 100 + got, True)
                del buf[:4 + size]
                got += 1
                continue
        chunk = await _ssl_op(loop, ss, ss.recv, 65536)
        if not chunk:
            raise Failed("connection closed by the gateway before the response")
        buf += chunk


async def open_one(loop, ctx, host, port, src, pipeline=0):
    t0 = time.monotonic()
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.setblocking(False)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.bind((src, 0))
        await loop.sock_connect(s, (host, port))
        ss = ctx.wrap_socket(s, server_hostname="localhost", do_handshake_on_connect=False)
    except BaseException:
        s.close()
        raise
    try:
        await _ssl_op(loop, ss, ss.do_handshake)
        t_tls = time.monotonic()
        await _roundtrip(loop, ss, api_versions_v3(1), 1, True)
        if pipeline:
            await _pipelined(loop, ss, pipeline)
    except BaseException:
        ss.close()
        raise
    t_open = time.monotonic()
    return ss, (t_tls - t0) * 1e6, (t_open - t0) * 1e6


async def storm_main(args):
    loop = asyncio.get_running_loop()
    ctx = tls_context(args)
    sources = parse_sources(args.sources)
    sem = asyncio.Semaphore(args.concurrency)
    conns, tls_us, open_us, errors = [], [], [], []

    async def one(i):
        async with sem:
            try:
                ss, th, to = await open_one(loop, ctx, args.host, args.port,
                                             sources[i % len(sources)], args.pipeline)
            except (OSError, ssl.SSLError, Failed) as e:
                errors.append("%s: %s" % (type(e).__name__, e))
                return
            conns.append(ss)
            tls_us.append(th)
            open_us.append(to)
            if len(conns) % max(1, args.count // 10) == 0:
                log("storm: %d/%d open" % (len(conns), args.count))

    cpu0 = cpu_seconds(args.cpu_pid)
    self0 = self_cpu_seconds()
    t0 = time.monotonic()
    await asyncio.gather(*(one(i) for i in range(args.count)))
    t1 = time.monotonic()
    self1 = self_cpu_seconds()
    cpu1 = cpu_seconds(args.cpu_pid)
    elapsed = t1 - t0
    result = {
        "count": args.count, "concurrency": args.concurrency, "sources": sources,
        "pipeline": args.pipeline,
        "opened": len(conns), "errors": len(errors), "error_samples": errors[:5],
        "t_start": t0, "t_end": t1, "elapsed_s": elapsed,
        "rate_per_s": len(conns) / elapsed if elapsed > 0 else None,
        "tls_us": pcts(tls_us), "open_us": pcts(open_us),
        "cpu_s": {name: cpu1[name] - cpu0[name] for name in cpu0},
        "client_cpu_s": self1 - self0, "client_rss_kb": proc_rss_kb(),
    }
    log("storm: %d open, %d errors in %.2fs (%.0f/s)" % (len(conns), len(errors), elapsed,
                                                         result["rate_per_s"] or 0))
    for e in errors[:5]:
        log("  error: %s" % e)
    write_json_atomic(args.out, result)
    # hold every connection idle until told to close them
    deadline = time.monotonic() + args.hold_max_s
    while not os.path.exists(args.close_file):
        if time.monotonic() > deadline:
            raise Failed("%s did not appear within %ss" % (args.close_file, args.hold_max_s))
        await asyncio.sleep(0.1)
    # did the gateway drop idle connections meanwhile? A closed one is readable and reads EOF.
    import select
    poller = select.poll()
    by_fd = {}
    for ss in conns:
        poller.register(ss.fileno(), select.POLLIN)
        by_fd[ss.fileno()] = ss
    dropped = 0
    for fd, _ev in poller.poll(0):
        try:
            if by_fd[fd].recv(1) == b"":
                dropped += 1
        except ssl.SSLWantReadError:
            pass
        except (OSError, ssl.SSLError):
            dropped += 1
    tc = time.monotonic()
    for ss in conns:
        try:
            ss.close()
        except OSError:
            pass
    result["close_s"] = time.monotonic() - tc
    result["dropped_while_held"] = dropped
    write_json_atomic(args.out, result)
    return 0 if not errors else 1


def cmd_storm(args):
    try:
        return asyncio.run(storm_main(args))
    except Failed as e:
        log("storm failed:", e)
        return 1


# --------------------------------------------------------------------------------- probe

class ProbeConn:
    def __init__(self, ctx, host, port, src):
        s = socket.create_connection((host, port), timeout=30, source_address=(src, 0))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.s = ctx.wrap_socket(s, server_hostname="localhost")
        self.corr = 0
        self.buf = bytearray()

    def call(self, make, api_versions, *a):
        self.corr += 1
        corr = self.corr
        frame = make(corr, *a)
        t0 = time.monotonic()
        self.s.sendall(frame)
        while True:
            if len(self.buf) >= 4:
                size = struct.unpack_from(">i", self.buf, 0)[0]
                if len(self.buf) >= 4 + size:
                    resp = bytes(self.buf[4:4 + size])
                    del self.buf[:4 + size]
                    break
            chunk = self.s.recv(65536)
            if not chunk:
                raise Failed("probe connection closed by the gateway")
            self.buf += chunk
        t1 = time.monotonic()
        check_response(resp, corr, api_versions)
        return t0, (t1 - t0) * 1e6


def cmd_probe(args):
    ctx = tls_context(args)
    try:
        av = ProbeConn(ctx, args.host, args.port, args.source)
        md = ProbeConn(ctx, args.host, args.port, args.source)
    except (OSError, ssl.SSLError) as e:
        log("probe: connect failed:", e)
        return 1
    samples = []  # [t_send, kind, us]
    interval = args.interval_ms / 1000.0
    t_warm = time.monotonic() + args.warmup_s
    ready = False
    nxt = time.monotonic()
    try:
        while True:
            now = time.monotonic()
            if not ready and now >= t_warm:
                samples.clear()
                with open(args.ready_file, "w") as f:
                    f.write("ready\n")
                ready = True
            if ready and os.path.exists(args.stop_file):
                break
            t, us = av.call(api_versions_v3, True)
            samples.append((t, "ApiVersions", us))
            t, us = md.call(metadata_v4, False, args.topic)
            samples.append((t, "Metadata", us))
            nxt += interval
            delay = nxt - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            else:
                nxt = time.monotonic()
    except (OSError, ssl.SSLError, Failed) as e:
        log("probe failed:", e)
        return 1
    write_json_atomic(args.out, {"interval_ms": args.interval_ms, "topic": args.topic,
                                 "samples": samples})
    return 0


# --------------------------------------------------------------------------------- snapshot

def read_kv(path):
    out = {}
    try:
        with open(path) as f:
            for line in f:
                k, _, v = line.partition(":")
                parts = v.split()
                if parts and parts[0].isdigit():
                    out[k.strip()] = int(parts[0])
    except OSError:
        pass
    return out


def connections_active(url):
    total = 0.0
    seen = False
    with urllib.request.urlopen(url, timeout=10) as r:
        for line in r.read().decode().splitlines():
            if line.startswith("kafka_gateway_connections_active"):
                total += float(line.rsplit(" ", 1)[1])
                seen = True
    return int(total) if seen else None


def cmd_snapshot(args):
    pid = args.pid
    status = read_kv("/proc/%d/status" % pid)
    rollup = read_kv("/proc/%d/smaps_rollup" % pid)
    sockstat = {}
    with open("/proc/net/sockstat") as f:
        for line in f:
            if line.startswith("TCP:"):
                p = line.split()[1:]
                sockstat = {p[i]: int(p[i + 1]) for i in range(0, len(p) - 1, 2)}
    snap = {
        "label": args.label, "t": time.monotonic(),
        "rss_kb": status.get("VmRSS"), "hwm_kb": status.get("VmHWM"),
        "threads": status.get("Threads"),
        "pss_kb": rollup.get("Pss"), "private_dirty_kb": rollup.get("Private_Dirty"),
        "anonymous_kb": rollup.get("Anonymous"),
        "fds": len(os.listdir("/proc/%d/fd" % pid)),
        "connections_active": connections_active(args.metrics_url) if args.metrics_url else None,
        "tcp_sockstat": sockstat,
    }
    with open(args.out, "a") as f:
        f.write(json.dumps(snap) + "\n")
    log("snapshot %s: RSS %s kB, Pss %s kB, connections_active %s, fds %s" % (
        args.label, snap["rss_kb"], snap["pss_kb"], snap["connections_active"], snap["fds"]))
    return 0


# --------------------------------------------------------------------------------- report

def fmt(v, nd=1):
    return benchlib.fmt(v, nd, grouping=True)


def met(ok):
    return benchlib.met(ok, yes="met")


def cmd_report(args):
    meta = read_meta(args.meta, ints=("probe_conns", "connection_rate"), floats=("baseline_s", "t_close"),
                     bools=("heaptrack",))
    storm = json.load(open(args.storm))
    probe = json.load(open(args.probe))
    snaps = {}
    for line in open(args.snapshots):
        s = json.loads(line)
        snaps[s["label"]] = s
    before, held, closed = snaps["before"], snaps["held"], snaps["closed"]
    n = storm["opened"]
    page_kb = 4

    def per_conn(key):
        if before.get(key) is None or held.get(key) is None or not n:
            return None
        return (held[key] - before[key]) / n

    rss_pc, pss_pc, pd_pc = per_conn("rss_kb"), per_conn("pss_kb"), per_conn("private_dirty_kb")
    sock_pages = None
    if before["tcp_sockstat"].get("mem") is not None and held["tcp_sockstat"].get("mem") is not None:
        sock_pages = held["tcp_sockstat"]["mem"] - before["tcp_sockstat"]["mem"]

    # probe windows (monotonic clock shared by the processes)
    base_s = meta["baseline_s"]
    t0, t1, t_close = storm["t_start"], storm["t_end"], meta["t_close"]
    windows = {
        "quiet (before)": lambda t: t0 - base_s <= t < t0,
        "during storm": lambda t: t0 <= t < t1,
        "%d idle conns held" % n: lambda t: t1 <= t < t_close,
    }
    lat = {}
    for kind in ("ApiVersions", "Metadata"):
        for w, f in windows.items():
            lat[(kind, w)] = pcts([us for (t, k, us) in probe["samples"] if k == kind and f(t)])

    def ratio(kind, p):
        a = lat[(kind, "quiet (before)")][p]
        b = lat[(kind, "during storm")][p]
        return b / a if a and b is not None else None

    ratios = {(k, p): ratio(k, p) for k in ("ApiVersions", "Metadata") for p in ("p50", "p99")}
    worst = [r for r in ratios.values() if r is not None]
    worst_ratio = max(worst) if worst else None

    L = []
    L.append("# Idle TLS connections: memory, open rate, latency under a connection storm")
    L.append("")
    L.append("%s, `%s` (%s), %s cores (%s), %s GiB RAM, kernel %s, loadavg %s." % (
        meta["date"], meta["gateway_version"], meta["git_commit"], meta["nproc"],
        meta["cpu_model"], meta["mem_gib"], meta["kernel"], meta["loadavg"]))
    L.append("Generated by `scripts/bench-conns.sh` (client `benches/conns_client.py`); "
             "N = %d connections from %d source addresses (%s .. %s), %d in flight, "
             "storm client at nice %s." % (
                 storm["count"], len(storm["sources"]), storm["sources"][0], storm["sources"][-1],
                 storm["concurrency"], meta["storm_nice"]))
    rate = meta.get("connection_rate") or 0
    L.append("")
    L.append("Gateway `limits.max_connection_rate`: %s." % (
        "%d new connections per second (KGW_CONNS_RATE): above it accepting waits" % rate
        if rate else "0, no limit (the default; KGW_CONNS_RATE sets it)"))
    if meta.get("heaptrack"):
        L.append("")
        L.append("**The gateway ran under heaptrack (KGW_CONNS_HEAPTRACK=1): CPU and latency are not representative.**")
    L.append("")
    L.append("## Targets")
    L.append("")
    L.append("| target | measured | |")
    L.append("|---|---|---|")
    L.append("| gateway memory per idle TLS connection <= 30 KB (RSS delta / N) | %s KB | %s |" % (
        fmt(rss_pc), met(rss_pc is not None and rss_pc <= 30)))
    L.append("| %s idle TLS connections held (gateway gauge) | %s | %s |" % (
        "{:,}".format(storm["count"]), held["connections_active"],
        met(held["connections_active"] is not None
            and held["connections_active"] >= storm["count"] and storm["errors"] == 0)))
    L.append("| open rate reported | %s conn/s | |" % fmt(storm["rate_per_s"], 0))
    L.append("| established clients' latency during the storm <= 2x quiet (worst of p50/p99, both probes; %s) | %sx | %s |" % (
        "max_connection_rate %d/s" % rate if rate else "no connection rate limit",
        fmt(worst_ratio, 2), met(worst_ratio is not None and worst_ratio <= 2)))
    L.append("")
    L.append("## 1. Gateway memory")
    L.append("")
    L.append("Each connection: TCP connect, TLS 1.3 handshake with a client certificate (mTLS listener, "
             "`client_auth = \"required\"`, principal from the certificate, no SASL), one ApiVersions v3 "
             "answered%s, then idle. Snapshots of the gateway process (`/proc/PID/status`, "
             "`/proc/PID/smaps_rollup`); `connections_active` is the sum of the "
             "`kafka_gateway_connections_active` gauge on the admin port at that moment (it includes the "
             "probe's %d connections)." % (
                 " (then %d more, pipelined in one write)" % storm["pipeline"] if storm.get("pipeline") else "",
                 meta["probe_conns"]))
    L.append("")
    L.append("| snapshot | connections_active | RSS MB | Pss MB | Private_Dirty MB | Anonymous MB | fds | threads |")
    L.append("|---|---:|---:|---:|---:|---:|---:|---:|")
    for label, title in (("before", "before the storm"), ("held", "N connections open, idle %ss" % meta["settle_s"]),
                         ("closed", "after closing them all (%ss)" % meta["closed_wait_s"])):
        s = snaps[label]
        L.append("| %s | %s | %s | %s | %s | %s | %s | %s |" % (
            title, s["connections_active"], fmt(s["rss_kb"] / 1024), fmt((s["pss_kb"] or 0) / 1024),
            fmt((s["private_dirty_kb"] or 0) / 1024), fmt((s["anonymous_kb"] or 0) / 1024),
            s["fds"], s["threads"]))
    L.append("")
    L.append("| per connection | KB |")
    L.append("|---|---:|")
    L.append("| RSS delta / N | **%s** |" % fmt(rss_pc, 2))
    L.append("| Pss delta / N | %s |" % fmt(pss_pc, 2))
    L.append("| Private_Dirty delta / N | %s |" % fmt(pd_pc, 2))
    L.append("| peak RSS (VmHWM) while held - RSS before, / N | %s |" % fmt(
        (held["hwm_kb"] - before["rss_kb"]) / n if n else None, 2))
    if sock_pages is not None and n:
        L.append("| kernel TCP buffer memory (`/proc/net/sockstat` mem, both ends on loopback) / N | %s |" % fmt(
            sock_pages * page_kb / n, 2))
    L.append("| RSS not returned after closing: (RSS closed - RSS before) / N | %s |" % fmt(
        (closed["rss_kb"] - before["rss_kb"]) / n if n else None, 2))
    if "held2" in snaps and n:
        h2 = snaps["held2"]
        L.append("| second storm of N after closing, held: (RSS - RSS first held) / N | %s |" % fmt(
            (h2["rss_kb"] - held["rss_kb"]) / n, 2))
    L.append("")
    if "held2" in snaps:
        h2 = snaps["held2"]
        grew = (h2["rss_kb"] - held["rss_kb"]) / n if n else 0
        verdict = ("what the allocator kept after the close is reused by the next connections, not leaked"
                   if rss_pc and grew < 0.1 * rss_pc else
                   "the gateway grew again: memory kept after closing is NOT (all) reused")
        L.append("The second storm (the same N again, after all were closed) held %s connections at "
                 "RSS %s MB (first time: %s MB): %s." % (h2["connections_active"], fmt(h2["rss_kb"] / 1024),
                                                         fmt(held["rss_kb"] / 1024), verdict))
        L.append("")
    L.append("## 2. Open rate")
    L.append("")
    L.append("| opened | errors | elapsed s | conn/s | TCP+TLS p50 ms | p99 ms | TCP+TLS+ApiVersions p50 ms | p99 ms | max ms |")
    L.append("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    L.append("| %s | %s | %s | **%s** | %s | %s | %s | %s | %s |" % (
        "{:,}".format(n), storm["errors"], fmt(storm["elapsed_s"], 2), fmt(storm["rate_per_s"], 0),
        fmt(storm["tls_us"]["p50"] / 1e3, 2), fmt(storm["tls_us"]["p99"] / 1e3, 2),
        fmt(storm["open_us"]["p50"] / 1e3, 2), fmt(storm["open_us"]["p99"] / 1e3, 2),
        fmt(storm["open_us"]["max"] / 1e3, 2)))
    if storm["errors"]:
        L.append("")
        L.append("Errors (first 5): %s" % "; ".join("`%s`" % e for e in storm["error_samples"]))
    L.append("")
    L.append("Times are per connection from `connect()` and include queueing in the gateway's accept "
             "backlog and its event loop with %d in flight. CPU during the storm (utime+stime): "
             "%s; storm client %s s (one Python thread: its TLS handshakes are on the same 2 cores). "
             "Client RSS with N open: %s MB." % (
                 storm["concurrency"],
                 ", ".join("%s %s s" % (k, fmt(v, 2)) for k, v in storm["cpu_s"].items()),
                 fmt(storm["client_cpu_s"], 2), fmt((storm["client_rss_kb"] or 0) / 1024, 0)))
    if storm["elapsed_s"]:
        L.append("Gateway CPU per opened connection: %s ms." % fmt(
            storm["cpu_s"].get("gateway", 0) * 1e3 / max(n, 1), 3))
    L.append("")
    L.append("## 3. Established clients' latency during the storm")
    L.append("")
    L.append("A separate process holds %d already-open mTLS connections and, every %s ms, sends one "
             "ApiVersions v3 (answered by the gateway) on one and one Metadata v4 for topic `%s` "
             "(authorized, forwarded to tansu) on the other, timing each round trip. Windows: the "
             "%ss before the storm, the storm, and the time the N idle connections were held after it." % (
                 meta["probe_conns"], probe["interval_ms"], probe["topic"], base_s))
    L.append("")
    L.append("| request | window | samples | p50 µs | p90 µs | p99 µs | max µs |")
    L.append("|---|---|---:|---:|---:|---:|---:|")
    for kind in ("ApiVersions", "Metadata"):
        for w in windows:
            p = lat[(kind, w)]
            L.append("| %s | %s | %s | %s | %s | %s | %s |" % (
                kind, w, p["n"], fmt(p["p50"], 0), fmt(p["p90"], 0), fmt(p["p99"], 0), fmt(p["max"], 0)))
    L.append("")
    L.append("| request | p50 during / quiet | p99 during / quiet |")
    L.append("|---|---:|---:|")
    for kind in ("ApiVersions", "Metadata"):
        L.append("| %s | %sx | %sx |" % (kind, fmt(ratios[(kind, "p50")], 2), fmt(ratios[(kind, "p99")], 2)))
    L.append("")
    L.append("All processes share %s cores: during the storm the gateway, the storm client and the probe "
             "compete for them (CPU seconds above), so the ratio is an upper bound for what clients of a "
             "gateway with the storm coming from other machines would see." % meta["nproc"])
    L.append("")
    write_report("\n".join(L), args.out, stdout_end="\n")
    return 0


# --------------------------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)

    def tls(sp):
        sp.add_argument("--host", default="127.0.0.1")
        sp.add_argument("--port", type=int, required=True)
        sp.add_argument("--ca", required=True)
        sp.add_argument("--cert", required=True)
        sp.add_argument("--key", required=True)

    s = sub.add_parser("storm")
    tls(s)
    s.add_argument("--count", type=int, default=10000)
    s.add_argument("--concurrency", type=int, default=200)
    s.add_argument("--sources", default="127.0.0.2-127.0.0.11")
    s.add_argument("--cpu-pid", type=parse_pid, action="append", default=[])
    s.add_argument("--out", required=True)
    s.add_argument("--close-file", required=True)
    s.add_argument("--hold-max-s", type=float, default=600)
    s.add_argument("--pipeline", type=int, default=0,
                   help="after the first ApiVersions, K more pipelined in one write (0 = none)")

    p = sub.add_parser("probe")
    tls(p)
    p.add_argument("--source", default="127.0.0.1")
    p.add_argument("--topic", default="conns-probe")
    p.add_argument("--interval-ms", type=float, default=5)
    p.add_argument("--warmup-s", type=float, default=2)
    p.add_argument("--ready-file", required=True)
    p.add_argument("--stop-file", required=True)
    p.add_argument("--out", required=True)

    sn = sub.add_parser("snapshot")
    sn.add_argument("--pid", type=int, required=True)
    sn.add_argument("--label", required=True)
    sn.add_argument("--metrics-url")
    sn.add_argument("--out", required=True)

    r = sub.add_parser("report")
    r.add_argument("--meta", required=True)
    r.add_argument("--storm", required=True)
    r.add_argument("--probe", required=True)
    r.add_argument("--snapshots", required=True)
    r.add_argument("--out")

    args = ap.parse_args()
    return {"storm": cmd_storm, "probe": cmd_probe, "snapshot": cmd_snapshot,
            "report": cmd_report}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
