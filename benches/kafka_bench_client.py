#!/usr/bin/env python3
"""Benchmark client for scripts/bench-kafka.sh: a 3-broker Apache Kafka cluster, direct vs through
the gateway, with many partitions and many concurrent clients. Run it with $KGW_PYTHON (the venv
made by scripts/install-deps.sh, with confluent-kafka and its bundled librdkafka).

Subcommands (each measuring one prints ONE JSON object on stdout; diagnostics go to stderr; any
client error, undelivered record or count mismatch exits 1):

  wait-cluster  wait until --bootstrap lists --brokers brokers (and an admin request works).
  run           one workload run on one path: create a fresh topic (--partitions, --rf) through
                that path, start --groups consumer processes (one per group, --consumers-per-group
                consumers each, subscribe(), so the group protocol runs through the path) and
                --producer-procs producer processes (--producers in total, spread over them); wait
                until every group has all partitions assigned, then start the clock and let the
                producers send --mb MB in total (acks --acks, idempotent when acks=all) while the
                groups consume. The run ends when every group has seen every record. Checks: every
                record acknowledged, every group saw every (producer, sequence) exactly once or
                more (duplicates are counted), size + topic prefix of every record, full content of
                one record in 1000. Measures produce MB/s (clock start -> last producer's flush),
                consume MB/s (all groups' records / clock start -> last group done), and CPU
                (utime+stime from /proc/PID/stat) of every --cpu-pid process, of every client
                process, and of the whole machine (/proc/stat), over the same window.
  latency       one topic (1 partition, --rf replicas) created directly; one acks=1 linger.ms=0
                producer per --target, --warmup then --count single records each (produce +
                flush), targets interleaved record by record; p50/p90/p99 and all samples (µs).
  report        read the JSON lines written by bench-kafka.sh, print the Markdown report.

Sizes: 1 MB = 1e6 bytes, 1 GB = 1e9 bytes.
"""

import argparse
import multiprocessing as mp
import os
import queue
import statistics
import struct
import sys
import threading
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import (CLK_TCK, Failed, bytes_delta, client_versions, cpu_seconds,  # noqa: E402
                      delete_topic, fmt, gateway_bytes, interleaved_latency, kafka_conf,
                      latency_producer_conf, latency_summary, machine_lines, make_log, median,
                      parse_pid, parse_target, percentile, proc_cpu_seconds, proc_rss_mb,
                      read_jsonl, read_meta, round_ratios, run_command, self_cpu_seconds,
                      write_report)

HEADER = struct.Struct(">II")  # producer index, sequence number
log = make_log("[kafka_bench_client]")


# --------------------------------------------------------------------------
# measurement helpers
# --------------------------------------------------------------------------

def machine_cpu_seconds():
    """CPU-seconds of the whole machine (all cores) from /proc/stat: busy, idle, irq+softirq."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal guest guest_nice (guest is inside user)
    busy = v[0] + v[1] + v[2] + v[5] + v[6] + (v[7] if len(v) > 7 else 0)
    idle = v[3] + v[4]
    return busy / CLK_TCK, idle / CLK_TCK, (v[5] + v[6]) / CLK_TCK


class Snapshot:
    def __init__(self, cpu_pids, client_pids, metrics_url):
        self.t = time.monotonic()
        self.cpu = cpu_seconds(cpu_pids)
        self.client = sum(proc_cpu_seconds(pid) for pid in client_pids) + self_cpu_seconds()
        self.machine, self.idle, self.irq = machine_cpu_seconds()
        self.bytes = gateway_bytes(metrics_url)

    def delta(self, start):
        return bytes_delta({
            "seconds": round(self.t - start.t, 4),
            "cpu": {k: round(self.cpu[k] - start.cpu[k], 3) for k in self.cpu},
            "client_cpu": round(self.client - start.client, 3),
            "machine_busy_cpu": round(self.machine - start.machine, 3),
            "machine_idle_cpu": round(self.idle - start.idle, 3),
            "machine_irq_cpu": round(self.irq - start.irq, 3),
        }, self.bytes, start.bytes)


# --------------------------------------------------------------------------
# clients
# --------------------------------------------------------------------------

def base_conf(bootstrap, client_id, errors):
    def on_error(err):
        # transient connection errors are retried by librdkafka; fatal ones end the run
        if err.fatal():
            errors.append(str(err))
            log("FATAL client error (%s): %s" % (client_id, err))
        else:
            log("client error (%s): %s" % (client_id, err))

    return kafka_conf(bootstrap, client_id, on_error)


def wait_topic(admin, topic, partitions, rf, timeout=60):
    deadline = time.monotonic() + timeout
    while True:
        md = admin.list_topics(topic=topic, timeout=10)
        tm = md.topics.get(topic)
        if tm is not None and tm.error is None and len(tm.partitions) == partitions and all(
                p.leader >= 0 and len(p.isrs) >= rf for p in tm.partitions.values()):
            return md
        if time.monotonic() > deadline:
            raise Failed("topic %s not ready (all leaders, full ISR) after %ds" % (topic, timeout))
        time.sleep(0.1)


def create_topic(bootstrap, topic, partitions, rf, errors):
    from confluent_kafka.admin import AdminClient, NewTopic
    admin = AdminClient(base_conf(bootstrap, "kgw-bench-admin", errors))
    fs = admin.create_topics([NewTopic(topic, partitions, rf)], request_timeout=60,
                             operation_timeout=60)
    fs[topic].result(timeout=60)
    wait_topic(admin, topic, partitions, rf)
    return admin


def cmd_wait_cluster(args):
    from confluent_kafka.admin import AdminClient
    errors = []
    admin = AdminClient(base_conf(args.bootstrap, "kgw-bench-wait", errors))
    deadline = time.monotonic() + args.timeout
    last = None
    while time.monotonic() < deadline:
        try:
            md = admin.list_topics(timeout=5)
            ids = sorted(md.brokers)
            if len(ids) >= args.brokers:
                out = {"kind": "cluster", "brokers": {str(b.id): "%s:%d" % (b.host, b.port)
                                                      for b in md.brokers.values()},
                       "controller_id": md.controller_id, "cluster_id": md.cluster_id}
                log("cluster ready: brokers %s, controller %s" % (ids, md.controller_id))
                return out
            last = "brokers %s" % ids
        except Exception as e:  # noqa: BLE001
            last = str(e)
        time.sleep(0.5)
    raise Failed("cluster at %s not ready after %ss (%s)" % (args.bootstrap, args.timeout, last))


# --------------------------------------------------------------------------
# run: child processes
# --------------------------------------------------------------------------

def expected_value(prefix, record_size, pidx, seq):
    head = HEADER.pack(pidx, seq) + prefix
    return head + b"x" * (record_size - len(head))


def producer_proc(cfg, k, pidxs, ready_q, go_ev, stop_ev, result_q):
    """One process driving len(pidxs) producers round-robin from one thread."""
    try:
        from confluent_kafka import Producer
        errors = []
        topic = cfg["topic"]
        prefix = topic.encode()
        size = cfg["record_size"]
        per = cfg["per_producer"]
        pad = b"x" * (size - HEADER.size - len(prefix))
        body = prefix + pad
        conf = {
            "acks": cfg["acks"],
            "linger.ms": cfg["linger_ms"],
            "sticky.partitioning.linger.ms": cfg["linger_ms"],
            "batch.size": 1048576,
            "batch.num.messages": 100000,
            "compression.type": "none",
            "queue.buffering.max.messages": 500000,
            "queue.buffering.max.kbytes": 65536,
            "enable.idempotence": cfg["acks"] == "all",
        }
        prods = []
        states = []
        for p in pidxs:
            st = {"ok": 0, "err": 0, "first": None}

            def on_delivery(err, _msg, st=st):
                if err is None:
                    st["ok"] += 1
                else:
                    st["err"] += 1
                    st["first"] = st["first"] or str(err)

            pr = Producer(dict(base_conf(cfg["bootstrap"], "kgw-bench-p%d-%s" % (p, cfg["path"]),
                                         errors), **conf))
            pr.list_topics(topic=topic, timeout=30)
            prods.append((p, pr, on_delivery))
            states.append(st)
        ready_q.put(("pready", k, os.getpid()))
        if not go_ev.wait(cfg["timeout"]):
            raise Failed("producer proc %d: no go signal" % k)
        pack = HEADER.pack
        for seq in range(per):
            for p, pr, cb in prods:
                v = pack(p, seq) + body
                while True:
                    try:
                        pr.produce(topic, v, on_delivery=cb)
                        break
                    except BufferError:
                        pr.poll(0.005)
                if seq & 255 == 0:
                    pr.poll(0)
        left = 0
        for _p, pr, _cb in prods:
            left += pr.flush(cfg["timeout"])
        t_end = time.monotonic()
        ok = sum(s["ok"] for s in states)
        err = sum(s["err"] for s in states)
        first = next((s["first"] for s in states if s["first"]), None)
        res = {"proc": k, "t_end": t_end, "acked": ok, "errors": err, "undelivered": left,
               "first_error": first, "fatal": errors[:3], "rss_mb": proc_rss_mb(os.getpid())}
        result_q.put(("pdone", k, res))
        stop_ev.wait(cfg["timeout"])
    except Exception as e:  # noqa: BLE001
        result_q.put(("fail", "producer proc %d" % k, repr(e)))


def consumer_proc(cfg, g, ready_q, go_ev, stop_ev, result_q):
    """One process = one consumer group of cfg['consumers_per_group'] consumers, one thread each."""
    try:
        from confluent_kafka import Consumer
        errors = []
        topic = cfg["topic"]
        prefix = topic.encode()
        size = cfg["record_size"]
        per = cfg["per_producer"]
        total = per * cfg["producers"]
        nparts = cfg["partitions"]
        seen = bytearray(total)
        lock = threading.Lock()
        st = {"distinct": 0, "dups": 0, "bad": 0, "bytes": 0, "checked": 0, "t_done": None,
              "msgs": 0, "consumer_errors": 0, "first_error": None}
        done = threading.Event()
        stop_threads = threading.Event()
        group = "%s-g%d" % (topic, g)
        consumers = []
        for i in range(cfg["consumers_per_group"]):
            consumers.append(Consumer(dict(base_conf(cfg["bootstrap"], "kgw-bench-g%d-c%d-%s" % (
                g, i, cfg["path"]), errors), **{
                "group.id": group,
                "auto.offset.reset": "earliest",
                "enable.auto.commit": True,
                "auto.commit.interval.ms": 1000,
                "heartbeat.interval.ms": 1000,
                "session.timeout.ms": 30000,
                "fetch.min.bytes": cfg["fetch_min_bytes"],
                "fetch.wait.max.ms": cfg["fetch_wait_ms"],
                "fetch.max.bytes": 52428800,
                "max.partition.fetch.bytes": 1048576,
                "queued.max.messages.kbytes": 16384,
                "enable.partition.eof": False,
            })))
        assigned = [0] * len(consumers)

        def work(i, c):
            c.subscribe([topic])
            check = 0
            while not stop_threads.is_set():
                msgs = c.consume(num_messages=2000, timeout=0.2)
                assigned[i] = len(c.assignment())
                if not msgs:
                    continue
                with lock:
                    for m in msgs:
                        e = m.error()
                        if e:
                            st["consumer_errors"] += 1
                            st["first_error"] = st["first_error"] or str(e)
                            continue
                        v = m.value()
                        st["msgs"] += 1
                        if len(v) != size or not v.startswith(prefix, HEADER.size):
                            st["bad"] += 1
                            continue
                        p, seq = HEADER.unpack_from(v)
                        if seq >= per or p >= cfg["producers"]:
                            st["bad"] += 1
                            continue
                        idx = p * per + seq
                        if seen[idx]:
                            st["dups"] += 1
                            continue
                        seen[idx] = 1
                        st["distinct"] += 1
                        st["bytes"] += len(v)
                        check += 1
                        if check >= 1000:
                            check = 0
                            st["checked"] += 1
                            if v != expected_value(prefix, size, p, seq):
                                st["bad"] += 1
                    if st["distinct"] >= total and st["t_done"] is None:
                        st["t_done"] = time.monotonic()
                        done.set()

        threads = [threading.Thread(target=work, args=(i, c), daemon=True)
                   for i, c in enumerate(consumers)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + cfg["timeout"]
        t_sub = time.monotonic()
        while not (sum(assigned) == nparts and all(assigned)):
            if errors:
                raise Failed("group %d: %s" % (g, errors[0]))
            if time.monotonic() > deadline:
                raise Failed("group %d: partitions never all assigned (%s)" % (g, assigned))
            time.sleep(0.05)
        ready_q.put(("cready", g, os.getpid(), round(time.monotonic() - t_sub, 2), list(assigned)))
        if not go_ev.wait(cfg["timeout"]):
            raise Failed("group %d: no go signal" % g)
        deadline = time.monotonic() + cfg["timeout"]
        while not done.wait(0.5):
            if errors:
                break
            if time.monotonic() > deadline:
                break
        with lock:
            res = dict(st)
        res.update({"group": g, "expected": total, "fatal": errors[:3], "assigned_at_end":
                    list(assigned), "rss_mb": proc_rss_mb(os.getpid())})
        result_q.put(("cdone", g, res))
        stop_ev.wait(cfg["timeout"])
        stop_threads.set()
        for t in threads:
            t.join(5)
        for c in consumers:
            try:
                c.close()
            except Exception:  # noqa: BLE001
                pass
    except Exception as e:  # noqa: BLE001
        result_q.put(("fail", "consumer group %d" % g, repr(e)))


# --------------------------------------------------------------------------
# run: parent
# --------------------------------------------------------------------------

def cmd_run(args):
    errors = []
    topic = "kbench-%s-r%d-%s" % (args.path, args.round, uuid.uuid4().hex[:8])
    nrec = max(args.producers, int(args.mb * 1e6) // args.record_size)
    per = nrec // args.producers
    nrec = per * args.producers
    total_bytes = nrec * args.record_size
    t_setup = time.monotonic()
    admin = create_topic(args.bootstrap, topic, args.partitions, args.rf, errors)
    t_topic = time.monotonic() - t_setup
    cfg = {
        "bootstrap": args.bootstrap, "path": args.path, "topic": topic,
        "record_size": args.record_size, "per_producer": per, "producers": args.producers,
        "partitions": args.partitions, "consumers_per_group": args.consumers_per_group,
        "acks": args.acks, "linger_ms": args.linger_ms, "timeout": args.timeout,
        "fetch_min_bytes": args.fetch_min_bytes, "fetch_wait_ms": args.fetch_wait_ms,
    }
    ctx = mp.get_context("spawn")
    ready_q, result_q = ctx.Queue(), ctx.Queue()
    go_ev, stop_ev = ctx.Event(), ctx.Event()
    procs = []
    for g in range(args.groups):
        procs.append(ctx.Process(target=consumer_proc, args=(cfg, g, ready_q, go_ev, stop_ev, result_q),
                                 daemon=True))
    split = [list(range(args.producers))[k::args.producer_procs] for k in range(args.producer_procs)]
    for k, pidxs in enumerate(split):
        procs.append(ctx.Process(target=producer_proc,
                                 args=(cfg, k, pidxs, ready_q, go_ev, stop_ev, result_q), daemon=True))
    for p in procs:
        p.start()
    client_pids = [p.pid for p in procs]
    try:
        # every group has all partitions, every producer connected
        need = args.groups + args.producer_procs
        readies = []
        deadline = time.monotonic() + args.timeout
        while len(readies) < need:
            try:
                readies.append(ready_q.get(timeout=1))
            except queue.Empty:
                pass
            try:
                m = result_q.get_nowait()
                raise Failed("%s failed during setup: %s" % (m[1], m[2:]))
            except queue.Empty:
                pass
            if any(not p.is_alive() for p in procs):
                raise Failed("a client process died during setup")
            if time.monotonic() > deadline:
                raise Failed("clients not ready after %ss (%d/%d)" % (args.timeout, len(readies), need))
        t_ready = time.monotonic() - t_setup
        group_join = [r[3] for r in readies if r[0] == "cready"]
        log("%s r%d: topic %s (%d partitions, RF %d) ready in %.1fs; %d groups x %d consumers "
            "assigned (join %.1f-%.1fs), %d producers in %d procs ready; producing %d x %d B = %.0f MB"
            % (args.path, args.round, topic, args.partitions, args.rf, t_topic, args.groups,
               args.consumers_per_group, min(group_join), max(group_join), args.producers,
               args.producer_procs, nrec, args.record_size, total_bytes / 1e6))
        s0 = Snapshot(args.cpu_pids, client_pids, args.metrics_url)
        go_ev.set()
        pres, cres = {}, {}
        deadline = time.monotonic() + args.timeout + 30
        while len(pres) < args.producer_procs or len(cres) < args.groups:
            try:
                m = result_q.get(timeout=1)
            except queue.Empty:
                if time.monotonic() > deadline:
                    raise Failed("run not finished after %ss: producers done %d/%d, groups done %d/%d"
                                 % (args.timeout, len(pres), args.producer_procs, len(cres), args.groups))
                if any(not p.is_alive() for p in procs):
                    raise Failed("a client process died during the run")
                continue
            if m[0] == "fail":
                raise Failed("%s: %s" % (m[1], m[2]))
            if m[0] == "pdone":
                pres[m[1]] = m[2]
            else:
                cres[m[1]] = m[2]
                if m[2]["t_done"] is None:
                    break  # a group gave up: stop here, the checks below report it
        s1 = Snapshot(args.cpu_pids, client_pids, args.metrics_url)
        rss = {name: proc_rss_mb(pid) for name, pid in args.cpu_pids}
    finally:
        stop_ev.set()
        for p in procs:
            p.join(15)
        for p in procs:
            if p.is_alive():
                p.kill()
                p.join(5)
    # checks
    problems = []
    acked = sum(r["acked"] for r in pres.values())
    for r in pres.values():
        if r["errors"] or r["undelivered"] or r["fatal"]:
            problems.append("producer proc %d: %d errors (first %s), %d undelivered, fatal %s"
                            % (r["proc"], r["errors"], r["first_error"], r["undelivered"], r["fatal"]))
    if acked != nrec:
        problems.append("%d of %d records acknowledged" % (acked, nrec))
    for g in range(args.groups):
        r = cres.get(g)
        if r is None:
            problems.append("group %d: no result" % g)
            continue
        if r["distinct"] != nrec or r["bad"] or r["fatal"] or r["consumer_errors"]:
            problems.append("group %d: %d of %d distinct records, %d bad, %d consumer errors (%s), fatal %s"
                            % (g, r["distinct"], nrec, r["bad"], r["consumer_errors"], r["first_error"],
                               r["fatal"]))
    if problems:
        raise Failed("; ".join(problems))
    delete_topic(admin, topic, 60, log)

    t_go = s0.t
    p_end = max(r["t_end"] for r in pres.values())
    c_end = max(r["t_done"] for r in cres.values())
    win = s1.delta(s0)
    consumed = sum(r["bytes"] for r in cres.values())
    out = {
        "kind": "run", "path": args.path, "round": args.round, "topic": topic,
        "partitions": args.partitions, "rf": args.rf, "acks": args.acks, "linger_ms": args.linger_ms,
        "fetch_min_bytes": args.fetch_min_bytes, "fetch_wait_ms": args.fetch_wait_ms,
        "producers": args.producers, "producer_procs": args.producer_procs, "groups": args.groups,
        "consumers_per_group": args.consumers_per_group, "record_size": args.record_size,
        "records": nrec, "bytes": total_bytes, "consumed_bytes": consumed,
        "produce_seconds": round(p_end - t_go, 4), "consume_seconds": round(c_end - t_go, 4),
        "produce_mb_s": round(total_bytes / 1e6 / (p_end - t_go), 2),
        "consume_mb_s": round(consumed / 1e6 / (c_end - t_go), 2),
        "window": win, "rss_mb": rss,
        "client_rss_mb": round(sum((r.get("rss_mb") or 0) for r in list(pres.values()) + list(cres.values())), 1),
        "group_join_s": group_join, "setup_s": round(t_ready, 2),
        "groups_check": [{k: cres[g][k] for k in ("distinct", "dups", "bad", "checked", "msgs")}
                         for g in range(args.groups)],
    }
    log("%s r%d: produce %.1f MB/s, consume %.1f MB/s (%.1fs), cpu %s, client %.1f, machine %.1f, "
        "dups %s" % (args.path, args.round, out["produce_mb_s"], out["consume_mb_s"],
                     out["consume_seconds"], win["cpu"], win["client_cpu"], win["machine_busy_cpu"],
                     [c["dups"] for c in out["groups_check"]]))
    return out


# --------------------------------------------------------------------------
# latency
# --------------------------------------------------------------------------

def cmd_latency(args):
    from confluent_kafka import Producer
    errors = []
    topic = "kbench-latency-%s" % uuid.uuid4().hex[:8]
    admin = create_topic(args.targets[0][1], topic, 1, args.rf, errors)
    targets = []
    for name, bootstrap in args.targets:
        producer = Producer(dict(base_conf(bootstrap, "kgw-bench-lat-%s" % name, errors),
                                 **latency_producer_conf()))
        producer.list_topics(topic=topic, timeout=10)
        targets.append({"name": name, "producer": producer, "topic": topic, "errors": [], "lat": []})
    interleaved_latency(targets, args.record_size, args.warmup, args.count, args.timeout)
    if errors:
        raise Failed("fatal client error: %s" % errors[0])
    delete_topic(admin, topic, 60, log)
    out = {"kind": "latency", "count": args.count, "warmup": args.warmup, "rf": args.rf, "paths": {}}
    for t in targets:
        out["paths"][t["name"]] = latency_summary(t, log)
    return out


# --------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------

PATH_LABEL = {"direct": "direct to the 3 brokers", "gateway": "through the gateway (plaintext)"}
PATHS = ["direct", "gateway"]


def cmd_report(args):
    rows = read_jsonl(args.results)
    meta = read_meta(args.meta, ints=("lat_count", "lat_warmup"), lists=("brokers",))
    runs = [r for r in rows if r["kind"] == "run" and r["round"] > 0]
    lat = [r for r in rows if r["kind"] == "latency"]
    rounds = sorted({r["round"] for r in runs})
    by = {p: [r for r in runs if r["path"] == p] for p in PATHS}
    brokers = meta["brokers"]  # e.g. ["kafka1", "kafka2", "kafka3"]
    first = runs[0] if runs else {}

    def moved(r):  # payload moved: produced once + consumed once per group
        return r["bytes"] + r["consumed_bytes"]

    def med(p, key):
        return median(r[key] for r in by[p])

    def ratio(p, key, base="direct"):
        rs = round_ratios(by[p], by[base], rounds, lambda r: r[key])
        return median(rs), rs

    def cpu_gb(p, fn, denom=moved):
        cpu = sum(fn(r["window"]) for r in by[p])
        nb = sum(denom(r) for r in by[p])
        return cpu / (nb / 1e9) if nb else None

    def brokers_cpu(w):
        return sum(w["cpu"][b] for b in brokers)

    def gw_cpu(w):
        return w["cpu"].get("gateway", 0.0)

    def total_cpu(w):
        return brokers_cpu(w) + gw_cpu(w) + w["client_cpu"]

    def fwd(r):
        return r["window"].get("gw_request_bytes", 0) + r["window"].get("gw_response_bytes", 0)

    L = []
    w = L.append
    w("# kafka-gateway benchmark: 3-broker Apache Kafka cluster, gateway vs direct (same run)")
    w("")
    L.extend(machine_lines(meta))
    w("- gateway: %s (%s); authorization on (allow-all policy for User:ANONYMOUS, every request "
      "checked), audit at the default level (admin) to a local file, plaintext listener with "
      "`broker_port_count = 3`, `node_id_base = 1`" % (meta["gateway_version"], meta["git_commit"]))
    w("- brokers: Apache Kafka %s, KRaft, 3 nodes each broker+controller (node ids 1-3), one JVM per "
      "node (%s), log dirs on local disk (%s); %s" % (meta["kafka_version"], meta["jvm_opts"],
                                                     meta["fs"], meta["java"]))
    w("- client: %s, %s processes per run"
      % (client_versions(), (first.get("producer_procs", 0) + first.get("groups", 0)) if first else "?"))
    if first:
        w("- workload per run: a fresh topic with **%d partitions, RF %d** (min.insync.replicas 2); "
          "**%d producers** (acks=%s%s, linger.ms=%s, batch.size 1 MiB, no compression, %d-byte "
          "records, no key: sticky partitioner) in %d processes, and **%d consumers in %d consumer "
          "groups** of %d (subscribe(), classic group protocol, range/roundrobin assignor, auto commit "
          "every 1 s) in %d processes: %d clients at once. The groups join and get every partition "
          "first; then the clock starts and the producers send %.0f MB in total (%d records) while "
          "every group consumes all of it (%.0f MB consumed)."
          % (first["partitions"], first["rf"], first["producers"], first["acks"],
             ", idempotent" if first["acks"] == "all" else "", meta["linger_ms"],
             first["record_size"], first["producer_procs"],
             first["groups"] * first["consumers_per_group"], first["groups"],
             first["consumers_per_group"], first["groups"],
             first["producers"] + first["groups"] * first["consumers_per_group"],
             first["bytes"] / 1e6, first["records"], first["consumed_bytes"] / 1e6))
    w("- mode: %s; %d rounds, each running both paths, path order rotated every round, after one "
      "unreported warm-up round (%s MB per path); latency: %d single-record produce+flush (acks=1) "
      "per path after %d warm-up records, on a 1-partition RF %s topic, paths interleaved record "
      "by record, no benchmark load running"
      % (meta["mode"], len(rounds), meta["warmup_mb"], meta["lat_count"], meta["lat_warmup"],
         meta["rf"]))
    w("- everything (clients, 3 JVMs, gateway) shares the same %s cores on loopback; load average "
      "(1/5/15 min) before -> after the measurements: %s" % (meta["nproc"], meta["loadavg"]))
    other = []
    for r in runs:
        x = r["window"]
        ours = sum(x["cpu"].values()) + x["client_cpu"] + x.get("machine_irq_cpu", 0.0)
        other.append(max(0.0, x["machine_busy_cpu"] - ours) / x["seconds"])
    if other and statistics.mean(other) > 0.1:
        w("- **shared machine**: during the measured windows, processes outside this benchmark kept "
          "%.2f of the %s cores busy on average (%.2f-%.2f per run), so the per-round ratios are "
          "noisy and the latency figures include waiting for a core; see the CPU table"
          % (statistics.mean(other), meta["nproc"], min(other), max(other)))
    w("")

    w("## Throughput and CPU (medians over rounds; ratios per round, then median)")
    w("")
    w("| path | produce MB/s | consume MB/s (all groups) | produce ratio vs direct | consume ratio vs direct "
      "| gateway CPU-s/GB | brokers CPU-s/GB (3 JVMs) | client CPU-s/GB | all CPU-s/GB | CPU-bound ratio |")
    w("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for p in PATHS:
        if not by[p]:
            continue
        rp = ratio(p, "produce_mb_s")[0] if p != "direct" else None
        rc = ratio(p, "consume_mb_s")[0] if p != "direct" else None
        tot, dtot = cpu_gb(p, total_cpu), cpu_gb("direct", total_cpu) if by["direct"] else None
        w("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            PATH_LABEL[p], fmt(med(p, "produce_mb_s")), fmt(med(p, "consume_mb_s")),
            fmt(rp, 3) if rp is not None else "-", fmt(rc, 3) if rc is not None else "-",
            fmt(cpu_gb(p, gw_cpu), 3) if p == "gateway" else "-",
            fmt(cpu_gb(p, brokers_cpu), 3), fmt(cpu_gb(p, lambda x: x["client_cpu"]), 3),
            fmt(tot, 3), fmt(dtot / tot, 3) if p != "direct" and tot and dtot else "-"))
    w("")
    w("GB here = payload moved: every record counted once when produced and once for each group "
      "that consumed it (%s x the produced volume). CPU-s = utime+stime from /proc/PID/stat (all "
      "threads) from the clock start to the moment the last group had every record. *all CPU-s/GB* "
      "adds clients, brokers and gateway; *CPU-bound ratio* = direct's all CPU-s/GB / the gateway "
      "path's: the throughput ratio to expect from CPU cost alone when the cores are saturated."
      % (1 + (first.get("groups", 0) if first else 0)))
    w("")
    if by["gateway"]:
        gb = sum(fwd(r) for r in by["gateway"]) / 1e9
        w("Per GB **forwarded** by the gateway (its own `/metrics`: request + response bytes of all "
          "APIs, which counts replicated data once and each group's fetches once): **%s CPU-s/GB** "
          "over %.2f GB forwarded." % (fmt(cpu_gb("gateway", gw_cpu, fwd), 3), gb))
        w("")

    w("### Where the CPU went (average cores busy over the measured window)")
    w("")
    w("| path | window s (median) | clients | brokers (3 JVMs) | gateway | kernel irq+softirq | "
      "other processes (not this benchmark) | whole machine busy | machine idle |")
    w("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for p in PATHS:
        if not by[p]:
            continue
        secs = sum(r["window"]["seconds"] for r in by[p])

        def cores(fn):
            return sum(fn(r["window"]) for r in by[p]) / secs

        irq = lambda x: x.get("machine_irq_cpu", 0.0)  # noqa: E731
        w("| %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            PATH_LABEL[p], fmt(statistics.median(r["window"]["seconds"] for r in by[p])),
            fmt(cores(lambda x: x["client_cpu"]), 2), fmt(cores(brokers_cpu), 2),
            fmt(cores(gw_cpu), 2) if p == "gateway" else "-", fmt(cores(irq), 2),
            fmt(cores(lambda x: max(0.0, x["machine_busy_cpu"] - total_cpu(x) - irq(x))), 2),
            fmt(cores(lambda x: x["machine_busy_cpu"]), 2),
            fmt(cores(lambda x: x["machine_idle_cpu"]), 2)))
    w("")
    w("Cores busy = CPU-seconds / window seconds, summed over the runs of the path. *Other "
      "processes* = the machine's busy time (/proc/stat) minus this benchmark's processes and the "
      "kernel's interrupt time: other work on a shared machine, which slows both paths alike only "
      "if it is steady.")
    w("")
    per_broker = []
    for p in PATHS:
        if by[p]:
            per_broker.append("%s: %s" % (p, ", ".join(
                "%s %s" % (b, fmt(cpu_gb(p, lambda x, b=b: x["cpu"][b]), 3)) for b in brokers)))
    w("Brokers' CPU-s/GB per JVM: %s." % "; ".join(per_broker))
    w("")

    w("<details><summary>per-round results</summary>")
    w("")
    w("| round | path (order) | produce MB/s | consume MB/s | produce s | all groups done s | "
      "group join s (min-max) | gateway CPU-s | brokers CPU-s | client CPU-s | duplicates per group |")
    w("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for rnd in rounds:
        rr = [r for r in runs if r["round"] == rnd]
        for i, r in enumerate(rr):
            wdw = r["window"]
            w("| %d | %s (%d) | %s | %s | %s | %s | %s-%s | %s | %s | %s | %s |" % (
                rnd, r["path"], i + 1, fmt(r["produce_mb_s"]), fmt(r["consume_mb_s"]),
                fmt(r["produce_seconds"], 2), fmt(r["consume_seconds"], 2),
                fmt(min(r["group_join_s"])), fmt(max(r["group_join_s"])),
                fmt(gw_cpu(wdw), 2) if r["path"] == "gateway" else "-", fmt(brokers_cpu(wdw), 2),
                fmt(wdw["client_cpu"], 2), "/".join(str(c["dups"]) for c in r["groups_check"])))
    w("")
    for p in ("produce_mb_s", "consume_mb_s"):
        rs = ratio("gateway", p)[1]
        if rs:
            w("- %s ratios per round: %s" % (p.split("_")[0], ", ".join("%.3f" % x for x in rs)))
    w("")
    w("</details>")
    w("")

    w("## Correctness")
    w("")
    allruns = [r for r in rows if r["kind"] == "run"]
    nrec = sum(r["records"] for r in allruns)
    ngroups = sum(r["groups"] for r in allruns)
    dups = sum(c["dups"] for r in allruns for c in r["groups_check"])
    checked = sum(c["checked"] for r in allruns for c in r["groups_check"])
    w("Every run (warm-up included, %d runs, %d records produced, %d group reads of a whole topic) "
      "passed: every record acknowledged; every group received every (producer, sequence) pair "
      "(one bit per record per group); every record had the right size and the run's topic name "
      "at the right offset; %d records (one in 1000 per group) compared byte for byte. Duplicates "
      "(re-delivery after a rebalance; counted, not an error): %d. A failure would have stopped the "
      "benchmark with an error." % (len(allruns), nrec, ngroups, checked, dups))
    w("")

    lp = {}
    for r in lat:
        for p, v in r["paths"].items():
            s = sorted(v["samples_us"])
            lp[p] = (percentile(s, 50), percentile(s, 90), percentile(s, 99), len(s))
    if lp:
        w("## Produce latency (acks=1, one record at a time, no benchmark load, paths interleaved)")
        w("")
        w("| path | samples | p50 µs | p90 µs | p99 µs | added p50 µs vs direct | added p99 µs |")
        w("|---|---:|---:|---:|---:|---:|---:|")
        for p in PATHS:
            if p in lp:
                a50 = lp[p][0] - lp["direct"][0] if p != "direct" and "direct" in lp else None
                a99 = lp[p][2] - lp["direct"][2] if p != "direct" and "direct" in lp else None
                w("| %s | %d | %s | %s | %s | %s | %s |" % (
                    PATH_LABEL[p], lp[p][3], fmt(lp[p][0], 0), fmt(lp[p][1], 0), fmt(lp[p][2], 0),
                    fmt(a50, 0) if a50 is not None else "-", fmt(a99, 0) if a99 is not None else "-"))
        w("")

    # Issue 13's targets compare the gateway with HAProxy in the same run (benches/results/latest.md);
    # this cluster has no HAProxy path, so its ratios are reported, not judged.
    w("## Summary (ratios reported; issue 13's targets are judged against HAProxy in latest.md)")
    w("")
    w("| measure | gateway vs direct |")
    w("|---|---:|")
    if by["gateway"] and by["direct"]:
        for key in ("produce_mb_s", "consume_mb_s"):
            w("| %s throughput ratio | %.3f |" % (key.split("_")[0], ratio("gateway", key)[0]))
        w("| gateway CPU-s per GB forwarded | %.3f |" % cpu_gb("gateway", gw_cpu, fwd))
    if "gateway" in lp and "direct" in lp:
        w("| added p50 / p99 latency | %+.0f / %+.0f µs |" % (
            lp["gateway"][0] - lp["direct"][0], lp["gateway"][2] - lp["direct"][2]))
    w("")
    w("Errors (client errors, missing or corrupt records, a process dying) fail the benchmark. On "
      "this machine the %s cores are shared by 50 clients, 3 JVMs and the gateway, so throughput is "
      "CPU-bound: read the ratios with the CPU table above. See benches/README.md (3-broker Kafka "
      "section) for method and caveats." % meta["nproc"])
    write_report("\n".join(L) + "\n", args.out)


# --------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)

    wc = sub.add_parser("wait-cluster")
    wc.add_argument("--bootstrap", required=True)
    wc.add_argument("--brokers", type=int, default=3)
    wc.add_argument("--timeout", type=float, default=120)

    r = sub.add_parser("run")
    r.add_argument("--bootstrap", required=True)
    r.add_argument("--path", required=True, help="label: direct or gateway")
    r.add_argument("--round", type=int, default=0, help="0 = warm-up, not reported")
    r.add_argument("--mb", type=float, required=True, help="MB produced in total per run")
    r.add_argument("--record-size", type=int, default=1024)
    r.add_argument("--partitions", type=int, default=48)
    r.add_argument("--rf", type=int, default=3)
    r.add_argument("--acks", default="all", choices=["all", "1"])
    r.add_argument("--linger-ms", type=int, default=5)
    r.add_argument("--fetch-min-bytes", type=int, default=1)
    r.add_argument("--fetch-wait-ms", type=int, default=500)
    r.add_argument("--producers", type=int, default=25)
    r.add_argument("--producer-procs", type=int, default=5)
    r.add_argument("--groups", type=int, default=5)
    r.add_argument("--consumers-per-group", type=int, default=5)
    r.add_argument("--timeout", type=float, default=300.0)
    r.add_argument("--cpu-pid", dest="cpu_pids", type=parse_pid, action="append", default=[],
                   help="NAME=PID whose CPU time to measure (repeatable)")
    r.add_argument("--metrics-url", help="gateway /metrics URL for forwarded bytes")

    lt = sub.add_parser("latency")
    lt.add_argument("--target", dest="targets", type=parse_target, action="append", required=True,
                    help="NAME=HOST:PORT, repeatable; the first creates the topic")
    lt.add_argument("--rf", type=int, default=3)
    lt.add_argument("--record-size", type=int, default=1024)
    lt.add_argument("--timeout", type=float, default=60.0)
    lt.add_argument("--count", type=int, default=2000)
    lt.add_argument("--warmup", type=int, default=200)

    rp = sub.add_parser("report")
    rp.add_argument("--results", required=True)
    rp.add_argument("--meta", required=True)
    rp.add_argument("--out")

    args = ap.parse_args()
    try:
        from confluent_kafka import KafkaException
    except ImportError as e:
        raise SystemExit("confluent-kafka not importable (run with $KGW_PYTHON): %s" % e)
    handler = {"wait-cluster": cmd_wait_cluster, "run": cmd_run, "latency": cmd_latency,
               "report": cmd_report}[args.cmd]
    return run_command(handler, args, log, args.cmd, (KafkaException,))


if __name__ == "__main__":
    sys.exit(main())
