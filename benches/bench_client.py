#!/usr/bin/env python3
"""Benchmark client for scripts/bench.sh (run it with $KGW_PYTHON, the venv made
by scripts/install-deps.sh, which has confluent-kafka with its bundled librdkafka).

Subcommands (each measuring one prints ONE JSON object on stdout; diagnostics go
to stderr; any client error, undelivered record or count mismatch exits 1):

  throughput  create a fresh 1-partition topic, produce --mb MB of --record-size
              records (acks=1, linger, 1 MiB batches, no compression), then consume
              them all back (assign from the beginning, no consumer group), verifying
              count, offsets and content. Reports MB/s per phase and, per phase, the
              CPU time (utime+stime from /proc/PID/stat) of every --cpu-pid process
              and the gateway's forwarded bytes (--metrics-url).
  latency     fresh topic; --warmup then --count single-record acks=1 produces, one
              at a time (produce + flush); reports p50/p90/p99 and all samples (µs).
  report      read the JSON lines written by bench.sh and print the Markdown report.

Sizes: 1 MB = 1e6 bytes, 1 GB = 1e9 bytes.
"""

import argparse
import json
import os
import statistics
import sys
import time
import urllib.request
import uuid

CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(*a):
    print("[bench_client]", *a, file=sys.stderr, flush=True)


class Failed(Exception):
    pass


# --------------------------------------------------------------------------
# measurement helpers
# --------------------------------------------------------------------------

def proc_cpu_seconds(pid):
    """utime + stime of a whole process (all threads), in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        data = f.read()
    # the command name (field 2) may contain spaces: split after its closing ')'
    fields = data[data.rindex(")") + 2:].split()
    # fields[0] is field 3 (state); utime, stime are fields 14, 15
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def proc_rss_mb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return None


def self_cpu_seconds():
    t = os.times()
    return t.user + t.system


def gateway_bytes(url):
    """Sum of kafka_gateway_request_bytes_total + response_bytes_total over api labels."""
    if not url:
        return None
    with urllib.request.urlopen(url, timeout=5) as r:
        text = r.read().decode()
    req = resp = 0.0
    for line in text.splitlines():
        if line.startswith("kafka_gateway_request_bytes_total"):
            req += float(line.rsplit(None, 1)[1])
        elif line.startswith("kafka_gateway_response_bytes_total"):
            resp += float(line.rsplit(None, 1)[1])
    return {"request": req, "response": resp}


class Snapshot:
    def __init__(self, args):
        self.args = args
        self.t = time.perf_counter()
        self.cpu = {name: proc_cpu_seconds(pid) for name, pid in args.cpu_pids}
        self.self_cpu = self_cpu_seconds()
        self.bytes = gateway_bytes(args.metrics_url)

    def delta(self, start):
        d = {
            "seconds": self.t - start.t,
            "cpu": {k: round(self.cpu[k] - start.cpu[k], 3) for k in self.cpu},
            "client_cpu": round(self.self_cpu - start.self_cpu, 3),
        }
        if self.bytes is not None:
            d["gw_request_bytes"] = self.bytes["request"] - start.bytes["request"]
            d["gw_response_bytes"] = self.bytes["response"] - start.bytes["response"]
        return d


def parse_target(s):
    name, _, bootstrap = s.partition("=")
    if not name or not bootstrap:
        raise argparse.ArgumentTypeError("--target expects NAME=HOST:PORT, got %r" % s)
    return name, bootstrap


def parse_pid(s):
    name, _, pid = s.partition("=")
    if not pid.isdigit():
        raise argparse.ArgumentTypeError("--cpu-pid expects NAME=PID, got %r" % s)
    return name, int(pid)


# --------------------------------------------------------------------------
# clients
# --------------------------------------------------------------------------

def import_kafka():
    global Consumer, KafkaError, KafkaException, Producer, TopicPartition, AdminClient, NewTopic
    global OFFSET_BEGINNING, ck_version, ck_libversion
    try:
        from confluent_kafka import (OFFSET_BEGINNING, Consumer, KafkaError, KafkaException,
                                     Producer, TopicPartition)
        from confluent_kafka import libversion as ck_libversion
        from confluent_kafka import version as ck_version
        from confluent_kafka.admin import AdminClient, NewTopic
    except ImportError as e:
        raise SystemExit("confluent-kafka not importable (run with $KGW_PYTHON): %s" % e)


CLIENT_ERRORS = []


def base_conf(args, kind):
    def on_error(err):
        # transient connection errors are retried by librdkafka; fatal ones end the run
        log("client error (%s, %s): %s" % (kind, args.path, err))
        if err.fatal():
            CLIENT_ERRORS.append(str(err))

    conf = {
        "bootstrap.servers": args.bootstrap,
        "client.id": "kgw-bench-%s-%s" % (kind, args.path),
        "error_cb": on_error,
        "socket.nagle.disable": True,
    }
    if args.tls_ca:
        conf["security.protocol"] = "SSL"
        conf["ssl.ca.location"] = args.tls_ca
    return conf


def check_client_errors():
    if CLIENT_ERRORS:
        raise Failed("fatal client error: %s" % CLIENT_ERRORS[0])


def create_topic(args):
    topic = "bench-%s-%s-%s" % (args.kind, args.path, uuid.uuid4().hex[:10])
    admin = AdminClient(base_conf(args, "admin"))
    fs = admin.create_topics([NewTopic(topic, 1, 1)], request_timeout=30, operation_timeout=30)
    fs[topic].result(timeout=30)
    deadline = time.monotonic() + 30
    while True:
        md = admin.list_topics(topic=topic, timeout=10)
        tm = md.topics.get(topic)
        if tm is not None and tm.error is None and len(tm.partitions) == 1 \
                and tm.partitions[0].leader >= 0:
            break
        if time.monotonic() > deadline:
            raise Failed("topic %s not ready after 30s" % topic)
        time.sleep(0.05)
    return admin, topic


def delete_topic(admin, topic):
    # frees tansu's in-memory storage between runs; failure is only a warning
    try:
        admin.delete_topics([topic], operation_timeout=30, request_timeout=30)[topic].result(timeout=30)
    except Exception as e:  # noqa: BLE001
        log("warning: delete topic %s failed: %s" % (topic, e))


# --------------------------------------------------------------------------
# throughput
# --------------------------------------------------------------------------

def cmd_throughput(args):
    admin, topic = create_topic(args)
    n = max(1, int(args.mb * 1e6) // args.record_size)
    prefix = ("%s-" % topic).encode()
    payload = prefix + b"x" * (args.record_size - len(prefix))
    assert len(payload) == args.record_size
    total = n * len(payload)

    producer = Producer(dict(base_conf(args, "producer"), **{
        "acks": "1",
        "linger.ms": args.linger_ms,
        "batch.size": 1048576,
        "batch.num.messages": 100000,
        "message.max.bytes": 4194304,
        "compression.type": "none",
        "queue.buffering.max.messages": 1000000,
        "queue.buffering.max.kbytes": 262144,
        "enable.idempotence": False,
    }))
    # connect before timing: a metadata request establishes the bootstrap connection
    producer.list_topics(topic=topic, timeout=10)
    state = {"ok": 0, "err": 0, "first": None}

    def on_delivery(err, _msg):
        if err is None:
            state["ok"] += 1
        else:
            state["err"] += 1
            state["first"] = state["first"] or str(err)

    log("%s: producing %d x %d B = %.0f MB to %s" % (args.path, n, len(payload), total / 1e6, topic))
    s0 = Snapshot(args)
    produce = producer.produce
    poll = producer.poll
    for _ in range(n):
        try:
            produce(topic, payload, on_delivery=on_delivery)
        except BufferError:
            while True:
                poll(0.005)
                try:
                    produce(topic, payload, on_delivery=on_delivery)
                    break
                except BufferError:
                    continue
    left = producer.flush(args.timeout)
    s1 = Snapshot(args)
    check_client_errors()
    if left or state["err"] or state["ok"] != n:
        raise Failed("produce: %d undelivered, %d errors (first: %s), %d/%d acknowledged"
                     % (left, state["err"], state["first"], state["ok"], n))
    del producer

    consumer = Consumer(dict(base_conf(args, "consumer"), **{
        "group.id": "kgw-bench-" + uuid.uuid4().hex[:10],
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "fetch.max.bytes": 52428800,
        "max.partition.fetch.bytes": 10485760,
        "fetch.min.bytes": 1,
        "queued.max.messages.kbytes": 262144,
        "enable.partition.eof": False,
    }))
    tp = TopicPartition(topic, 0)
    # establishes the connection to the partition leader before timing, and checks the count
    # (tansu 0.6.0's high watermark can lag the last batch, so the count is checked on consume)
    lo, _hi = consumer.get_watermark_offsets(tp, timeout=10)
    got = 0
    got_bytes = 0
    bad = 0
    expect_offset = lo
    deadline = time.monotonic() + args.timeout
    s2 = Snapshot(args)
    consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
    consume = consumer.consume
    while got < n:
        # never ask for more than what is left: consume() waits for num_messages or the timeout
        msgs = consume(num_messages=min(10000, n - got), timeout=0.5)
        for m in msgs:
            if m.error():
                raise Failed("consumer error: %s" % m.error())
            v = m.value()
            if m.offset() != expect_offset or len(v) != args.record_size or not v.startswith(prefix):
                bad += 1
            expect_offset = m.offset() + 1
            got += 1
            got_bytes += len(v)
        if not msgs and time.monotonic() > deadline:
            break
    s3 = Snapshot(args)
    consumer.close()
    check_client_errors()
    if got != n or bad:
        raise Failed("consume: got %d of %d records, %d out of order / wrong content" % (got, n, bad))
    delete_topic(admin, topic)

    p, c = s1.delta(s0), s3.delta(s2)
    p["mb_s"] = round(total / 1e6 / p["seconds"], 2)
    c["mb_s"] = round(got_bytes / 1e6 / c["seconds"], 2)
    out = {
        "kind": "throughput", "path": args.path, "round": args.round, "topic": topic,
        "records": n, "record_size": args.record_size, "bytes": total,
        "produce": p, "consume": c,
        "rss_mb": {name: round(proc_rss_mb(pid), 1) for name, pid in args.cpu_pids},
    }
    log("%s: produce %.1f MB/s, consume %.1f MB/s, cpu %s / %s"
        % (args.path, p["mb_s"], c["mb_s"], p["cpu"], c["cpu"]))
    return out


# --------------------------------------------------------------------------
# latency
# --------------------------------------------------------------------------

def percentile(sorted_vals, pct):
    if not sorted_vals:
        return None
    k = (len(sorted_vals) - 1) * pct / 100.0
    lo = int(k)
    hi = min(lo + 1, len(sorted_vals) - 1)
    return sorted_vals[lo] + (sorted_vals[hi] - sorted_vals[lo]) * (k - lo)


def cmd_latency(args):
    """All paths in one process, interleaved record by record (the path order rotates every
    iteration), so background load and broker drift hit every path alike."""
    targets = []
    for name, bootstrap in args.targets:
        a = argparse.Namespace(**vars(args))
        a.path, a.bootstrap = name, bootstrap
        a.tls_ca = args.tls_ca if name in args.tls_paths else None
        admin, topic = create_topic(a)
        producer = Producer(dict(base_conf(a, "producer"), **{
            "acks": "1", "linger.ms": 0, "enable.idempotence": False,
        }))
        producer.list_topics(topic=topic, timeout=10)
        targets.append({"name": name, "admin": admin, "topic": topic, "producer": producer,
                        "errors": [], "lat": []})
    payload = b"l" * args.record_size
    k = len(targets)
    for i in range(args.warmup + args.count):
        for j in range(k):
            t = targets[(i + j) % k]
            errors = t["errors"]
            producer = t["producer"]
            t0 = time.perf_counter_ns()
            producer.produce(t["topic"], payload, on_delivery=lambda err, _m, e=errors: err and e.append(str(err)))
            left = producer.flush(args.timeout)
            dt = (time.perf_counter_ns() - t0) / 1000.0
            if left or errors:
                raise Failed("%s: latency record %d: %s" % (t["name"], i, errors[0] if errors else "not delivered"))
            if i >= args.warmup:
                t["lat"].append(round(dt, 1))
    check_client_errors()
    out = {"kind": "latency", "round": args.round, "count": args.count, "warmup": args.warmup, "paths": {}}
    for t in targets:
        delete_topic(t["admin"], t["topic"])
        s = sorted(t["lat"])
        out["paths"][t["name"]] = {
            "p50_us": round(percentile(s, 50), 1), "p90_us": round(percentile(s, 90), 1),
            "p99_us": round(percentile(s, 99), 1), "samples_us": t["lat"],
        }
        log("%s: latency p50 %.0f µs, p99 %.0f µs" % (t["name"], percentile(s, 50), percentile(s, 99)))
    return out


# --------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------

PATH_LABEL = {
    "direct": "direct to tansu",
    "gw-plain": "gateway, plaintext",
    "gw-tls": "gateway, TLS",
    "relay": "haproxy TCP relay (2nd tansu)",
}
PATH_ORDER = ["direct", "gw-plain", "gw-tls", "relay"]
# process whose CPU the "proxy CPU" column shows, per path
PROXY_PROC = {"gw-plain": "gateway", "gw-tls": "gateway", "relay": "haproxy"}
BROKER_PROC = {"direct": "tansu", "gw-plain": "tansu", "gw-tls": "tansu", "relay": "tansu2"}

TARGET_RATIO = 0.97
TARGET_CPU_PER_GB = 1.0
TARGET_ADDED_P50_US = 50.0


def fmt(v, nd=1):
    if v is None:
        return "n/a"
    return ("%%.%df" % nd) % v


def met(ok):
    return "**met**" if ok else "**NOT met**"


def cmd_report(args):
    runs = [json.loads(line) for line in open(args.results) if line.strip()]
    meta = json.load(open(args.meta))
    tp = [r for r in runs if r["kind"] == "throughput" and r["round"] > 0]
    lat = [r for r in runs if r["kind"] == "latency" and r["round"] > 0]
    paths = [p for p in PATH_ORDER if any(r["path"] == p for r in tp)
             or any(p in r["paths"] for r in lat)]

    by = {p: [r for r in tp if r["path"] == p] for p in paths}
    rounds = sorted({r["round"] for r in tp})

    def med(p, phase):
        v = [r[phase]["mb_s"] for r in by[p]]
        return statistics.median(v) if v else None

    def ratio(p, phase):
        """median over rounds of (path MB/s / direct MB/s in the same round)."""
        rs = []
        for rnd in rounds:
            a = [r for r in by[p] if r["round"] == rnd]
            d = [r for r in by.get("direct", []) if r["round"] == rnd]
            if a and d:
                rs.append(a[0][phase]["mb_s"] / d[0][phase]["mb_s"])
        return statistics.median(rs) if rs else None

    def cpu_per_gb(p, proc, phases=("produce", "consume"), denom="payload"):
        cpu = 0.0
        nbytes = 0.0
        for r in by[p]:
            for ph in phases:
                if proc not in r[ph]["cpu"]:
                    return None
                cpu += r[ph]["cpu"][proc]
                if denom == "gateway":
                    nbytes += r[ph]["gw_request_bytes"] + r[ph]["gw_response_bytes"]
                else:
                    nbytes += r["bytes"]
        return cpu / (nbytes / 1e9) if nbytes else None

    L = []
    w = L.append
    w("# kafka-gateway benchmark: gateway vs direct connection (same run)")
    w("")
    w("- date: %s" % meta["date"])
    w("- machine: %s cores, %s, %s GiB RAM, kernel %s" % (meta["nproc"], meta["cpu_model"],
                                                         meta["mem_gib"], meta["kernel"]))
    w("- gateway: %s (commit %s), %s" % (meta["gateway_version"], meta["git_commit"], meta["rustc"]))
    w("- broker: %s, memory storage; client: confluent-kafka %s / librdkafka %s (Python %s)"
      % (meta["tansu_version"], ck_version(), ck_libversion()[0], sys.version.split()[0]))
    if meta.get("haproxy_version"):
        w("- relay: %s (mode tcp, defaults)" % meta["haproxy_version"])
    else:
        w("- relay: skipped (%s)" % meta.get("relay_skip_reason", "haproxy not available"))
    w("- mode: %s; throughput: %d rounds x %s MB per path (1 KiB records, acks=1, linger.ms=%s, "
      "batch.size 1 MiB, no compression), path order rotated every round, after one unreported "
      "warm-up round; latency: %d single-record produce+flush (acks=1) per path after %d warm-up "
      "records, all paths in one client, interleaved record by record"
      % (meta["mode"], len(rounds), meta["mb"], meta["linger_ms"], meta["lat_count"],
         meta["lat_warmup"]))
    w("- all processes (client, tansu, gateway, haproxy) share the same %s cores on loopback; "
      "load average (1/5/15 min) before -> after the measurements: %s"
      % (meta["nproc"], meta["loadavg"]))
    w("")

    w("## Throughput (medians over rounds)")
    w("")
    w("| path | produce MB/s | consume MB/s | produce ratio vs direct | consume ratio vs direct "
      "| proxy CPU-s/GB | broker CPU-s/GB | client CPU-s/GB | all CPU-s/GB | CPU-bound ratio |")
    w("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")

    def total_cpu(p):
        parts = [client_cpu_per_gb(by[p]), cpu_per_gb(p, BROKER_PROC[p])]
        if PROXY_PROC.get(p):
            parts.append(cpu_per_gb(p, PROXY_PROC[p]))
        return None if None in parts else sum(parts)

    for p in paths:
        if not by[p]:
            continue
        rp, rc = (ratio(p, "produce"), ratio(p, "consume")) if p != "direct" else (None, None)
        proxy = PROXY_PROC.get(p)
        tot, dtot = total_cpu(p), total_cpu("direct") if by.get("direct") else None
        w("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            PATH_LABEL[p], fmt(med(p, "produce")), fmt(med(p, "consume")),
            fmt(rp, 3) if rp is not None else "-", fmt(rc, 3) if rc is not None else "-",
            fmt(cpu_per_gb(p, proxy), 3) + " (%s)" % proxy if proxy else "-",
            fmt(cpu_per_gb(p, BROKER_PROC[p]), 3) + " (%s)" % BROKER_PROC[p],
            fmt(client_cpu_per_gb(by[p]), 3), fmt(tot, 3),
            fmt(dtot / tot, 3) if p != "direct" and tot and dtot else "-"))
    w("")
    w("Ratios are medians over rounds of (path MB/s / direct MB/s in the same round). "
      "*all CPU-s/GB* adds client, broker and proxy; *CPU-bound ratio* = direct's all CPU-s/GB / "
      "this path's, the throughput ratio to expect when the %s cores are saturated, which they "
      "are here (client and broker alone need most of them)." % meta["nproc"])
    w("")
    w("CPU-s/GB = CPU seconds (utime+stime from /proc/PID/stat, all threads) spent during the "
      "produce and consume phases, divided by the payload GB moved (each record counted once when "
      "produced and once when consumed). The gateway's own forwarded-bytes counters "
      "(request + response bytes, all APIs) give:")
    w("")
    w("| path | gateway CPU-s per GB forwarded (metrics) | produce phase | consume phase | GB forwarded |")
    w("|---|---:|---:|---:|---:|")
    for p in ("gw-plain", "gw-tls"):
        if p in by and by[p]:
            gb = sum(r[ph]["gw_request_bytes"] + r[ph]["gw_response_bytes"]
                     for r in by[p] for ph in ("produce", "consume")) / 1e9
            w("| %s | %s | %s | %s | %s |" % (
                PATH_LABEL[p], fmt(cpu_per_gb(p, "gateway", denom="gateway"), 3),
                fmt(cpu_per_gb(p, "gateway", ("produce",), "gateway"), 3),
                fmt(cpu_per_gb(p, "gateway", ("consume",), "gateway"), 3), fmt(gb, 2)))
    w("")

    w("<details><summary>per-round throughput (MB/s produce / consume)</summary>")
    w("")
    w("| round | " + " | ".join(PATH_LABEL[p] for p in paths if by[p]) + " |")
    w("|---|" + "---:|" * len([p for p in paths if by[p]]))
    for rnd in rounds:
        cells = []
        for p in paths:
            if not by[p]:
                continue
            a = [r for r in by[p] if r["round"] == rnd]
            cells.append("%s / %s" % (fmt(a[0]["produce"]["mb_s"]), fmt(a[0]["consume"]["mb_s"]))
                         if a else "-")
        w("| %d | %s |" % (rnd, " | ".join(cells)))
    w("")
    w("</details>")
    w("")

    lby = {p: [s for r in lat for s in r["paths"].get(p, {}).get("samples_us", [])] for p in paths}
    lp = {}
    for p in paths:
        s = sorted(lby[p])
        if s:
            lp[p] = (percentile(s, 50), percentile(s, 99), len(s))
    if lp:
        w("## Produce latency (acks=1, one record at a time, paths interleaved record by record)")
        w("")
        w("| path | samples | p50 µs | p99 µs | added p50 µs vs direct | added p99 µs |")
        w("|---|---:|---:|---:|---:|---:|")
        for p in paths:
            if p in lp:
                a50 = lp[p][0] - lp["direct"][0] if p != "direct" and "direct" in lp else None
                a99 = lp[p][1] - lp["direct"][1] if p != "direct" and "direct" in lp else None
                w("| %s | %d | %s | %s | %s | %s |" % (
                    PATH_LABEL[p], lp[p][2], fmt(lp[p][0], 0), fmt(lp[p][1], 0),
                    fmt(a50, 0) if a50 is not None else "-", fmt(a99, 0) if a99 is not None else "-"))
        w("")

    w("## Targets")
    w("")
    w("| target | path | measured | status |")
    w("|---|---|---:|---|")
    for p in ("gw-plain", "gw-tls"):
        if p not in by or not by[p]:
            continue
        for ph in ("produce", "consume"):
            r = ratio(p, ph)
            if r is not None:
                w("| %s throughput ratio >= %.2f | %s | %.3f | %s |"
                  % (ph, TARGET_RATIO, PATH_LABEL[p], r, met(r >= TARGET_RATIO)))
    if "gw-plain" in by and by["gw-plain"]:
        c = cpu_per_gb("gw-plain", "gateway", denom="gateway")
        w("| gateway CPU <= %.1f CPU-s per GB forwarded | %s | %.3f | %s |"
          % (TARGET_CPU_PER_GB, PATH_LABEL["gw-plain"], c, met(c <= TARGET_CPU_PER_GB)))
    if "gw-tls" in by and by["gw-tls"]:
        c = cpu_per_gb("gw-tls", "gateway", denom="gateway")
        w("| (info, target is for plaintext) gateway CPU-s per GB | %s | %.3f | - |"
          % (PATH_LABEL["gw-tls"], c))
    for p in ("gw-plain", "gw-tls"):
        if p in lp and "direct" in lp:
            a = lp[p][0] - lp["direct"][0]
            w("| added p50 latency <= %.0f µs | %s | %.0f µs | %s |"
              % (TARGET_ADDED_P50_US, PATH_LABEL[p], a, met(a <= TARGET_ADDED_P50_US)))
    w("")
    w("Missed targets do not fail the benchmark; errors (client errors, record count or content "
      "mismatches) do. See benches/README.md for method and caveats.")
    text = "\n".join(L) + "\n"
    sys.stdout.write(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    return None


def client_cpu_per_gb(runs):
    cpu = sum(r[ph]["client_cpu"] for r in runs for ph in ("produce", "consume"))
    nbytes = sum(2 * r["bytes"] for r in runs)
    return cpu / (nbytes / 1e9) if nbytes else None


# --------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)

    def common(sp):
        sp.add_argument("--bootstrap", required=True)
        sp.add_argument("--tls-ca", help="CA bundle: use TLS (security.protocol=SSL)")
        sp.add_argument("--path", required=True, help="label: direct, gw-plain, gw-tls, relay")
        sp.add_argument("--round", type=int, default=0, help="round number (0 = warm-up, not reported)")
        sp.add_argument("--record-size", type=int, default=1024)
        sp.add_argument("--timeout", type=float, default=120.0)
        sp.add_argument("--cpu-pid", dest="cpu_pids", type=parse_pid, action="append", default=[],
                        help="NAME=PID whose CPU time to measure per phase (repeatable)")
        sp.add_argument("--metrics-url", help="gateway /metrics URL for forwarded bytes")

    t = sub.add_parser("throughput")
    common(t)
    t.add_argument("--mb", type=float, required=True)
    t.add_argument("--linger-ms", type=int, default=5)
    t.set_defaults(kind="tp")

    lt = sub.add_parser("latency")
    lt.add_argument("--target", dest="targets", type=parse_target, action="append", required=True,
                    help="NAME=HOST:PORT, repeatable: the paths to interleave")
    lt.add_argument("--tls-ca", help="CA bundle for the --tls-path targets")
    lt.add_argument("--tls-path", dest="tls_paths", action="append", default=[],
                    help="NAME of a target that uses TLS (repeatable)")
    lt.add_argument("--round", type=int, default=1)
    lt.add_argument("--record-size", type=int, default=1024)
    lt.add_argument("--timeout", type=float, default=60.0)
    lt.add_argument("--count", type=int, default=2000)
    lt.add_argument("--warmup", type=int, default=200)
    lt.set_defaults(kind="lat")

    r = sub.add_parser("report")
    r.add_argument("--results", required=True)
    r.add_argument("--meta", required=True)
    r.add_argument("--out")

    args = ap.parse_args()
    import_kafka()
    try:
        if args.cmd == "throughput":
            out = cmd_throughput(args)
        elif args.cmd == "latency":
            out = cmd_latency(args)
        else:
            cmd_report(args)
            return 0
    except (Failed, KafkaException) as e:
        log("FAILED (%s): %s" % (getattr(args, "path", "latency"), e))
        return 1
    print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
