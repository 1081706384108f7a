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
  report      read the JSON lines and the meta.tsv written by bench.sh and print the
              Markdown report (issue-13 targets first).

Sizes: 1 MB = 1e6 bytes, 1 GB = 1e9 bytes.
"""

import argparse
import os
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import (Failed, bytes_delta, client_versions, cpu_seconds,  # noqa: E402
                      delete_topic, fmt, gateway_bytes, interleaved_latency, kafka_conf,
                      latency_producer_conf, latency_summary, machine_lines, make_log, median,
                      met, parse_pid, parse_target, percentile, proc_rss_mb, read_jsonl,
                      read_meta, round_ratios, run_command, self_cpu_seconds, write_report)

log = make_log("[bench_client]")


# --------------------------------------------------------------------------
# measurement helpers
# --------------------------------------------------------------------------

class Snapshot:
    def __init__(self, args):
        self.args = args
        self.t = time.perf_counter()
        self.cpu = cpu_seconds(args.cpu_pids)
        self.self_cpu = self_cpu_seconds()
        self.bytes = gateway_bytes(args.metrics_url)

    def delta(self, start):
        return bytes_delta({
            "seconds": self.t - start.t,
            "cpu": {k: round(self.cpu[k] - start.cpu[k], 3) for k in self.cpu},
            "client_cpu": round(self.self_cpu - start.self_cpu, 3),
        }, self.bytes, start.bytes)


# --------------------------------------------------------------------------
# clients
# --------------------------------------------------------------------------

def import_kafka():
    global Consumer, KafkaError, KafkaException, Producer, TopicPartition, AdminClient, NewTopic
    global OFFSET_BEGINNING
    try:
        from confluent_kafka import (OFFSET_BEGINNING, Consumer, KafkaError, KafkaException,
                                     Producer, TopicPartition)
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

    conf = kafka_conf(args.bootstrap, "kgw-bench-%s-%s" % (kind, args.path), on_error)
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
    delete_topic(admin, topic, 30, log)

    p, c = s1.delta(s0), s3.delta(s2)
    p["mb_s"] = round(total / 1e6 / p["seconds"], 2)
    c["mb_s"] = round(got_bytes / 1e6 / c["seconds"], 2)
    out = {
        "kind": "throughput", "path": args.path, "round": args.round, "topic": topic,
        "records": n, "record_size": args.record_size, "bytes": total,
        "produce": p, "consume": c,
        "rss_mb": {name: proc_rss_mb(pid) for name, pid in args.cpu_pids},
    }
    log("%s: produce %.1f MB/s, consume %.1f MB/s, cpu %s / %s"
        % (args.path, p["mb_s"], c["mb_s"], p["cpu"], c["cpu"]))
    return out


# --------------------------------------------------------------------------
# latency
# --------------------------------------------------------------------------

def cmd_latency(args):
    """All paths in one process, interleaved record by record (the path order rotates every
    iteration), so background load and broker drift hit every path alike."""
    targets = []
    for name, bootstrap in args.targets:
        a = argparse.Namespace(**vars(args))
        a.path, a.bootstrap = name, bootstrap
        a.tls_ca = args.tls_ca if name in args.tls_paths else None
        admin, topic = create_topic(a)
        producer = Producer(dict(base_conf(a, "producer"), **latency_producer_conf()))
        producer.list_topics(topic=topic, timeout=10)
        targets.append({"name": name, "admin": admin, "topic": topic, "producer": producer,
                        "errors": [], "lat": []})
    interleaved_latency(targets, args.record_size, args.warmup, args.count, args.timeout)
    check_client_errors()
    out = {"kind": "latency", "round": args.round, "count": args.count, "warmup": args.warmup, "paths": {}}
    for t in targets:
        delete_topic(t["admin"], t["topic"], 30, log)
        out["paths"][t["name"]] = latency_summary(t, log)
    return out


# --------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------

PATH_ORDER = ["direct", "gw-allow", "gw-plain", "gw-shadow", "gw-audit-all", "gw-tls", "relay",
              "relay-tls"]
# process whose CPU the "proxy CPU" column shows, per path (each gateway path names its own process
# "gateway", each haproxy path its own "haproxy")
PROXY_PROC = {"gw-allow": "gateway", "gw-plain": "gateway", "gw-shadow": "gateway",
              "gw-audit-all": "gateway", "gw-tls": "gateway", "relay": "haproxy",
              "relay-tls": "haproxy"}
BROKER_PROC = {"direct": "tansu", "gw-allow": "tansu", "gw-plain": "tansu", "gw-shadow": "tansu",
               "gw-audit-all": "tansu", "gw-tls": "tansu", "relay": "tansu2", "relay-tls": "tansu3"}
GW_PATHS = ["gw-allow", "gw-plain", "gw-shadow", "gw-audit-all", "gw-tls"]

# GitHub issue 13
TARGET_PLAIN_CPU_VS_HAPROXY = 0.6      # gateway plaintext CPU/GB <= 0.6 x haproxy TCP relay's
TARGET_TLS_CPU_VS_HAPROXY = 1.0        # gateway TLS CPU/GB <= haproxy TLS termination's
TARGET_TLS_P50_VS_HAPROXY = 1.5        # gateway TLS added p50 <= 1.5 x haproxy relay's added p50
TARGET_AUTHZ_DEFAULT = 1.05            # policy + default audit level CPU <= 1.05 x allow_all
TARGET_AUDIT_ALL = 1.15                # policy + audit level all CPU <= 1.15 x allow_all


def path_labels(meta):
    lvl = meta.get("audit_level") or "default"
    lvl = "default (admin)" if lvl == "default" else "**%s** (KGW_BENCH_AUDIT_LEVEL)" % lvl
    return {
        "direct": "direct to tansu",
        "gw-allow": "gateway plaintext, allow_all, no audit",
        "gw-plain": "gateway plaintext, policy, audit %s" % lvl,
        "gw-shadow": "gateway plaintext, policy + shadow policy, audit %s" % lvl,
        "gw-audit-all": "gateway plaintext, policy, audit all",
        "gw-tls": "gateway TLS, policy, audit %s" % lvl,
        "relay": "haproxy TCP relay (tansu2)",
        "relay-tls": "haproxy TLS termination (tansu3)",
    }


def sfmt(v, nd=0):
    """signed, for added latencies"""
    if v is None:
        return "n/a"
    return ("%%+.%df" % nd) % v


def cmd_report(args):
    runs = read_jsonl(args.results)
    meta = read_meta(args.meta, ints=("lat_count", "lat_warmup"))
    label = path_labels(meta)
    tp = [r for r in runs if r["kind"] == "throughput" and r["round"] > 0]
    lat = [r for r in runs if r["kind"] == "latency" and r["round"] > 0]
    paths = [p for p in PATH_ORDER if any(r["path"] == p for r in tp)
             or any(p in r["paths"] for r in lat)]

    by = {p: [r for r in tp if r["path"] == p] for p in PATH_ORDER}
    rounds = sorted({r["round"] for r in tp})

    def med(p, phase):
        return median(r[phase]["mb_s"] for r in by[p])

    def ratio(p, phase):
        """median over rounds of (path MB/s / direct MB/s in the same round)."""
        return median(round_ratios(by[p], by["direct"], rounds, lambda r: r[phase]["mb_s"]))

    def cpu_per_gb(p, proc, phases=("produce", "consume"), denom="payload", rnd=None):
        cpu = 0.0
        nbytes = 0.0
        for r in by.get(p, []):
            if rnd is not None and r["round"] != rnd:
                continue
            for ph in phases:
                if proc not in r[ph]["cpu"]:
                    return None
                cpu += r[ph]["cpu"][proc]
                if denom == "gateway":
                    nbytes += r[ph]["gw_request_bytes"] + r[ph]["gw_response_bytes"]
                else:
                    nbytes += r["bytes"]
        return cpu / (nbytes / 1e9) if nbytes else None

    def proxy_cpu(p):
        return cpu_per_gb(p, PROXY_PROC[p]) if by.get(p) else None

    def cpu_ratio(p, base):
        """(aggregate over all rounds, [per-round ratios]) of proxy CPU-s/GB, p over base"""
        a, b = proxy_cpu(p), proxy_cpu(base)
        if a is None or not b:
            return None, []
        per = []
        for rnd in rounds:
            x, y = cpu_per_gb(p, PROXY_PROC[p], rnd=rnd), cpu_per_gb(base, PROXY_PROC[base], rnd=rnd)
            if x is not None and y:
                per.append(x / y)
        return a / b, per

    L = []
    w = L.append
    w("# kafka-gateway benchmark: gateway vs direct connection and vs HAProxy (same run)")
    w("")
    L.extend(machine_lines(meta))
    w("- gateway: %s (commit %s), %s" % (meta["gateway_version"], meta["git_commit"], meta["rustc"]))
    w("- broker: %s, memory storage; client: %s" % (meta["tansu_version"], client_versions()))
    gws = ["`gateway` (policy, audit level %s; plaintext + TLS listeners; %s threads)"
           % ("default = admin" if meta.get("audit_level", "default") == "default"
              else meta["audit_level"], meta.get("threads_gateway") or "?")]
    if meta.get("authz_paths", "1") == "1":
        gws.append("`gateway-allow` (authorization.allow_all, no audit; %s threads)"
                   % (meta.get("threads_gateway_allow") or "?"))
        gws.append("`gateway-shadow` (as `gateway`, plus a shadow policy without Read and Write on "
                   "topics: every Produce and Fetch check differs; plaintext; %s threads)"
                   % (meta.get("threads_gateway_shadow") or "?"))
        gws.append("`gateway-audit-all` (policy, audit level all; %s threads)"
                   % (meta.get("threads_gateway_audit_all") or "?"))
    w("- gateways: %s in front of the same tansu, default runtime settings: %s"
      % ("%d processes of the same binary" % len(gws) if len(gws) > 1 else "one process",
         "; ".join(gws)))
    if meta.get("audit_trail"):
        w("- audit trails written during the run: `gateway` %s%s%s"
          % (meta["audit_trail"],
             "; `gateway-shadow` %s" % meta["audit_shadow_trail"]
             if meta.get("audit_shadow_trail") else "",
             "; `gateway-audit-all` %s" % meta["audit_all_trail"]
             if meta.get("audit_all_trail") else ""))
    if meta.get("haproxy_version"):
        w("- haproxy: %s (running on %s), two processes, mode tcp, HAProxy defaults otherwise: "
          "`nbthread` not configured (this build's default: %s; threads observed: relay %s, "
          "TLS %s); TLS termination: `bind ... ssl crt` with the gateway's dev server certificate "
          "and key (ECDSA P-256) in one PEM"
          % (meta["haproxy_version"], meta.get("haproxy_openssl") or "OpenSSL ?",
             meta.get("haproxy_nbthread_default") or "?", meta.get("threads_haproxy") or "?",
             meta.get("threads_haproxy_tls") or "?"))
    else:
        w("- haproxy: skipped (%s)" % (meta.get("relay_skip_reason") or "haproxy not available"))
    tls = ["gateway %s" % (meta.get("tls_gw") or "?")]
    if meta.get("tls_relay"):
        tls.append("haproxy %s" % meta["tls_relay"])
    w("- TLS session (openssl s_client, OpenSSL defaults like librdkafka's): %s" % ", ".join(tls))
    w("- mode: %s; throughput: %d rounds x %s MB per path (1 KiB records, acks=1, linger.ms=%s, "
      "batch.size 1 MiB, no compression), path order rotated every round, after one unreported "
      "warm-up round; latency: %d single-record produce+flush (acks=1) per path after %d warm-up "
      "records, all latency paths in one client, interleaved record by record"
      % (meta["mode"], len(rounds), meta["mb"], meta["linger_ms"], meta["lat_count"],
         meta["lat_warmup"]))
    w("- all processes (client, tansus, gateways, haproxys) share the same %s cores on loopback; "
      "load average (1/5/15 min) before -> after the measurements (%ss): %s"
      % (meta["nproc"], meta.get("seconds", "?"), meta["loadavg"]))
    w("")

    # ---------------------------------------------------------------- latency numbers
    lby = {p: [s for r in lat for s in r["paths"].get(p, {}).get("samples_us", [])] for p in paths}
    lp = {}
    for p in paths:
        s = sorted(lby[p])
        if s:
            lp[p] = (percentile(s, 50), percentile(s, 99), len(s))

    def added(p, i):
        if p in lp and "direct" in lp and p != "direct":
            return lp[p][i] - lp["direct"][i]
        return None

    # ---------------------------------------------------------------- targets
    w("## Targets (GitHub issue 13)")
    w("")
    w("| target | measured | status |")
    w("|---|---|---|")
    gp50, gt50, hp50, ht50 = added("gw-plain", 0), added("gw-tls", 0), added("relay", 0), added("relay-tls", 0)
    if gp50 is not None and hp50 is not None:
        w("| added p50 produce latency, plaintext: gateway <= HAProxy TCP relay | gateway %s µs, "
          "haproxy %s µs | %s |" % (sfmt(gp50), sfmt(hp50), met(gp50 <= hp50)))
    else:
        w("| added p50 produce latency, plaintext: gateway <= HAProxy TCP relay | %s | %s |"
          % ("gateway %s µs, haproxy not measured" % sfmt(gp50), met(None)))
    if gt50 is not None and hp50 is not None:
        lim = TARGET_TLS_P50_VS_HAPROXY * hp50
        w("| added p50 produce latency, TLS: gateway TLS <= %.1f x HAProxy relay's (plaintext) | "
          "gateway TLS %s µs, limit %.1f x %s = %s µs | %s |"
          % (TARGET_TLS_P50_VS_HAPROXY, sfmt(gt50), TARGET_TLS_P50_VS_HAPROXY, sfmt(hp50),
             sfmt(lim), met(gt50 <= lim)))
    else:
        w("| added p50 produce latency, TLS: gateway TLS <= %.1f x HAProxy relay's (plaintext) | "
          "gateway TLS %s µs, haproxy not measured | %s |"
          % (TARGET_TLS_P50_VS_HAPROXY, sfmt(gt50), met(None)))
    if gt50 is not None and ht50 is not None:
        w("| (info) added p50, TLS: gateway TLS vs HAProxy TLS termination | gateway TLS %s µs, "
          "haproxy TLS %s µs | - |" % (sfmt(gt50), sfmt(ht50)))
    p99 = []
    for p in ("gw-plain", "relay", "gw-tls", "relay-tls"):
        if added(p, 1) is not None:
            p99.append("%s %s µs" % ({"gw-plain": "gateway", "relay": "haproxy",
                                      "gw-tls": "gateway TLS", "relay-tls": "haproxy TLS"}[p],
                                     sfmt(added(p, 1))))
    w("| added p99 produce latency reported | %s | reported |" % (", ".join(p99) or "n/a"))

    gc, hc = proxy_cpu("gw-plain"), proxy_cpu("relay")
    if gc is not None and hc:
        w("| plaintext CPU per GB: gateway <= %.1f x HAProxy TCP relay | gateway %.3f, haproxy "
          "%.3f CPU-s/GB: %.2f x | %s |"
          % (TARGET_PLAIN_CPU_VS_HAPROXY, gc, hc, gc / hc, met(gc / hc <= TARGET_PLAIN_CPU_VS_HAPROXY)))
    else:
        w("| plaintext CPU per GB: gateway <= %.1f x HAProxy TCP relay | gateway %s CPU-s/GB, "
          "haproxy not measured | %s |" % (TARGET_PLAIN_CPU_VS_HAPROXY, fmt(gc, 3), met(None)))
    gc, hc = proxy_cpu("gw-tls"), proxy_cpu("relay-tls")
    if gc is not None and hc:
        w("| TLS CPU per GB: gateway TLS <= HAProxy TLS termination | gateway %.3f, haproxy "
          "%.3f CPU-s/GB: %.2f x | %s |"
          % (gc, hc, gc / hc, met(gc / hc <= TARGET_TLS_CPU_VS_HAPROXY)))
    else:
        w("| TLS CPU per GB: gateway TLS <= HAProxy TLS termination | gateway %s CPU-s/GB, "
          "haproxy not measured | %s |" % (fmt(gc, 3), met(None)))

    default_level = meta.get("audit_level", "default") == "default"
    for p, lim, what in (("gw-plain", TARGET_AUTHZ_DEFAULT,
                          "authorization + audit at the default level"),
                         ("gw-audit-all", TARGET_AUDIT_ALL, "authorization + audit level `all`")):
        text = "%s: gateway CPU <= %.2f x `allow_all`" % (what, lim)
        r, per = cpu_ratio(p, "gw-allow")
        if r is None:
            w("| %s | %s | %s |" % (text, "not measured (KGW_BENCH_AUTHZ=0)"
                                     if meta.get("authz_paths") == "0" else "n/a", met(None)))
            continue
        measured = "%.3f vs %.3f CPU-s/GB: %.3f x%s" % (
            proxy_cpu(p), proxy_cpu("gw-allow"), r,
            " (per round %.2f-%.2f)" % (min(per), max(per)) if per else "")
        if p == "gw-plain" and not default_level:
            w("| %s | %s, at level %s, not the default | not checked |"
              % (text, measured, meta["audit_level"]))
        else:
            w("| %s | %s | %s |" % (text, measured, met(r <= lim)))
    # issue 16 asks for the shadow policy's cost to be measured, without a target: gw-shadow is
    # gw-plain's configuration plus the shadow, so gw-shadow / gw-plain is the shadow's own cost
    text = "(info, issue 16) shadow policy differing on every Produce and Fetch: gateway CPU"
    r, per = cpu_ratio("gw-shadow", "gw-plain")
    ra, pera = cpu_ratio("gw-shadow", "gw-allow")
    if r is None:
        w("| %s | %s | - |" % (text, "not measured (KGW_BENCH_AUTHZ=0)"
                               if meta.get("authz_paths") == "0" else "n/a"))
    else:
        w("| %s vs the same gateway without it (gw-plain) | %.3f vs %.3f CPU-s/GB: %.3f x%s | - |"
          % (text, proxy_cpu("gw-shadow"), proxy_cpu("gw-plain"), r,
             " (per round %.2f-%.2f)" % (min(per), max(per)) if per else ""))
        if ra is not None:
            w("| %s vs `allow_all` | %.3f vs %.3f CPU-s/GB: %.3f x%s | - |"
              % (text, proxy_cpu("gw-shadow"), proxy_cpu("gw-allow"), ra,
                 " (per round %.2f-%.2f)" % (min(pera), max(pera)) if pera else ""))
        tp = [median(round_ratios(by["gw-shadow"], by["gw-plain"], rounds,
                                  lambda x, ph=ph: x[ph]["mb_s"])) for ph in ("produce", "consume")]
        w("| (info, issue 16) throughput with the shadow policy vs without (gw-shadow / gw-plain), "
          "produce / consume | %s / %s | - |" % (fmt(tp[0], 3), fmt(tp[1], 3)))
    w("| 10,000 idle TLS connections | see benches/results/conns.md | - |")
    w("| 3-broker Apache Kafka cluster | see benches/results/kafka-cluster.md | - |")
    for p in ("gw-plain", "gw-tls", "relay", "relay-tls"):
        if by.get(p):
            w("| (info) throughput ratio vs direct, produce / consume | %s: %s / %s | - |"
              % (label[p], fmt(ratio(p, "produce"), 3), fmt(ratio(p, "consume"), 3)))
    w("")
    w("Added latency = the path's percentile minus direct's, from the same interleaved run (the "
      "haproxy paths reach their own tansu, tansu2 / tansu3, so theirs can come out slightly "
      "negative). CPU per GB = the proxy process's CPU seconds (utime+stime, all threads) over the "
      "produce and consume phases of all rounds, per GB of payload moved; ratios are taken over "
      "all rounds, the per-round range shows the noise. Missed targets do not fail the benchmark; "
      "errors (client errors, record count or content mismatches, a process dying) do. See "
      "benches/README.md for method and caveats.")
    w("")

    # ---------------------------------------------------------------- throughput
    w("## Throughput (medians over rounds)")
    w("")
    w("| path | produce MB/s | consume MB/s | produce ratio vs direct | consume ratio vs direct "
      "| proxy CPU-s/GB | broker CPU-s/GB | client CPU-s/GB | all CPU-s/GB | CPU-bound ratio |")
    w("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")

    def total_cpu(p):
        if not by.get(p):
            return None
        parts = [client_cpu_per_gb(by[p]), cpu_per_gb(p, BROKER_PROC[p])]
        if PROXY_PROC.get(p):
            parts.append(cpu_per_gb(p, PROXY_PROC[p]))
        return None if None in parts else sum(parts)

    for p in paths:
        if not by[p]:
            continue
        rp, rc = (ratio(p, "produce"), ratio(p, "consume")) if p != "direct" else (None, None)
        proxy = PROXY_PROC.get(p)
        tot, dtot = total_cpu(p), total_cpu("direct")
        w("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            label[p], fmt(med(p, "produce")), fmt(med(p, "consume")),
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
      "produced and once when consumed). Each gateway path has its own gateway process, each "
      "haproxy path its own haproxy process.")
    w("")

    # ---------------------------------------------------------------- gateway CPU detail
    gw_rows = [p for p in GW_PATHS if by.get(p)]
    if gw_rows:
        w("## Gateway CPU by configuration")
        w("")
        w("| path | gateway CPU-s/GB (payload) | vs allow_all | per round vs allow_all | "
          "CPU-s per GB forwarded (metrics) | produce phase | consume phase | GB forwarded |")
        w("|---|---:|---:|---|---:|---:|---:|---:|")
        for p in gw_rows:
            gb = sum(r[ph]["gw_request_bytes"] + r[ph]["gw_response_bytes"]
                     for r in by[p] for ph in ("produce", "consume")) / 1e9
            r, per = cpu_ratio(p, "gw-allow") if p != "gw-allow" else (None, [])
            w("| %s | %s | %s | %s | %s | %s | %s | %s |" % (
                label[p], fmt(proxy_cpu(p), 3), fmt(r, 3) if r is not None else "-",
                " ".join("%.2f" % x for x in per) or "-",
                fmt(cpu_per_gb(p, "gateway", denom="gateway"), 3),
                fmt(cpu_per_gb(p, "gateway", ("produce",), "gateway"), 3),
                fmt(cpu_per_gb(p, "gateway", ("consume",), "gateway"), 3), fmt(gb, 2)))
        w("")
        w("*per GB forwarded* divides by the gateway's own counters (`kafka_gateway_request_bytes_total"
          " + kafka_gateway_response_bytes_total`, all APIs, delta over each phase), which include "
          "Kafka framing. The `allow_all` gateway has no authorizer and no audit trail; the others "
          "check every request against the policy and audit at the level shown; `gateway-shadow` "
          "also asks every check of its shadow policy, which differs on every Produce and Fetch "
          "(counted, audited as `shadow_decision`, repeats summarized).")
        w("")

    w("<details><summary>per-round throughput (MB/s produce / consume) and proxy CPU-s/GB</summary>")
    w("")
    shown = [p for p in paths if by[p]]
    w("| round | " + " | ".join(label[p] for p in shown) + " |")
    w("|---|" + "---:|" * len(shown))
    for rnd in rounds:
        cells = []
        for p in shown:
            a = [r for r in by[p] if r["round"] == rnd]
            if not a:
                cells.append("-")
                continue
            c = cpu_per_gb(p, PROXY_PROC[p], rnd=rnd) if PROXY_PROC.get(p) else None
            cells.append("%s / %s%s" % (fmt(a[0]["produce"]["mb_s"]), fmt(a[0]["consume"]["mb_s"]),
                                        " (%.3f)" % c if c is not None else ""))
        w("| %d | %s |" % (rnd, " | ".join(cells)))
    w("")
    w("</details>")
    w("")

    if lp:
        w("## Produce latency (acks=1, one record at a time, paths interleaved record by record)")
        w("")
        w("| path | samples | p50 µs | p99 µs | added p50 µs vs direct | added p99 µs |")
        w("|---|---:|---:|---:|---:|---:|")
        for p in paths:
            if p in lp:
                w("| %s | %d | %s | %s | %s | %s |" % (
                    label[p], lp[p][2], fmt(lp[p][0], 0), fmt(lp[p][1], 0),
                    sfmt(added(p, 0)) if p != "direct" else "-",
                    sfmt(added(p, 1)) if p != "direct" else "-"))
        w("")

    write_report("\n".join(L) + "\n", args.out)
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
        sp.add_argument("--path", required=True,
                        help="label: direct, gw-allow, gw-plain, gw-shadow, gw-audit-all, gw-tls, relay, relay-tls")
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
    handler = {"throughput": cmd_throughput, "latency": cmd_latency, "report": cmd_report}[args.cmd]
    return run_command(handler, args, log, getattr(args, "path", "latency"), (KafkaException,))


if __name__ == "__main__":
    sys.exit(main())
