#!/usr/bin/env python3
"""Soak workload for the gateway: scripts/soak.sh starts tansu and the gateway, then runs

  soak.py run     the mixed workload for --duration seconds against the gateway, sampling the
                  gateway process (RSS, open descriptors, threads, CPU) into --samples; writes the
                  counts, samples and the workload's own checks to --out (JSON)
  soak.py finish  after the gateway was stopped: checks its exit, the audit trail (verify, no gap,
                  records that match the gateway's own counters and the workload's actions), applies
                  the resource bounds, prints the summary and writes it as markdown

The workload (all as SCRAM-SHA-512 users of policies/users.toml, through the gateway only):
  producers      idempotent (acks=all), uniquely numbered records over three topics; every
                 acknowledged record is remembered with its partition and offset
  consumer group one permanent member plus one that joins and leaves every --rebalance-every s;
                 commits after processing (at least once), so every acknowledged record must be seen
  short-lived    every --connect-every s a new client connects, asks for metadata, disconnects
  admin          every --admin-every s: create a scratch topic, describe its config, change it
                 (IncrementalAlterConfigs), describe it again, list and describe the groups, delete it
  auth failures  every --authfail-every s: an unknown user, or carol with a wrong password (carol
                 reaches the per-name lockout and stays locked)
  denials        every --deny-every s, bob: produce to a data topic, create a topic, delete a
                 data topic; each must fail with TOPIC_AUTHORIZATION_FAILED
  policy reloads every --reload-every s one step of: grant bob Write on soak-toggle (every other
                 grant with SIGHUP, otherwise by the file's mtime), revoke it, write a broken policy
                 (the last good one must stay in force), restore; each step is confirmed by bob's
                 next produce to soak-toggle (or the failure counter), and its delay measured

Exit codes: 0 all checks passed, 1 a check failed, 2 usage, 3 the driver itself failed.
"""

import argparse
import collections
import gc
import json
import os
import re
import signal
import sys
import threading
import time
import traceback
import urllib.request

try:
    from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
    from confluent_kafka import libversion, version
    from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, NewTopic
except ImportError as e:  # pragma: no cover
    print("confluent-kafka not importable (use $KGW_PYTHON): %s" % e, file=sys.stderr)
    sys.exit(3)

DATA_TOPICS = ["soak-data-0", "soak-data-1", "soak-data-2"]
DATA_PARTITIONS = 3
TOGGLE_TOPIC = "soak-toggle"
GROUP = "soak-group"
PASSWORDS = {"alice": "alice-secret", "bob": "bob-secret", "carol": "carol-secret"}
TOGGLE_RULE = "p, User:bob, Topic, soak-toggle, Write, *, allow\n"
BROKEN_RULE = "p, User:bob, Topic\n"  # too few fields: the reload must fail and keep the last policy
# Errors a commit may meet while the group rebalances; the records are then consumed again.
REBALANCE_COMMIT_ERRORS = {
    KafkaError.REBALANCE_IN_PROGRESS,
    KafkaError.ILLEGAL_GENERATION,
    KafkaError.UNKNOWN_MEMBER_ID,
    KafkaError._NO_OFFSET,
    KafkaError._ASSIGNMENT_LOST,
    KafkaError._STATE,
}
AUTH_ERRORS = {KafkaError._AUTHENTICATION, KafkaError.SASL_AUTHENTICATION_FAILED}


def log(*a):
    print("[soak.py %s]" % time.strftime("%H:%M:%S"), *a, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# shared state
# --------------------------------------------------------------------------

class Stats:
    """Counters and unexpected errors, shared by the workload threads."""

    def __init__(self):
        self.lock = threading.Lock()
        self.counts = collections.Counter()
        self.errors = collections.Counter()  # unexpected errors: "where: message" -> count
        self.timings = collections.defaultdict(list)

    def inc(self, name, n=1):
        with self.lock:
            self.counts[name] += n

    def error(self, where, msg):
        msg = re.sub(r"\d{4,}", "N", str(msg))[:300]  # group similar messages
        with self.lock:
            self.errors["%s: %s" % (where, msg)] += 1
        log("UNEXPECTED %s: %s" % (where, msg))

    def timing(self, name, seconds):
        with self.lock:
            self.timings[name].append(seconds)


class Seen:
    """What the consumer group saw: (topic, partition, offset) -> record id, and how often."""

    def __init__(self):
        self.lock = threading.Lock()
        self.at = {}
        self.deliveries = 0

    def add(self, topic, partition, offset, rid):
        with self.lock:
            self.deliveries += 1
            key = (topic, partition, offset)
            prev = self.at.get(key)
            if prev is None:
                self.at[key] = rid
                return True
            return False  # delivered again (a rebalance before the commit)

    def count(self):
        with self.lock:
            return len(self.at)

    def snapshot(self):
        with self.lock:
            return dict(self.at), self.deliveries


def client_conf(args, user, password=None, **extra):
    conf = {
        "bootstrap.servers": args.bootstrap,
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanisms": "SCRAM-SHA-512",
        "sasl.username": user,
        "sasl.password": PASSWORDS.get(user, "") if password is None else password,
    }
    conf.update(extra)
    return conf


def error_cb_for(stats, where, expected=()):
    """librdkafka error callback: transport hiccups are logged, anything else is unexpected."""

    def cb(err):
        code = err.code()
        if code in expected:
            return
        if code in (KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN):
            # A connection the gateway closed (re-authentication, an incremental fetch session built
            # under an older policy, ...): librdkafka reconnects. Counted, not an error by itself: a
            # lost or duplicated record would show up in the checks.
            stats.inc("client_disconnects")
            log("%s: %s" % (where, err))
            return
        stats.error(where, "error_cb %s" % err)

    return cb


# --------------------------------------------------------------------------
# gateway process and metrics
# --------------------------------------------------------------------------

CLK_TCK = os.sysconf("SC_CLK_TCK")


def proc_sample(pid):
    """RSS (KiB), open descriptors, threads and CPU seconds of a process; None once it is gone."""
    try:
        with open("/proc/%d/status" % pid) as f:
            status = f.read()
        fds = len(os.listdir("/proc/%d/fd" % pid))
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    rss = int(re.search(r"^VmRSS:\s+(\d+)", status, re.M).group(1))
    threads = int(re.search(r"^Threads:\s+(\d+)", status, re.M).group(1))
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] == "Z":
        return None
    cpu = (int(fields[11]) + int(fields[12])) / CLK_TCK
    return {"rss_kib": rss, "fds": fds, "threads": threads, "cpu_s": round(cpu, 2)}


def http_get(addr, path, timeout=5):
    with urllib.request.urlopen("http://%s%s" % (addr, path), timeout=timeout) as r:
        return r.status, r.read().decode()


METRIC_LINE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})?\s+(\S+)$")
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text):
    """Prometheus text -> list of (name, {label: value}, float)."""
    out = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = METRIC_LINE.match(line)
        if not m:
            continue
        labels = dict(LABEL.findall(m.group(3) or ""))
        try:
            out.append((m.group(1), labels, float(m.group(4))))
        except ValueError:
            pass
    return out


def metric_sum(metrics, name, **want):
    return sum(v for n, labels, v in metrics if n == name and all(labels.get(k) == x for k, x in want.items()))


def scrape(args):
    try:
        return parse_metrics(http_get(args.admin, "/metrics")[1])
    except Exception as e:  # noqa: BLE001
        log("metrics scrape failed: %s" % e)
        return None


class Sampler(threading.Thread):
    """Samples the gateway process every --sample-every s into the CSV file (and memory)."""

    def __init__(self, args, t0, stats):
        super().__init__(name="sampler", daemon=True)
        self.args, self.t0, self.stats = args, t0, stats
        self.samples = []
        self.stop = threading.Event()
        self.gone = threading.Event()
        self.lock = threading.Lock()
        self.file = open(args.samples, "w")
        self.file.write("t_s,phase,rss_kib,fds,threads,cpu_s,connections_active\n")
        self.phase = "setup"

    def take(self, phase=None):
        s = proc_sample(self.args.gateway_pid)
        if s is None:
            if not self.gone.is_set():
                self.gone.set()
                self.stats.error("gateway", "process %d is gone" % self.args.gateway_pid)
            return None
        m = scrape(self.args)
        s["connections_active"] = int(metric_sum(m, "kafka_gateway_connections_active")) if m else -1
        s["t_s"] = round(time.monotonic() - self.t0, 1)
        s["phase"] = phase or self.phase
        with self.lock:
            self.samples.append(s)
            self.file.write("{t_s},{phase},{rss_kib},{fds},{threads},{cpu_s},{connections_active}\n".format(**s))
            self.file.flush()
        return s

    def run(self):
        while not self.stop.wait(self.args.sample_every):
            self.take()


# --------------------------------------------------------------------------
# workload parts
# --------------------------------------------------------------------------

class Part(threading.Thread):
    """A workload thread; an exception escaping it is an unexpected error, not a silent death."""

    def __init__(self, name, stats, fn):
        super().__init__(name=name, daemon=True)
        self.stats, self.fn = stats, fn

    def run(self):
        try:
            self.fn()
        except Exception as e:  # noqa: BLE001
            self.stats.error(self.name, "%s: %s" % (type(e).__name__, e))
            log(traceback.format_exc())


def wait_topic(admin, topic, present, timeout=30.0):
    deadline = time.monotonic() + timeout
    while True:
        tm = admin.list_topics(timeout=10).topics.get(topic)
        ok = (tm is not None and tm.error is None and len(tm.partitions) > 0) if present else tm is None
        if ok:
            return
        if time.monotonic() > deadline:
            raise RuntimeError("topic %s still %s after %.0fs" % (topic, "absent" if present else "present", timeout))
        time.sleep(0.2)


def setup_topics(args, stats):
    admin = AdminClient(client_conf(args, "alice", error_cb=error_cb_for(stats, "setup")))
    specs = [NewTopic(t, DATA_PARTITIONS, 1) for t in DATA_TOPICS] + [NewTopic(TOGGLE_TOPIC, 1, 1)]
    for topic, fut in admin.create_topics(specs, request_timeout=30, operation_timeout=30).items():
        try:
            fut.result(timeout=30)
        except KafkaException as e:
            if e.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise
    for t in DATA_TOPICS + [TOGGLE_TOPIC]:
        wait_topic(admin, t, present=True)


def producer_part(args, stats, idx, acked, stop, gone):
    """Idempotent producer: ~args.rate records/s, each with a unique id; remembers every ack."""

    def on_delivery(err, msg):
        if err is not None:
            stats.inc("produce_failed")
            stats.error("producer-%d" % idx, "delivery failed: %s" % err)
        else:
            acked[msg.key().decode()] = (msg.topic(), msg.partition(), msg.offset())

    def fn():
        p = Producer(client_conf(
            args, "alice",
            **{"client.id": "soak-producer-%d" % idx, "enable.idempotence": True, "acks": "all",
               "linger.ms": 20, "message.timeout.ms": 300000,
               "error_cb": error_cb_for(stats, "producer-%d" % idx)}))
        pad = "x" * max(0, args.record_bytes - 24)
        seq = 0
        interval = 1.0 / args.rate
        next_at = time.monotonic()
        while not stop.is_set():
            rid = "p%d-%09d" % (idx, seq)
            topic = DATA_TOPICS[seq % len(DATA_TOPICS)]
            while True:
                try:
                    p.produce(topic, key=rid.encode(), value=("%s|%s" % (rid, pad)).encode(), on_delivery=on_delivery)
                    break
                except BufferError:
                    p.poll(0.1)
            seq += 1
            p.poll(0)
            next_at += interval
            delay = next_at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            elif delay < -5:
                next_at = time.monotonic()  # far behind (a slow phase): do not burst to catch up
        wait = 5 if gone.is_set() else 120  # through a dead gateway nothing more will be delivered
        left = p.flush(wait)
        stats.inc("produced", seq)
        if left:
            stats.error("producer-%d" % idx, "%d records still undelivered %d s after the end" % (left, wait))

    return fn


class Member:
    """One consumer group member, consuming and committing (synchronously, after processing)."""

    def __init__(self, args, stats, seen, name):
        self.args, self.stats, self.seen, self.name = args, stats, seen, name
        self.stop = threading.Event()
        self.thread = Part(name, stats, self.loop)

    def start(self):
        self.thread.start()
        return self

    def close(self):
        self.stop.set()
        self.thread.join(60)
        if self.thread.is_alive():
            self.stats.error(self.name, "did not close within 60 s")

    def loop(self):
        stats = self.stats

        def on_assign(_c, parts):
            stats.inc("assignments")
            log("%s assigned %d partition(s)" % (self.name, len(parts)))

        def on_revoke(_c, parts):
            stats.inc("revocations")

        c = Consumer(client_conf(
            self.args, "alice",
            **{"client.id": self.name, "group.id": GROUP, "auto.offset.reset": "earliest",
               "enable.auto.commit": False, "session.timeout.ms": 6000, "heartbeat.interval.ms": 1000,
               "error_cb": error_cb_for(stats, self.name)}))
        c.subscribe(DATA_TOPICS, on_assign=on_assign, on_revoke=on_revoke)
        try:
            while not self.stop.is_set():
                msgs = c.consume(num_messages=500, timeout=0.5)
                got = 0
                for m in msgs:
                    if m.error():
                        if m.error().code() != KafkaError._PARTITION_EOF:
                            stats.error(self.name, "consume: %s" % m.error())
                        continue
                    got += 1
                    rid = (m.key() or b"").decode()
                    if not self.seen.add(m.topic(), m.partition(), m.offset(), rid):
                        stats.inc("redelivered")
                if got:
                    try:
                        c.commit(asynchronous=False)
                        stats.inc("commits")
                    except KafkaException as e:
                        if e.args[0].code() in REBALANCE_COMMIT_ERRORS:
                            stats.inc("commits_lost_to_rebalance")
                        else:
                            stats.error(self.name, "commit: %s" % e)
        finally:
            c.close()


def churn_part(args, stats, seen, members, stop):
    """A second member joins, stays --rebalance-every s, leaves, and so on."""

    def fn():
        n = 0
        while not stop.wait(args.rebalance_every):
            m = Member(args, stats, seen, "soak-consumer-churn-%d" % n).start()
            members.append(m)
            stats.inc("member_joins")
            n += 1
            stop.wait(args.rebalance_every)
            m.close()
            members.remove(m)
            stats.inc("member_leaves")

    return fn


def check_retention(admin, topic, want):
    res = admin.describe_configs([ConfigResource(ConfigResource.Type.TOPIC, topic)], request_timeout=30)
    entry = list(res.values())[0].result(timeout=30).get("retention.ms")
    if entry is None or entry.value != want:
        raise RuntimeError("DescribeConfigs of %s: retention.ms=%r, expected %s" % (topic, entry and entry.value, want))


def admin_part(args, stats, scratch_topics, stop):
    """Topic and group administration as alice on one long-lived admin client."""

    def fn():
        admin = AdminClient(client_conf(args, "alice", **{"client.id": "soak-admin",
                                                          "error_cb": error_cb_for(stats, "admin")}))
        n = 0
        while not stop.wait(args.admin_every):
            name = "soak-scratch-%d" % n
            n += 1
            t = time.monotonic()
            try:
                fs = admin.create_topics([NewTopic(name, 2, 1, config={"retention.ms": "600000"})],
                                         request_timeout=30, operation_timeout=30)
                fs[name].result(timeout=30)
                scratch_topics.append(name)
                wait_topic(admin, name, present=True)
                check_retention(admin, name, "600000")
                # (tansu 0.6 has neither CreatePartitions nor the old AlterConfigs)
                res = admin.incremental_alter_configs([ConfigResource(
                    ConfigResource.Type.TOPIC, name, incremental_configs=[
                        ConfigEntry("retention.ms", "300000", incremental_operation=AlterConfigOpType.SET)])],
                    request_timeout=30)
                list(res.values())[0].result(timeout=30)
                check_retention(admin, name, "300000")
                listed = admin.list_consumer_groups(request_timeout=30).result(timeout=30)
                if GROUP not in {g.group_id for g in listed.valid}:
                    stats.error("admin", "ListGroups does not show %s" % GROUP)
                admin.describe_consumer_groups([GROUP], request_timeout=30)[GROUP].result(timeout=30)
                fs = admin.delete_topics([name], request_timeout=30, operation_timeout=30)
                fs[name].result(timeout=30)
                wait_topic(admin, name, present=False)
                stats.inc("admin_cycles")
                stats.timing("admin_cycle_s", time.monotonic() - t)
            except Exception as e:  # noqa: BLE001
                stats.error("admin", "%s: %s" % (name, e))

    return fn


def short_lived_part(args, stats, stop):
    """Connection churn: a new client every --connect-every s, one metadata request, gone."""

    def fn():
        while not stop.wait(args.connect_every):
            admin = AdminClient(client_conf(args, "alice", **{"client.id": "soak-short",
                                                              "error_cb": error_cb_for(stats, "short")}))
            md = admin.list_topics(timeout=30)
            if not set(DATA_TOPICS).issubset(md.topics):
                stats.error("short", "Metadata without the data topics: %s" % sorted(md.topics))
            stats.inc("short_lived_clients")
            del admin

    return fn


def expect_login_failure(args, stats, user, password):
    """One client with bad credentials: the login must fail (and nothing else must happen)."""
    failed = threading.Event()

    def cb(err):
        if err.code() in AUTH_ERRORS:
            failed.set()
        elif err.code() not in (KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN):
            stats.error("authfail", "error_cb %s" % err)

    # librdkafka retries a failed login about once a second: the client is dropped as soon as it
    # reports the failure, so each client usually makes one or two attempts.
    admin = AdminClient(client_conf(args, user, password, **{"client.id": "soak-authfail", "error_cb": cb}))
    admin.describe_cluster(request_timeout=10)  # a request, so that the client connects
    deadline = time.monotonic() + 10
    while not failed.is_set() and time.monotonic() < deadline:
        admin.poll(0.1)
    if failed.is_set():
        stats.inc("auth_failures_seen")
    else:
        try:
            admin.list_topics(timeout=1)
            stats.error("authfail", "%s logged in with a wrong password" % user)
        except KafkaException:
            stats.error("authfail", "%s: no authentication error reported within 10 s" % user)
    del admin


def authfail_part(args, stats, stop):
    def fn():
        n = 0
        while not stop.wait(args.authfail_every):
            if n % 2 == 0:
                expect_login_failure(args, stats, "mallory-%d" % n, "guess-%d" % n)  # unknown user
            else:
                expect_login_failure(args, stats, "carol", "not-carols-password")  # wrong password
            stats.inc("auth_failure_clients")
            n += 1

    return fn


def bob_produce(args, stats, topic, where):
    """bob produces one record; returns the delivery error code (None when it was written)."""
    result = {}

    def on_delivery(err, _msg):
        result["err"] = err

    p = Producer(client_conf(args, "bob", **{
        "client.id": "soak-bob", "enable.idempotence": False, "acks": "1", "retries": 0,
        "message.timeout.ms": 15000, "error_cb": error_cb_for(stats, where, expected=(KafkaError.TOPIC_AUTHORIZATION_FAILED,))}))
    p.produce(topic, key=b"bob", value=b"bob was here", on_delivery=on_delivery)
    left = p.flush(20)
    del p
    if left or "err" not in result:
        stats.error(where, "bob's produce to %s got no delivery report" % topic)
        return "none"
    err = result["err"]
    return None if err is None else err.code()


def expect_denied(stats, what, fn):
    try:
        fn()
    except KafkaException as e:
        if e.args[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED:
            stats.inc("denials_seen")
            return
        stats.error("deny", "%s: %s" % (what, e))
        return
    stats.error("deny", "%s was allowed" % what)


def deny_part(args, stats, stop):
    """bob tries what the policy denies him: every attempt must be refused with error 29."""

    def fn():
        admin = AdminClient(client_conf(args, "bob", **{"client.id": "soak-bob-admin",
                                                        "error_cb": error_cb_for(stats, "deny")}))
        n = 0
        while not stop.wait(args.deny_every):
            topic = DATA_TOPICS[n % len(DATA_TOPICS)]
            code = bob_produce(args, stats, topic, "deny")
            if code == KafkaError.TOPIC_AUTHORIZATION_FAILED:
                stats.inc("denials_seen")
            else:
                stats.error("deny", "bob's produce to %s: %s" % (topic, "allowed" if code is None else code))
            name = "soak-bob-%d" % n
            expect_denied(stats, "bob creating %s" % name, lambda: admin.create_topics(
                [NewTopic(name, 1, 1)], request_timeout=30, operation_timeout=30)[name].result(timeout=30))
            expect_denied(stats, "bob deleting %s" % topic, lambda: admin.delete_topics(
                [topic], request_timeout=30, operation_timeout=30)[topic].result(timeout=30))
            stats.inc("deny_attempts", 3)
            n += 1

    return fn


def reload_part(args, stats, base_policy, stop):
    """Edits the policy file in the run directory; each step waits until the gateway applies it."""

    def write(text):
        tmp = args.policy + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, args.policy)

    def wait_until(what, check, timeout=20.0):
        t = time.monotonic()
        while time.monotonic() - t < timeout:
            if check():
                stats.timing("reload_applied_s", time.monotonic() - t)
                return True
            time.sleep(0.5)
        stats.error("reload", "%s not in force after %.0f s" % (what, timeout))
        return False

    def policy_failures():
        m = scrape(args)
        return metric_sum(m, "kafka_gateway_reloads_total", file="policy", result="failure") if m else -1

    def fn():
        step = 0
        grants = 0
        while not stop.wait(args.reload_every):
            kind = ("grant", "revoke", "broken", "restore")[step % 4]
            step += 1
            if kind == "grant":
                write(base_policy + TOGGLE_RULE)
                if grants % 2 == 1:
                    os.kill(args.gateway_pid, signal.SIGHUP)
                    stats.inc("sighups")
                grants += 1
                wait_until("grant", lambda: bob_produce(args, stats, TOGGLE_TOPIC, "reload") is None)
            elif kind == "revoke":
                write(base_policy)
                wait_until("revoke", lambda: bob_produce(args, stats, TOGGLE_TOPIC, "reload")
                           == KafkaError.TOPIC_AUTHORIZATION_FAILED)
            elif kind == "broken":
                before = policy_failures()
                write(base_policy + BROKEN_RULE)
                if wait_until("broken policy refused", lambda: policy_failures() > before):
                    # the last good policy (no grant) is still in force
                    if bob_produce(args, stats, TOGGLE_TOPIC, "reload") != KafkaError.TOPIC_AUTHORIZATION_FAILED:
                        stats.error("reload", "after a broken reload bob's grant is back")
            else:
                write(base_policy)
            stats.inc("reload_steps")
            stats.inc("reload_" + kind)
            log("policy step %s done" % kind)
        write(base_policy)

    return fn


# --------------------------------------------------------------------------
# verification
# --------------------------------------------------------------------------

def read_back_log(args, stats):
    """Reads every data partition from the start without a group: record id -> [(t, p, o)]."""
    c = Consumer(client_conf(args, "alice", **{
        "client.id": "soak-verify", "group.id": "soak-verify", "enable.auto.commit": False,
        "auto.offset.reset": "earliest", "enable.partition.eof": True,
        "error_cb": error_cb_for(stats, "verify")}))
    parts = []
    # Kept for the report: a record missing from the read-back below the low watermark was
    # removed (or the broker reports a wrong earliest offset), not skipped by the reader.
    stats.watermarks = {}
    for t in DATA_TOPICS:
        for p in range(DATA_PARTITIONS):
            lo, hi = c.get_watermark_offsets(TopicPartition(t, p), timeout=30)
            stats.watermarks[(t, p)] = (lo, hi)
            if hi > lo:
                parts.append((t, p, lo, hi))
    c.assign([TopicPartition(t, p, lo) for t, p, lo, _ in parts])
    remaining = {(t, p): hi for t, p, _, hi in parts}
    where = collections.defaultdict(list)
    deadline = time.monotonic() + 180
    while remaining and time.monotonic() < deadline:
        for m in c.consume(num_messages=5000, timeout=1.0):
            if m.error():
                if m.error().code() == KafkaError._PARTITION_EOF:
                    tp = (m.topic(), m.partition())
                    if tp in remaining and m.offset() >= remaining[tp]:
                        del remaining[tp]
                    continue
                stats.error("verify", "consume: %s" % m.error())
                continue
            tp = (m.topic(), m.partition())
            where[(m.key() or b"").decode()].append((m.topic(), m.partition(), m.offset()))
            if tp in remaining and m.offset() + 1 >= remaining[tp]:
                del remaining[tp]
    c.close()
    if remaining:
        stats.error("verify", "log read-back incomplete: %s" % sorted(remaining))
    stats.below_low = probe_below_low_watermark(args, stats)
    return where


def probe_below_low_watermark(args, stats):
    """For partitions whose low watermark is above 0: what a fetch from offset 0 returns. Records
    there mean the broker misreports its earliest offset; an out-of-range error means it removed
    them. Only for the report of lost records (the soak never deletes records)."""
    out = {}
    for (t, p), (lo, _) in getattr(stats, "watermarks", {}).items():
        if lo <= 0:
            continue
        c = Consumer(client_conf(args, "alice", **{
            "client.id": "soak-probe", "group.id": "soak-probe", "enable.auto.commit": False,
            "auto.offset.reset": "error", "error_cb": lambda e: None}))
        c.assign([TopicPartition(t, p, 0)])
        seen, err = [], None
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not seen and err is None:
            for m in c.consume(num_messages=20, timeout=1.0):
                if m.error():
                    err = str(m.error())
                    break
                seen.append([m.offset(), (m.key() or b"").decode(errors="replace")])
        c.close()
        out["%s-%d" % (t, p)] = {"low": lo, "records_from_0": seen[:10], "error": err}
    return out


def summarize_samples(samples, duration):
    """Baseline (before any client), warm (first sample after 20% of the run), max under load (the
    read-back of the whole log at the end is reported apart: its large Fetch responses are held whole
    for a moment), end (every client gone)."""
    load = [s for s in samples if s["phase"] in ("load", "drain")]
    baseline = next((s for s in samples if s["phase"] == "baseline"), None)
    warm = next((s for s in load if s["t_s"] >= 0.2 * duration), None)
    end = next((s for s in reversed(samples) if s["phase"] == "end"), None)
    after_warm = [s for s in load if warm and s["t_s"] >= warm["t_s"]]
    out = {"baseline": baseline, "warm": warm, "end": end}
    readback = [s["rss_kib"] for s in samples if s["phase"] == "readback"]
    if readback:
        out["rss_readback_max_kib"] = max(readback)
    if after_warm:
        out["rss_max_kib"] = max(s["rss_kib"] for s in after_warm)
        out["fds_max"] = max(s["fds"] for s in after_warm)
        out["threads_max"] = max(s["threads"] for s in after_warm)
        out["connections_max"] = max(s["connections_active"] for s in after_warm)
        # least-squares slope of RSS over the loaded part after warm-up, in MiB per minute
        xs = [s["t_s"] for s in after_warm]
        ys = [s["rss_kib"] / 1024 for s in after_warm]
        if len(xs) >= 3 and max(xs) > min(xs):
            mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
            sxx = sum((x - mx) ** 2 for x in xs)
            out["rss_slope_mib_per_min"] = round(60 * sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx, 3)
    if samples:
        out["fds_overall_max"] = max(s["fds"] for s in samples)
    return out


def cmd_run(args):
    stats = Stats()
    t0 = time.monotonic()
    sampler = Sampler(args, t0, stats)
    base = sampler.take("baseline")
    if base is None:
        raise SystemExit("gateway process %d not found" % args.gateway_pid)
    with open(args.policy) as f:
        base_policy = f.read()
    log("baseline: %s" % base)
    sampler.phase = "load"
    sampler.start()

    setup_topics(args, stats)
    t_load = time.monotonic()
    sampler.t0 = t_load  # sample times count from the start of the load
    stop_load = threading.Event()
    seen = Seen()
    acked = [dict() for _ in range(args.producers)]
    members = []
    scratch_topics = []
    permanent = Member(args, stats, seen, "soak-consumer-0").start()
    parts = [Part("producer-%d" % i, stats, producer_part(args, stats, i, acked[i], stop_load, sampler.gone))
             for i in range(args.producers)]
    parts += [
        Part("churn", stats, churn_part(args, stats, seen, members, stop_load)),
        Part("admin", stats, admin_part(args, stats, scratch_topics, stop_load)),
        Part("short", stats, short_lived_part(args, stats, stop_load)),
        Part("authfail", stats, authfail_part(args, stats, stop_load)),
        Part("deny", stats, deny_part(args, stats, stop_load)),
        Part("reload", stats, reload_part(args, stats, base_policy, stop_load)),
    ]
    for p in parts:
        p.start()
    next_report = time.monotonic() + 30
    while time.monotonic() - t_load < args.duration and not sampler.gone.is_set():
        time.sleep(1)
        if time.monotonic() >= next_report:
            next_report += 30
            s = sampler.samples[-1] if sampler.samples else {}
            log("t=%.0fs acked=%d seen=%d rss=%s KiB fds=%s errors=%d" % (
                time.monotonic() - t_load, sum(len(a) for a in acked), seen.count(),
                s.get("rss_kib"), s.get("fds"), sum(stats.errors.values())))
    t_load_end = time.monotonic()
    log("load phase over after %.0f s; stopping the load, draining" % (t_load_end - t_load))
    sampler.phase = "drain"
    stop_load.set()
    for p in parts:
        p.join(180)
        if p.is_alive():
            stats.error(p.name, "still running 180 s after the end of the load")

    # Drain: the permanent member must come to see every acknowledged record.
    all_acked = {}
    for a in acked:
        all_acked.update(a)
    want = {v for v in all_acked.values()}
    t_drain = time.monotonic()
    gone = sampler.gone.is_set()  # nothing more to learn through a dead gateway
    while not gone and time.monotonic() - t_drain < args.drain_timeout:
        at, _ = seen.snapshot()
        if want.issubset(at.keys()):
            break
        time.sleep(1)
    drain_s = time.monotonic() - t_drain
    permanent.close()
    for m in list(members):
        m.close()
    at, deliveries = seen.snapshot()

    # Loss: an acknowledged record the group never saw at its offset (or saw another record there).
    lost = [rid for rid, tpo in all_acked.items() if at.get(tpo) != rid]
    sampler.phase = "readback"
    where = {} if gone else read_back_log(args, stats)
    sampler.take()  # the read-back can be shorter than the sampling interval
    log_dups = {rid: locs for rid, locs in where.items() if rid.startswith("p") and len(locs) > 1}
    missing_in_log = [rid for rid, tpo in all_acked.items() if tpo not in where.get(rid, [])]
    unacked_in_log = [rid for rid in where if rid.startswith("p") and rid not in all_acked]

    # Back to idle: every client is gone, the gateway must return to its baseline.
    gc.collect()
    sampler.phase = "settle"
    t_idle = time.monotonic()
    conns = None
    while time.monotonic() - t_idle < 30:
        m = scrape(args)
        conns = int(metric_sum(m, "kafka_gateway_connections_active")) if m else None
        if conns == 0:
            break
        time.sleep(0.5)
    time.sleep(args.settle)
    sampler.stop.set()
    sampler.join(10)
    end = sampler.take("end")
    health = None
    try:
        health = http_get(args.admin, "/healthz")[0]
    except Exception as e:  # noqa: BLE001
        health = str(e)

    with stats.lock:
        counts = dict(stats.counts)
        errors = dict(stats.errors)
        timings = {k: {"n": len(v), "max": round(max(v), 2), "mean": round(sum(v) / len(v), 2)}
                   for k, v in stats.timings.items() if v}
    res = summarize_samples(sampler.samples, args.duration)
    result = {
        "duration_s": args.duration,
        "load_seconds": round(t_load_end - t_load, 1),
        "drain_seconds": round(drain_s, 1),
        "rate_per_producer": args.rate,
        "producers": args.producers,
        "record_bytes": args.record_bytes,
        "counts": counts,
        "acked": len(all_acked),
        "consumed_distinct": len(at),
        "deliveries": deliveries,
        "lost": len(lost),
        "lost_examples": sorted(lost)[:10],
        # Where each of the first lost records really is: acknowledged at, seen by the group at that
        # offset, found in the log at. Tells a wrong offset in an acknowledgement (the record is in the
        # log elsewhere) from a record the log does not hold.
        "lost_detail": [{"id": rid, "acked_at": list(all_acked[rid]), "group_saw_there": at.get(all_acked[rid]),
                         "in_log_at": [list(l) for l in where.get(rid, [])],
                         # The partition's (low, high) watermarks when read back, and the lowest
                         # offset the group saw in it.
                         "watermarks": list(getattr(stats, "watermarks", {}).get(tuple(all_acked[rid][:2]), ())),
                         "group_first_offset": min((o for (t, p, o) in at if (t, p) == tuple(all_acked[rid][:2])),
                                                   default=None),
                         # What a fetch from offset 0 of that partition returned (records: the
                         # broker misreports its earliest offset; an error: it removed them).
                         "from_offset_0": getattr(stats, "below_low", {}).get(
                             "%s-%d" % tuple(all_acked[rid][:2]))}
                        for rid in sorted(set(lost) | set(missing_in_log))[:10]],
        "log_duplicates": len(log_dups),
        "log_duplicate_examples": dict(list(log_dups.items())[:5]),
        "missing_in_log": len(missing_in_log),
        "unacked_in_log": len(unacked_in_log),
        "scratch_topics": scratch_topics,
        "connections_active_at_end": conns,
        "healthz": health,
        "errors": errors,
        "timings": timings,
        "resources": res,
        "gateway_alive_at_end": end is not None,
        "versions": {"confluent_kafka": version()[0] if isinstance(version(), tuple) else version(),
                     "librdkafka": libversion()[0]},
    }
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1, default=str)
    log("results in %s" % args.out)
    return 0


# --------------------------------------------------------------------------
# finish: audit and bounds, summary
# --------------------------------------------------------------------------

def mib(kib):
    return "%.1f" % (kib / 1024.0) if isinstance(kib, (int, float)) else "-"


def cmd_finish(args):
    checks = []  # (name, ok, detail)

    def check(name, ok, detail):
        checks.append((name, bool(ok), detail))

    try:
        with open(args.results) as f:
            r = json.load(f)
    except (OSError, ValueError) as e:
        r = None
        check("workload driver finished", False, "no results: %s (see workload.log)" % e)
    with open(args.metrics) as f:
        metrics = parse_metrics(f.read())
    counts = (r or {}).get("counts", {})
    res = (r or {}).get("resources", {})

    # -------- the workload's own checks
    if r:
        check("no unexpected client error", not r["errors"],
              "%d distinct: %s" % (len(r["errors"]), "; ".join("%s (x%d)" % kv for kv in list(r["errors"].items())[:5]))
              if r["errors"] else "none")
        check("no lost record", r["lost"] == 0 and r["missing_in_log"] == 0 and r["acked"] > 0,
              "%d acknowledged, %d not seen by the group at their offset, %d not in the log at their offset"
              % (r["acked"], r["lost"], r["missing_in_log"])
              + ("; first: %s" % json.dumps(r.get("lost_detail", [])[:5]) if r["lost"] or r["missing_in_log"] else ""))
        check("no duplicate in the log", r["log_duplicates"] == 0,
              "%d record ids written more than once" % r["log_duplicates"])
        check("every produced record acknowledged", counts.get("produced", 0) == r["acked"],
              "%d produced, %d acknowledged" % (counts.get("produced", 0), r["acked"]))
        check("group membership changed", counts.get("member_joins", 0) >= 1 and counts.get("member_leaves", 0) >= 1,
              "%d joins, %d leaves, %d assignments" % (counts.get("member_joins", 0), counts.get("member_leaves", 0),
                                                        counts.get("assignments", 0)))
        check("admin operations", counts.get("admin_cycles", 0) >= 1, "%d cycles" % counts.get("admin_cycles", 0))
        check("authentication failures refused", counts.get("auth_failures_seen", 0) == counts.get("auth_failure_clients", -1) > 0,
              "%d clients with bad credentials, %d refused" % (counts.get("auth_failure_clients", 0), counts.get("auth_failures_seen", 0)))
        check("denied operations refused", counts.get("denials_seen", 0) == counts.get("deny_attempts", -1) > 0,
              "%d attempts, %d refused with error 29" % (counts.get("deny_attempts", 0), counts.get("denials_seen", 0)))
        check("policy reloads applied", counts.get("reload_grant", 0) >= 1 and counts.get("reload_revoke", 0) >= 1,
              "%d grants, %d revokes, %d broken, %d SIGHUP" % (counts.get("reload_grant", 0), counts.get("reload_revoke", 0),
                                                            counts.get("reload_broken", 0), counts.get("sighups", 0)))
        check("gateway alive through the run", r["gateway_alive_at_end"] and r["healthz"] == 200,
              "healthz %s" % r["healthz"])
        check("no connection left open", r["connections_active_at_end"] == 0,
              "connections_active %s after the clients closed" % r["connections_active_at_end"])

        # -------- resource bounds
        base, warm, end = res.get("baseline"), res.get("warm"), res.get("end")
        if base and warm and end:
            growth = end["rss_kib"] - warm["rss_kib"]
            check("RSS growth after warm-up", growth <= args.rss_bound_mib * 1024,
                  "%s MiB (warm %s -> end %s), bound %d MiB" % (
                      mib(growth), mib(warm["rss_kib"]), mib(end["rss_kib"]), args.rss_bound_mib))
            peak = res.get("rss_max_kib", 0) - warm["rss_kib"]
            check("RSS peak under load", peak <= args.rss_bound_mib * 1024,
                  "%s MiB above warm (max %s), bound %d MiB" % (mib(peak), mib(res.get("rss_max_kib")), args.rss_bound_mib))
            check("descriptors back to baseline", end["fds"] <= base["fds"] + args.fd_slack,
                  "baseline %d, max %d, end %d, allowed baseline + %d" % (base["fds"], res.get("fds_max", -1), end["fds"], args.fd_slack))
        else:
            check("resource samples", False, "missing samples (baseline %s, warm %s, end %s)" % (bool(base), bool(warm), bool(end)))

    # -------- the gateway's exit
    check("gateway stopped cleanly on SIGTERM", args.gateway_exit == "0", "exit %s" % args.gateway_exit)
    try:
        with open(args.gateway_log, errors="replace") as f:
            glog = f.read()
    except OSError:
        glog = ""
    panics = [line for line in glog.splitlines() if "panicked" in line]
    check("no panic in the gateway log", not panics, panics[0][:200] if panics else "none")

    # -------- audit trail
    with open(args.verify_output, errors="replace") as f:
        verify = f.read()
    m = re.search(r"records:\s+(\d+)", verify)
    verified = int(m.group(1)) if m else 0
    files = re.search(r"files:\s+(\d+)", verify)
    check("audit verify", args.verify_rc == 0 and "ends with gateway_stop" in verify,
          "%d records in %s file(s)%s" % (verified, files.group(1) if files else "?",
                                         "" if args.verify_rc == 0 else ": " + verify.strip().splitlines()[-1]))
    events = collections.Counter()
    reloads = collections.Counter()
    allowed_admin = collections.defaultdict(set)
    logins_per_conn = collections.Counter()
    failure_reasons = collections.Counter()
    denies = 0
    if args.query_rc == 0:
        with open(args.audit_jsonl) as f:
            for line in f:
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue
                ev = rec.get("event")
                events[ev] += 1
                if ev == "reload" and rec.get("source") != "start":  # the load at start is no reload
                    reloads[(rec.get("what"), rec.get("outcome"))] += 1
                elif ev == "auth_success":
                    logins_per_conn[(rec.get("conn") or {}).get("id")] += 1
                elif ev == "auth_failure":
                    failure_reasons[rec.get("reason")] += 1
                elif ev == "authz_decision":
                    if rec.get("decision") == "deny":
                        # A summary of identical denials on one connection stands for `repeated`.
                        denies += rec.get("repeated") or 1
                    elif rec.get("api_name") in ("CreateTopics", "DeleteTopics", "IncrementalAlterConfigs"):
                        allowed_admin[rec.get("api_name")].add(rec.get("resource_name"))
    check("audit query", args.query_rc == 0 and sum(events.values()) == verified,
          "%d records read back, %d verified" % (sum(events.values()), verified))
    gaps = events["audit_gap"] + events["audit_failure"] + events["audit_torn_tail"]
    check("no audit gap", gaps == 0,
          "audit_gap %d, audit_failure %d, audit_torn_tail %d" % (events["audit_gap"], events["audit_failure"], events["audit_torn_tail"]))
    conns_total = metric_sum(metrics, "kafka_gateway_connections_total")
    check("a record for every connection", events["connection_open"] == conns_total == events["connection_close"],
          "connections_total %d, connection_open %d, connection_close %d" % (conns_total, events["connection_open"], events["connection_close"]))
    for result, ev in (("success", "auth_success"), ("failure", "auth_failure")):
        n = metric_sum(metrics, "kafka_gateway_authentications_total", result=result)
        check("a record for every authentication %s" % result, events[ev] == n and n > 0,
              "authentications_total{result=%s} %d, %s records %d" % (result, n, ev, events[ev]))
    for result, outcome in (("success", "ok"), ("failure", "error")):
        n = metric_sum(metrics, "kafka_gateway_reloads_total", file="policy", result=result)
        check("a record for every policy reload %s" % result, reloads[("policy", outcome)] == n,
              "reloads_total{file=policy,result=%s} %d, reload records %d" % (result, n, reloads[("policy", outcome)]))
    denied_metric = metric_sum(metrics, "kafka_gateway_authorization_denied_total")
    check("denials recorded", counts.get("denials_seen", 0) <= denies <= denied_metric,
          "%d refused by the client's count, %d deny records, authorization_denied_total %d"
          % (counts.get("denials_seen", 0), denies, denied_metric))
    scratch = set((r or {}).get("scratch_topics", []))
    for api in ("CreateTopics", "IncrementalAlterConfigs", "DeleteTopics"):
        missing = scratch - allowed_admin[api]
        check("%s recorded for every scratch topic" % api, not missing,
              "%d topics, %d without a record%s" % (len(scratch), len(missing), (": " + ", ".join(sorted(missing)[:5])) if missing else ""))

    # -------- summary
    ok = all(c[1] for c in checks)
    t = (r or {}).get("timings", {})
    rows = []
    if r:
        base, warm, end = res.get("baseline") or {}, res.get("warm") or {}, res.get("end") or {}
        rows = [
            ("build", args.profile),
            ("workload duration", "%g s (load %s s, drain %s s)" % (r["duration_s"], r["load_seconds"], r["drain_seconds"])),
            ("records produced / acknowledged", "%d / %d (%d producers x %d/s, %d bytes, acks=all, idempotent)" % (
                counts.get("produced", 0), r["acked"], r["producers"], r["rate_per_producer"], r["record_bytes"])),
            ("records consumed (distinct / deliveries)", "%d / %d" % (r["consumed_distinct"], r["deliveries"])),
            ("lost / duplicates in the log", "%d / %d" % (r["lost"] + r["missing_in_log"], r["log_duplicates"])),
            ("redelivered after rebalances", "%d (commits lost to a rebalance: %d)" % (counts.get("redelivered", 0), counts.get("commits_lost_to_rebalance", 0))),
            ("group members joined / left, assignments", "%d / %d, %d" % (counts.get("member_joins", 0), counts.get("member_leaves", 0), counts.get("assignments", 0))),
            ("admin cycles (create, describe, alter config, list/describe groups, delete)", "%d (mean %s s)" % (
                counts.get("admin_cycles", 0), t.get("admin_cycle_s", {}).get("mean", "-"))),
            ("short-lived clients (connect, Metadata, disconnect)", "%d" % counts.get("short_lived_clients", 0)),
            ("clients with bad credentials (refused) / failed logins", "%d (%d) / %d (%s)" % (
                counts.get("auth_failure_clients", 0), counts.get("auth_failures_seen", 0), events["auth_failure"],
                ", ".join("%s %d" % kv for kv in sorted(failure_reasons.items())))),
            ("logins / re-authentications (KIP-368, session lifetime 60 s)", "%d / %d" % (
                events["auth_success"], sum(n - 1 for n in logins_per_conn.values()))),
            ("denied operations (attempted / refused)", "%d / %d" % (counts.get("deny_attempts", 0), counts.get("denials_seen", 0))),
            ("policy reload steps (grant / revoke / broken / restore; SIGHUP)", "%d / %d / %d / %d; %d" % (
                counts.get("reload_grant", 0), counts.get("reload_revoke", 0), counts.get("reload_broken", 0),
                counts.get("reload_restore", 0), counts.get("sighups", 0))),
            ("policy change in force after (mean / max)", "%s s / %s s" % (t.get("reload_applied_s", {}).get("mean", "-"),
                                                                       t.get("reload_applied_s", {}).get("max", "-"))),
            ("client disconnects seen (reconnected)", "%d" % counts.get("client_disconnects", 0)),
            ("RSS MiB: baseline / warm / max under load / end", "%s / %s / %s / %s (slope after warm-up %s MiB/min)" % (
                mib(base.get("rss_kib")), mib(warm.get("rss_kib")), mib(res.get("rss_max_kib")), mib(end.get("rss_kib")),
                res.get("rss_slope_mib_per_min", "-"))),
            ("RSS MiB peak while the whole log is read back", mib(res.get("rss_readback_max_kib"))),
            ("open descriptors: baseline / max / end", "%s / %s / %s" % (base.get("fds", "-"), res.get("fds_max", "-"), end.get("fds", "-"))),
            ("threads: baseline / max / end", "%s / %s / %s" % (base.get("threads", "-"), res.get("threads_max", "-"), end.get("threads", "-"))),
            ("peak client connections", "%s" % res.get("connections_max", "-")),
            ("gateway CPU", "%s s" % end.get("cpu_s", "-")),
            ("audit records verified", "%d in %s file(s)" % (verified, files.group(1) if files else "?")),
            ("audit records by event", ", ".join("%s %d" % kv for kv in sorted(events.items()))),
            ("clients", "confluent-kafka %s, librdkafka %s" % (r["versions"]["confluent_kafka"], r["versions"]["librdkafka"])),
        ]
    md = ["# Soak run: %s" % ("PASSED" if ok else "FAILED"), "",
          "`scripts/soak.sh --duration %g%s`, %s." % ((r or {}).get("duration_s", 0), " --release" if args.profile == "release" else "",
                                                   time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())), "",
          "| figure | value |", "|---|---|"]
    md += ["| %s | %s |" % row for row in rows]
    md += ["", "| check | result | detail |", "|---|---|---|"]
    md += ["| %s | %s | %s |" % (name, "ok" if good else "**FAILED**", detail.replace("|", "/")) for name, good, detail in checks]
    text = "\n".join(md) + "\n"
    with open(args.summary, "w") as f:
        f.write(text)
    width = max((len(k) for k, _ in rows), default=10)
    print()
    for k, v in rows:
        print("  %-*s  %s" % (width, k, v))
    print()
    for name, good, detail in checks:
        print("  %-6s %-45s %s" % ("ok" if good else "FAILED", name, detail))
    print()
    print("soak: %s (summary: %s)" % ("PASSED" if ok else "FAILED", args.summary))
    return 0 if ok else 1


# --------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------

def build_parser():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--bootstrap", required=True)
    r.add_argument("--admin", required=True, help="the gateway's admin address (metrics)")
    r.add_argument("--gateway-pid", type=int, required=True)
    r.add_argument("--policy", required=True, help="the policy file the gateway loads (edited by the workload)")
    r.add_argument("--duration", type=float, default=60)
    r.add_argument("--out", required=True)
    r.add_argument("--samples", required=True)
    r.add_argument("--producers", type=int, default=2)
    r.add_argument("--rate", type=float, default=100, help="records per second per producer")
    r.add_argument("--record-bytes", type=int, default=256)
    r.add_argument("--rebalance-every", type=float, default=15)
    r.add_argument("--admin-every", type=float, default=5)
    r.add_argument("--connect-every", type=float, default=2)
    r.add_argument("--authfail-every", type=float, default=4)
    r.add_argument("--deny-every", type=float, default=5)
    r.add_argument("--reload-every", type=float, default=None, help="default: duration/8, within 5..30 s")
    r.add_argument("--sample-every", type=float, default=2)
    r.add_argument("--drain-timeout", type=float, default=90)
    r.add_argument("--settle", type=float, default=5, help="seconds idle before the final sample")
    r.set_defaults(fn=cmd_run)

    f = sub.add_parser("finish")
    f.add_argument("--results", required=True)
    f.add_argument("--metrics", required=True)
    f.add_argument("--gateway-exit", required=True)
    f.add_argument("--gateway-log", required=True)
    f.add_argument("--verify-output", required=True)
    f.add_argument("--verify-rc", type=int, required=True)
    f.add_argument("--audit-jsonl", required=True)
    f.add_argument("--query-rc", type=int, required=True)
    f.add_argument("--profile", default="debug")
    f.add_argument("--rss-bound-mib", type=int, default=16)
    f.add_argument("--fd-slack", type=int, default=2)
    f.add_argument("--summary", required=True)
    f.set_defaults(fn=cmd_finish)
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.cmd == "run" and args.reload_every is None:
        args.reload_every = min(30.0, max(5.0, args.duration / 8))
    try:
        code = args.fn(args)
    except SystemExit:
        raise
    except Exception:  # noqa: BLE001
        log(traceback.format_exc())
        code = 3
    sys.stdout.flush()
    sys.stderr.flush()
    # confluent-kafka destructors can block on unreachable brokers; exit hard.
    os._exit(code)


if __name__ == "__main__":
    main()
