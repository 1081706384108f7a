"""Helpers shared by the benchmark clients benches/bench_client.py (scripts/bench.sh),
benches/conns_client.py (scripts/bench-conns.sh) and benches/kafka_bench_client.py
(scripts/bench-kafka.sh). Each client imports it from its own directory.

Stdlib only at import time (conns_client.py runs without confluent-kafka); the Kafka helpers import
confluent_kafka when called.
"""

import argparse
import json
import os
import statistics
import sys
import time
import urllib.request

CLK_TCK = os.sysconf("SC_CLK_TCK")


class Failed(Exception):
    """A benchmark error: the client logs it and exits 1."""


def make_log(prefix):
    """log(*a) to stderr, each line starting with prefix, e.g. "[bench_client]"."""
    def log(*a):
        print(prefix, *a, file=sys.stderr, flush=True)
    return log


# --------------------------------------------------------------------------
# /proc readings
# --------------------------------------------------------------------------

def proc_cpu_seconds(pid):
    """utime + stime of a whole process (all threads), in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        data = f.read()
    # the command name (field 2) may contain spaces: split after its closing ')'
    fields = data[data.rindex(")") + 2:].split()
    # fields[0] is field 3 (state); utime, stime are fields 14, 15
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def cpu_seconds(cpu_pids):
    """{name: CPU seconds} of the (name, pid) pairs given with --cpu-pid."""
    return {name: proc_cpu_seconds(pid) for name, pid in cpu_pids}


def self_cpu_seconds():
    t = os.times()
    return t.user + t.system


def proc_rss_kb(pid="self"):
    """VmRSS of a process in kB, None if it is gone."""
    try:
        with open("/proc/%s/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def proc_rss_mb(pid):
    """VmRSS in MB (1024 kB), rounded to 0.1; None if the process is gone."""
    kb = proc_rss_kb(pid)
    return None if kb is None else round(kb / 1024.0, 1)


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


def bytes_delta(d, end, start):
    """Adds the gateway's forwarded bytes between two gateway_bytes() readings to d."""
    if end is not None:
        d["gw_request_bytes"] = end["request"] - start["request"]
        d["gw_response_bytes"] = end["response"] - start["response"]
    return d


# --------------------------------------------------------------------------
# command line
# --------------------------------------------------------------------------

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
# statistics
# --------------------------------------------------------------------------

def percentile(sorted_vals, pct):
    if not sorted_vals:
        return None
    k = (len(sorted_vals) - 1) * pct / 100.0
    lo = int(k)
    hi = min(lo + 1, len(sorted_vals) - 1)
    return sorted_vals[lo] + (sorted_vals[hi] - sorted_vals[lo]) * (k - lo)


def median(values):
    """statistics.median, None for no values."""
    values = list(values)
    return statistics.median(values) if values else None


def round_ratios(runs, base_runs, rounds, value):
    """[value(run) / value(base run) of the same round] for the rounds that have both."""
    rs = []
    for rnd in rounds:
        a = [r for r in runs if r["round"] == rnd]
        d = [r for r in base_runs if r["round"] == rnd]
        if a and d:
            rs.append(value(a[0]) / value(d[0]))
    return rs


# --------------------------------------------------------------------------
# Kafka clients (confluent-kafka)
# --------------------------------------------------------------------------

def kafka_conf(bootstrap, client_id, on_error):
    return {
        "bootstrap.servers": bootstrap,
        "client.id": client_id,
        "error_cb": on_error,
        "socket.nagle.disable": True,
    }


def delete_topic(admin, topic, timeout, log):
    # frees the broker's storage between runs; failure is only a warning
    try:
        admin.delete_topics([topic], operation_timeout=timeout,
                            request_timeout=timeout)[topic].result(timeout=timeout)
    except Exception as e:  # noqa: BLE001
        log("warning: delete topic %s failed: %s" % (topic, e))


def latency_producer_conf():
    return {"acks": "1", "linger.ms": 0, "enable.idempotence": False}


def interleaved_latency(targets, record_size, warmup, count, timeout):
    """targets: dicts with name, producer, topic, errors (list), lat (list). --warmup then --count
    single-record produce+flush per target, the targets interleaved record by record (the order
    rotates every iteration), so background load and broker drift hit every path alike. Appends
    each measured latency (µs) to the target's lat."""
    payload = b"l" * record_size
    k = len(targets)
    for i in range(warmup + count):
        for j in range(k):
            t = targets[(i + j) % k]
            errors = t["errors"]
            producer = t["producer"]
            t0 = time.perf_counter_ns()
            producer.produce(t["topic"], payload, on_delivery=lambda err, _m, e=errors: err and e.append(str(err)))
            left = producer.flush(timeout)
            dt = (time.perf_counter_ns() - t0) / 1000.0
            if left or errors:
                raise Failed("%s: latency record %d: %s" % (t["name"], i, errors[0] if errors else "not delivered"))
            if i >= warmup:
                t["lat"].append(round(dt, 1))


def latency_summary(t, log):
    """The JSON entry of one latency target: p50/p90/p99 and all samples (µs)."""
    s = sorted(t["lat"])
    log("%s: latency p50 %.0f µs, p99 %.0f µs" % (t["name"], percentile(s, 50), percentile(s, 99)))
    return {
        "p50_us": round(percentile(s, 50), 1), "p90_us": round(percentile(s, 90), 1),
        "p99_us": round(percentile(s, 99), 1), "samples_us": t["lat"],
    }


def client_versions():
    """'confluent-kafka X / librdkafka Y (Python Z)'."""
    import confluent_kafka
    return "confluent-kafka %s / librdkafka %s (Python %s)" % (
        confluent_kafka.version(), confluent_kafka.libversion()[0], sys.version.split()[0])


# --------------------------------------------------------------------------
# reports
# --------------------------------------------------------------------------

def read_jsonl(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def read_meta(path, ints=(), floats=(), bools=(), lists=()):
    """meta.tsv written by the scripts (bench-lib.sh meta): key<TAB>value a line; a JSON object is
    accepted too. The keys named in ints / floats / bools ("1" = true) / lists (comma-separated)
    are converted."""
    with open(path) as f:
        text = f.read()
    if text.lstrip().startswith("{"):
        return json.loads(text)
    meta = {}
    for line in text.splitlines():
        if line.strip():
            k, _, v = line.partition("\t")
            meta[k] = v
    for keys, conv in ((ints, int), (floats, float), (bools, lambda v: v == "1"),
                       (lists, lambda v: [x for x in v.split(",") if x])):
        for k in keys:
            if meta.get(k):
                meta[k] = conv(meta[k])
    return meta


def machine_lines(meta):
    """The date and machine lines of a report's header list."""
    return ["- date: %s" % meta["date"],
            "- machine: %s cores, %s, %s GiB RAM, kernel %s" % (meta["nproc"], meta["cpu_model"],
                                                               meta["mem_gib"], meta["kernel"])]


def fmt(v, nd=1, grouping=False):
    """v with nd decimals (thousands separated with grouping), "n/a" for None."""
    if v is None:
        return "n/a"
    return ("{:,.{}f}" if grouping else "{:.{}f}").format(v, nd)


def met(ok, yes="**met**", unknown="not measured"):
    if ok is None:
        return unknown
    return yes if ok else "**NOT met**"


def run_command(handler, args, log, what, errors=()):
    """Runs a subcommand: its result (a dict) as one JSON line on stdout and 0; nothing printed for
    None (report); a Failed or one of errors is logged as FAILED (what) and gives 1."""
    try:
        out = handler(args)
    except (Failed,) + tuple(errors) as e:
        log("FAILED (%s): %s" % (what, e))
        return 1
    if out is not None:
        print(json.dumps(out), flush=True)
    return 0


def write_report(text, out, stdout_end=""):
    """The report to stdout (followed by stdout_end) and, with out, to that file."""
    sys.stdout.write(text + stdout_end)
    sys.stdout.flush()
    if out:
        os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
        with open(out, "w") as f:
            f.write(text)
