#!/usr/bin/env python3
"""Kafka client workloads for the gateway's end-to-end tests and benchmarks.

Runs under the venv made by scripts/install-deps.sh ($KGW_PYTHON), which has
confluent-kafka (with its own bundled librdkafka). Works against any bootstrap
address: a broker directly, or the gateway in front of it.

Subcommands (each prints exactly ONE JSON object as the LAST line of stdout,
diagnostics go to stderr; exit code 0 = success, 1 = verification failed,
2 = usage error, 3 = unexpected exception):

  roundtrip        create topic, produce COUNT keyed records (acks=all), consume
                   them back in a consumer group, verify each exactly once
  admin            create topic / list / DescribeConfigs / delete / list
  safeguards       each --op in turn (CreateTopics, CreatePartitions, AlterConfigs,
                   IncrementalAlterConfigs), reporting each one's error code and message
  produce-latency  sequential single-record produce+flush latency (acks=1)
  throughput       produce TOTAL bytes as fast as possible, consume them back
  acked            idempotent/plain produce at a pace while faults happen, read back
  churn            idempotent producer + consumer group side by side while the cluster
                   changes; every acked record stored once and consumed
  metadata         print brokers/controller/cluster id (readiness probe)
  produce-rate     produce for SECONDS as fast as possible (acks=1 or --acks), report the bytes/s
                   acknowledged within them (quota tests)
  consume-rate     consume a topic from the start for SECONDS, report the value bytes/s

Security options (all subcommands):
  --tls-ca PEM                   -> security.protocol SSL, ssl.ca.location
  --tls                          -> SSL using the system CA store
  --client-cert PEM --client-key PEM -> ssl.certificate.location / ssl.key.location
  --no-hostname-verify           -> ssl.endpoint.identification.algorithm=none
  --sasl-mechanism M --username U --password P -> SASL_PLAINTEXT / SASL_SSL
  --oauth-token T                -> sasl.mechanisms=OAUTHBEARER with oauth_cb
  --extra KEY=VALUE (repeatable) -> any raw librdkafka property (all clients)
  --producer-extra / --consumer-extra / --admin-extra KEY=VALUE -> one client only
"""

import argparse
import concurrent.futures
import json
import sys
import time
import uuid

from roundtrip_common import Failed, Records, Tally, add_roundtrip_args, make_log, outcome, report_and_exit

try:
    from confluent_kafka import Consumer, KafkaError, KafkaException, OFFSET_BEGINNING, Producer, TopicPartition
    from confluent_kafka import libversion, version
    from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, NewPartitions, NewTopic
except ImportError as e:  # pragma: no cover
    print(json.dumps({"ok": False, "error": "confluent-kafka not importable (use $KGW_PYTHON): %s" % e}))
    sys.exit(3)


log = make_log("[workload.py]")

LAST_CLIENT_ERROR = []  # most recent librdkafka error_cb message, added to failure JSON


def on_client_error(kind, err):
    log("client error (%s): %s" % (kind, err))
    LAST_CLIENT_ERROR[:] = ["%s: %s" % (kind, err)]


# --------------------------------------------------------------------------
# configuration
# --------------------------------------------------------------------------

def base_config(args, client_kind):
    conf = {
        "bootstrap.servers": args.bootstrap,
        "client.id": "kgw-workload-py-%s" % client_kind,
        "error_cb": lambda err: on_client_error(client_kind, err),
    }
    tls = bool(args.tls or args.tls_ca or args.client_cert)
    mech = args.sasl_mechanism
    if args.oauth_token and not mech:
        mech = "OAUTHBEARER"
    if mech:
        conf["security.protocol"] = "SASL_SSL" if tls else "SASL_PLAINTEXT"
    elif tls:
        conf["security.protocol"] = "SSL"
    if args.tls_ca:
        conf["ssl.ca.location"] = args.tls_ca
    if args.client_cert or args.client_key:
        if not (args.client_cert and args.client_key):
            raise SystemExit("--client-cert and --client-key go together")
        conf["ssl.certificate.location"] = args.client_cert
        conf["ssl.key.location"] = args.client_key
    if args.no_hostname_verify:
        conf["ssl.endpoint.identification.algorithm"] = "none"
    if mech:
        conf["sasl.mechanisms"] = mech
        if mech.upper() == "OAUTHBEARER":
            if not args.oauth_token:
                raise SystemExit("--sasl-mechanism OAUTHBEARER needs --oauth-token")
            token = args.oauth_token
            principal = args.username or "kgw-client"
            lifetime = args.oauth_lifetime

            def oauth_cb(_oauthbearer_config):
                # (token, expiry as seconds since epoch, principal, extensions)
                return token, time.time() + lifetime, principal, {}

            conf["oauth_cb"] = oauth_cb
        else:
            if args.username is None or args.password is None:
                raise SystemExit("--sasl-mechanism %s needs --username and --password" % mech)
            conf["sasl.username"] = args.username
            conf["sasl.password"] = args.password
    if args.debug:
        conf["debug"] = args.debug
    return conf


def apply_extra(args, conf, kind=None):
    """--extra (all clients) and --producer-extra/--consumer-extra/--admin-extra
    KEY=VALUE override everything else (applied last)."""
    extras = list(args.extra or []) + list(getattr(args, "%s_extra" % kind, None) or [] if kind else [])
    for kv in extras:
        if "=" not in kv:
            raise SystemExit("--extra expects KEY=VALUE, got %r" % kv)
        k, v = kv.split("=", 1)
        conf[k] = v
    return conf


def uses_oauth(conf):
    return "oauth_cb" in conf


def make_admin(args):
    conf = apply_extra(args, base_config(args, "admin"), "admin")
    a = AdminClient(conf)
    if uses_oauth(conf):
        a.poll(0)  # triggers oauth_cb so the first SASL handshake has a token
    return a


def make_producer(args, **overrides):
    conf = base_config(args, "producer")
    conf.update(overrides)
    apply_extra(args, conf, "producer")
    p = Producer(conf)
    if uses_oauth(conf):
        p.poll(0)
    return p


def make_consumer(args, group, **overrides):
    conf = base_config(args, "consumer")
    conf.update({
        "group.id": group,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        # tansu 0.6.0 answers the first JoinGroup of a new group only after
        # ~session.timeout.ms/2 (45 s default -> ~23 s join). 6000 is the
        # smallest value real Kafka accepts (group.min.session.timeout.ms).
        "session.timeout.ms": args.session_timeout_ms,
        "heartbeat.interval.ms": max(100, args.session_timeout_ms // 3),
    })
    conf.update(overrides)
    conf = apply_extra(args, conf, "consumer")
    # The KIP-848 consumer protocol takes session and heartbeat timing from the broker, and
    # librdkafka refuses both settings with it.
    if str(conf.get("group.protocol", "classic")).lower() == "consumer":
        conf.pop("session.timeout.ms", None)
        conf.pop("heartbeat.interval.ms", None)
    return Consumer(conf)


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------

def ensure_topic(admin, topic, partitions, replication, config=None, timeout=30.0):
    """Create topic; returns True if created, False if it already existed."""
    fs = admin.create_topics([NewTopic(topic, partitions, replication, config=config or {})],
                             request_timeout=timeout, operation_timeout=timeout)
    try:
        fs[topic].result(timeout=timeout)
        created = True
    except KafkaException as e:
        if e.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
            raise
        log("topic %s already exists" % topic)
        created = False
    wait_topic(admin, topic, present=True, timeout=timeout)
    return created


def list_topic_names(admin, timeout=10.0):
    return set(admin.list_topics(timeout=timeout).topics.keys())


def wait_topic(admin, topic, present, timeout=30.0):
    deadline = time.monotonic() + timeout
    delay = 0.05
    while True:
        md = admin.list_topics(timeout=10)
        tm = md.topics.get(topic)
        ok = (tm is not None and tm.error is None and len(tm.partitions) > 0) if present else (tm is None)
        if ok:
            return
        if time.monotonic() > deadline:
            raise Failed("topic %s still %s after %.1fs" % (topic, "absent" if present else "present", timeout))
        time.sleep(delay)
        delay = min(delay * 2, 1.0)


def percentile(sorted_vals, p):
    if not sorted_vals:
        return None
    k = (len(sorted_vals) - 1) * p / 100.0
    lo = int(k)
    hi = min(lo + 1, len(sorted_vals) - 1)
    return sorted_vals[lo] + (sorted_vals[hi] - sorted_vals[lo]) * (k - lo)


def produce_all(producer, topic, records, timeout):
    """Produce an iterable of (key, value, headers); returns (delivered, errors)."""
    state = {"ok": 0, "err": 0, "first_err": None}

    def on_delivery(err, msg):
        if err is not None:
            state["err"] += 1
            if state["first_err"] is None:
                state["first_err"] = str(err)
        else:
            state["ok"] += 1

    for key, value, headers in records:
        while True:
            try:
                producer.produce(topic=topic, key=key, value=value, headers=headers, on_delivery=on_delivery)
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    remaining = producer.flush(timeout)
    if remaining:
        state["err"] += remaining
        state["first_err"] = state["first_err"] or ("%d messages not delivered within %.0fs" % (remaining, timeout))
    return state


def committed_total(consumer, topic, partitions, timeout=10):
    tps = [TopicPartition(topic, p) for p in partitions]
    res = consumer.committed(tps, timeout=timeout)
    return {tp.partition: tp.offset for tp in res}


# --------------------------------------------------------------------------
# subcommands
# --------------------------------------------------------------------------

def cmd_roundtrip(args):
    run = uuid.uuid4().hex[:12]
    group = args.group or ("kgw-rt-" + run)
    admin = make_admin(args)
    created = ensure_topic(admin, args.topic, args.partitions, args.replication, timeout=args.op_timeout)
    log("roundtrip: topic=%s created=%s count=%d group=%s run=%s" % (args.topic, created, args.count, group, run))

    producer = make_producer(args, **{"acks": "all", "linger.ms": 5})
    recs = Records(args.count, run, args.value_size)
    t0 = time.monotonic()
    st = produce_all(producer, args.topic, recs, args.timeout)
    produce_s = time.monotonic() - t0
    log("produced %d (errors %d) in %.2fs" % (st["ok"], st["err"], produce_s))
    if st["err"]:
        raise Failed("produce failed: %s" % st["first_err"], produced=st["ok"], produce_errors=st["err"])

    consumer = make_consumer(args, group)

    def poll():
        for m in consumer.consume(num_messages=1000, timeout=0.5):
            if m.error():
                if m.error().code() == KafkaError._PARTITION_EOF:
                    continue
                raise Failed("consumer error: %s" % m.error())
            yield m.key(), m.value(), m.headers(), m.partition(), m.topic()

    tally = Tally(recs)
    try:
        consumer.subscribe([args.subscribe or args.topic])
        tally.consume(poll, args.timeout, args.settle, log)
        # commit what we consumed (synchronously) and read it back
        commit_ok = False
        committed = None
        try:
            consumer.commit(asynchronous=False)
            commit_ok = True
            assignment = [tp.partition for tp in consumer.assignment()]
            committed = committed_total(consumer, args.topic, sorted(assignment))
        except KafkaException as e:
            log("commit failed: %s" % e)
    finally:
        consumer.close()
    return tally.result("python", args.topic, group, st["ok"], commit_ok, committed or {}, produce_s)


def produce_paced(producer, args, run):
    """Produces records k-<i> / v-<i>-<run> for i < args.count at args.rate per second, then flushes.
    Returns (acknowledged numbers, {failed number: error}, records still unresolved)."""
    acked, failed = set(), {}

    def on_delivery(err, msg):
        i = int(msg.key()[2:])
        if err is None:
            acked.add(i)
        else:
            failed[i] = str(err)

    interval = 1.0 / args.rate
    t0 = time.monotonic()
    for i in range(args.count):
        while True:
            try:
                producer.produce(args.topic, key=("k-%d" % i).encode(),
                                 value=("v-%d-%s" % (i, run)).encode(), on_delivery=on_delivery)
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
        lag = t0 + (i + 1) * interval - time.monotonic()
        if lag > 0:
            producer.poll(lag)
    return acked, failed, producer.flush(args.timeout)


def cmd_acked(args):
    """Produces numbered records at a steady pace while the test injects faults, then reads the
    partition back: every record the client was told is written must be there (no false success),
    and with idempotence exactly once."""
    run = uuid.uuid4().hex[:12]
    admin = make_admin(args)
    ensure_topic(admin, args.topic, 1, args.replication, timeout=args.op_timeout)
    conf = {"acks": "all", "linger.ms": 5, "enable.idempotence": args.idempotent,
            "message.timeout.ms": int(args.timeout * 1000), "retry.backoff.ms": 200}
    producer = make_producer(args, **conf)
    t0 = time.monotonic()
    acked, failed, remaining = produce_paced(producer, args, run)
    log("acked %d failed %d unresolved %d" % (len(acked), len(failed), remaining))

    # Read the partition back without a group (assign from the beginning to the end offset).
    consumer = make_consumer(args, "kgw-acked-" + run, **{"enable.auto.commit": False})
    seen = {}
    try:
        tp = TopicPartition(args.topic, 0)
        lo, hi = consumer.get_watermark_offsets(tp, timeout=args.op_timeout)
        consumer.assign([TopicPartition(args.topic, 0, lo)])
        pos = lo
        deadline = time.monotonic() + args.timeout
        last_seen = time.monotonic()
        # Until the high watermark is reached and nothing more arrives for 2 s (a broker's
        # watermark may lag what it serves).
        while time.monotonic() < deadline and (pos < hi or time.monotonic() - last_seen < 2.0):
            for m in consumer.consume(num_messages=1000, timeout=0.5):
                if m.error():
                    continue
                last_seen = time.monotonic()
                pos = m.offset() + 1
                v = (m.value() or b"").decode(errors="replace").split("-")
                if len(v) == 3 and v[2] == run:
                    seen[int(v[1])] = seen.get(int(v[1]), 0) + 1
    finally:
        consumer.close()
    lost = sorted(i for i in acked if i not in seen)
    duplicates = sum(c - 1 for c in seen.values())
    result = {
        "sent": args.count, "acked": len(acked), "failed": len(failed), "unresolved": remaining,
        "first_failures": sorted(set(failed.values()))[:3],
        "stored_distinct": len(seen), "duplicates": duplicates,
        "acked_but_missing": len(lost), "acked_but_missing_examples": lost[:10],
        "stored_but_failed": len([i for i in seen if i in failed]),
        "seconds": round(time.monotonic() - t0, 2),
    }
    return not lost and (duplicates == 0 or not args.idempotent), result


def read_back(args, run, partitions):
    """Every record of this run in the topic, read from the beginning of each partition to its
    end without a group: {record number: times stored}."""
    consumer = make_consumer(args, "kgw-readback-" + run, **{"enable.auto.commit": False})
    seen = {}
    try:
        ends = {}
        for p in range(partitions):
            lo, hi = consumer.get_watermark_offsets(TopicPartition(args.topic, p), timeout=args.op_timeout)
            ends[p] = hi
        consumer.assign([TopicPartition(args.topic, p, OFFSET_BEGINNING) for p in range(partitions)])
        pos = {p: 0 for p in range(partitions)}
        deadline = time.monotonic() + args.timeout
        while time.monotonic() < deadline and any(pos[p] < ends[p] for p in ends):
            for m in consumer.consume(num_messages=1000, timeout=0.5):
                if m.error():
                    continue
                pos[m.partition()] = m.offset() + 1
                v = (m.value() or b"").decode(errors="replace").split("-")
                if len(v) == 3 and v[2] == run:
                    seen[int(v[1])] = seen.get(int(v[1]), 0) + 1
    finally:
        consumer.close()
    return seen


def cmd_churn(args):
    """An idempotent acks=all producer and a consumer group running side by side while the test
    changes the cluster under them (brokers killed, leaders moved, brokers added). Afterwards:
    every acknowledged record is stored exactly once (the log, read back) and was consumed by the
    group (at least once: a rebalance may deliver a record twice, which is allowed)."""
    import threading
    run = uuid.uuid4().hex[:12]
    admin = make_admin(args)
    ensure_topic(admin, args.topic, args.partitions, args.replication, timeout=args.op_timeout)
    producer = make_producer(args, **{
        "acks": "all", "linger.ms": 5, "enable.idempotence": True,
        "message.timeout.ms": int(args.timeout * 1000), "retry.backoff.ms": 200})
    consumed = {}
    stop = threading.Event()
    consumer_errors = []

    def consume():
        c = make_consumer(args, args.group or ("kgw-churn-" + run), **{"enable.auto.commit": False})
        try:
            c.subscribe([args.topic])
            while not stop.is_set():
                msgs = c.consume(num_messages=500, timeout=0.5)
                for m in msgs:
                    if m.error():
                        consumer_errors.append(str(m.error()))
                        continue
                    v = (m.value() or b"").decode(errors="replace").split("-")
                    if len(v) == 3 and v[2] == run:
                        consumed[int(v[1])] = consumed.get(int(v[1]), 0) + 1
                if msgs:
                    try:
                        c.commit(asynchronous=False)
                    except KafkaException as e:
                        consumer_errors.append("commit: %s" % e)
        finally:
            c.close()

    t = threading.Thread(target=consume, daemon=True)
    t.start()

    t0 = time.monotonic()
    acked, failed, remaining = produce_paced(producer, args, run)
    produced_s = time.monotonic() - t0
    # The group catches up on everything acknowledged, or the deadline passes.
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline and any(i not in consumed for i in acked):
        time.sleep(0.2)
    stop.set()
    t.join(timeout=30)
    stored = read_back(args, run, args.partitions)
    lost = sorted(i for i in acked if i not in stored)
    unconsumed = sorted(i for i in acked if i not in consumed)
    duplicates = sum(c - 1 for c in stored.values())
    result = {
        "sent": args.count, "acked": len(acked), "failed": len(failed), "unresolved": remaining,
        "first_failures": sorted(set(failed.values()))[:3],
        "stored_distinct": len(stored), "duplicates": duplicates,
        "acked_but_missing": len(lost), "acked_but_missing_examples": lost[:10],
        "consumed_distinct": len(consumed), "acked_but_not_consumed": len(unconsumed),
        "redelivered": sum(c - 1 for c in consumed.values()),
        "consumer_errors": sorted(set(consumer_errors))[:5],
        "produce_seconds": round(produced_s, 2), "seconds": round(time.monotonic() - t0, 2),
    }
    return not lost and duplicates == 0 and not unconsumed, result


def cmd_admin(args):
    admin = make_admin(args)
    result = {"client": "python", "topic": args.topic, "created": False, "listed": False,
              "described": False, "deleted": False, "absent_after_delete": False}
    cfg_key, cfg_val = "retention.ms", str(args.retention_ms)
    t0 = time.monotonic()
    created = ensure_topic(admin, args.topic, args.partitions, args.replication,
                           config={cfg_key: cfg_val}, timeout=args.op_timeout)
    result["created"] = True
    result["already_existed"] = not created
    names = list_topic_names(admin)
    if args.topic not in names:
        raise Failed("created topic missing from list", **result)
    result["listed"] = True

    res = admin.describe_configs([ConfigResource(ConfigResource.Type.TOPIC, args.topic)],
                                 request_timeout=args.op_timeout)
    entries = list(res.values())[0].result(timeout=args.op_timeout)
    result["config_count"] = len(entries)
    entry = entries.get(cfg_key)
    result["config"] = {cfg_key: entry.value if entry is not None else None}
    result["described"] = entry is not None and entry.value == cfg_val
    if not result["described"]:
        log("DescribeConfigs returned %d entries, %s=%r (expected %r)" % (
            len(entries), cfg_key, entry.value if entry else None, cfg_val))

    fs = admin.delete_topics([args.topic], request_timeout=args.op_timeout, operation_timeout=args.op_timeout)
    fs[args.topic].result(timeout=args.op_timeout)
    result["deleted"] = True
    wait_topic(admin, args.topic, present=False, timeout=args.op_timeout)
    result["absent_after_delete"] = True
    result["seconds"] = round(time.monotonic() - t0, 3)
    ok = all(result[k] for k in ("created", "listed", "described", "deleted", "absent_after_delete"))
    return ok, result


def parse_configs(words):
    """k=v (set), k+=v (append), -k (back to the default) -> [(name, op, value)]."""
    out = []
    for w in words:
        if w.startswith("-"):
            out.append((w[1:], AlterConfigOpType.DELETE, None))
        elif "+=" in w:
            k, v = w.split("+=", 1)
            out.append((k, AlterConfigOpType.APPEND, v))
        else:
            k, v = w.split("=", 1)
            out.append((k, AlterConfigOpType.SET, v))
    return out


def op_outcome(future, timeout):
    """(error code, message) of one admin future: 0 and "" on success."""
    try:
        future.result(timeout=timeout)
        return 0, ""
    except KafkaException as e:
        err = e.args[0]
        return err.code(), err.str()


def cmd_safeguards(args):
    """Each --op in turn:
      create TOPIC PARTITIONS RF [k=v ...]      CreateTopics
      validate TOPIC PARTITIONS RF [k=v ...]    CreateTopics with validate_only
      partitions TOPIC COUNT                    CreatePartitions
      alter topic|broker NAME k=v ...           AlterConfigs (the legacy API)
      incremental topic|broker NAME k=v|k+=v|-k ...  IncrementalAlterConfigs
    """
    admin = make_admin(args)
    t = args.op_timeout
    results = []
    for line in args.op:
        w = line.split()
        kind = w[0]
        if kind in ("create", "validate"):
            configs = dict(kv.split("=", 1) for kv in w[4:])
            nt = NewTopic(w[1], int(w[2]), int(w[3]), config=configs)
            fs = admin.create_topics([nt], request_timeout=t, operation_timeout=t,
                                     validate_only=(kind == "validate"))
            code, message = op_outcome(fs[w[1]], t)
        elif kind == "partitions":
            fs = admin.create_partitions([NewPartitions(w[1], int(w[2]))], request_timeout=t, operation_timeout=t)
            code, message = op_outcome(fs[w[1]], t)
        elif kind in ("alter", "incremental"):
            rtype = ConfigResource.Type.TOPIC if w[1] == "topic" else ConfigResource.Type.BROKER
            configs = parse_configs(w[3:])
            if kind == "alter":
                res = ConfigResource(rtype, w[2], set_config={k: v for k, _, v in configs})
                fs = admin.alter_configs([res], request_timeout=t)
            else:
                entries = [ConfigEntry(k, v, incremental_operation=op) for k, op, v in configs]
                res = ConfigResource(rtype, w[2], incremental_configs=entries)
                fs = admin.incremental_alter_configs([res], request_timeout=t)
            code, message = op_outcome(list(fs.values())[0], t)
        else:
            raise SystemExit("unknown --op %r" % kind)
        log("%s -> %s %s" % (line, code, message))
        results.append({"op": line, "code": code, "message": message})
    return True, {"client": "python", "results": results}


def cmd_produce_latency(args):
    admin = make_admin(args)
    ensure_topic(admin, args.topic, args.partitions, args.replication, timeout=args.op_timeout)
    producer = make_producer(args, **{"acks": str(args.acks), "linger.ms": 0})
    payload = b"l" * args.record_size
    errors = []

    def on_delivery(err, _msg):
        if err is not None:
            errors.append(str(err))

    lat = []
    total = args.warmup + args.count
    for i in range(total):
        t = time.perf_counter_ns()
        producer.produce(args.topic, key=("lat-%d" % i).encode(), value=payload, on_delivery=on_delivery)
        left = producer.flush(args.op_timeout)
        dt = (time.perf_counter_ns() - t) / 1000.0
        if left:
            raise Failed("record %d not delivered within %.0fs" % (i, args.op_timeout))
        if errors:
            raise Failed("produce failed: %s" % errors[0])
        if i >= args.warmup:
            lat.append(dt)
    s = sorted(lat)
    result = {
        "client": "python", "topic": args.topic, "count": len(lat), "acks": str(args.acks),
        "p50_us": round(percentile(s, 50), 1), "p90_us": round(percentile(s, 90), 1),
        "p99_us": round(percentile(s, 99), 1), "mean_us": round(sum(s) / len(s), 1),
        "min_us": round(s[0], 1), "max_us": round(s[-1], 1),
    }
    return True, result


def cmd_throughput(args):
    run = uuid.uuid4().hex[:12]
    group = args.group or ("kgw-tp-" + run)
    admin = make_admin(args)
    ensure_topic(admin, args.topic, args.partitions, args.replication, timeout=args.op_timeout)
    n = max(1, args.bytes // args.record_size)
    prefix = ("tp-%s-" % run).encode()
    payload = prefix + b"t" * max(0, args.record_size - len(prefix))
    total_bytes = n * len(payload)
    producer = make_producer(args, **{
        "acks": str(args.acks),
        "linger.ms": args.linger_ms,
        "batch.size": 1048576,
        "batch.num.messages": 100000,
        "queue.buffering.max.messages": 1000000,
        "queue.buffering.max.kbytes": 1048576,
        "compression.type": args.compression,
    })
    errors = {"n": 0, "first": None}

    def on_delivery(err, _msg):
        if err is not None:
            errors["n"] += 1
            errors["first"] = errors["first"] or str(err)

    log("throughput: producing %d records x %d bytes = %.1f MB" % (n, len(payload), total_bytes / 1e6))
    t0 = time.monotonic()
    for _ in range(n):
        while True:
            try:
                producer.produce(args.topic, value=payload, on_delivery=on_delivery)
                break
            except BufferError:
                producer.poll(0.01)
        producer.poll(0)
    left = producer.flush(args.timeout)
    produce_s = time.monotonic() - t0
    if left or errors["n"]:
        raise Failed("produce failed: %d undelivered, %d errors, first: %s" % (left, errors["n"], errors["first"]))

    consumer = make_consumer(args, group, **{"fetch.max.bytes": 52428800,
                                             "max.partition.fetch.bytes": 10485760,
                                             "enable.auto.commit": True})
    got = 0
    got_bytes = 0
    t1 = time.monotonic()
    first = None
    deadline = t1 + args.timeout
    try:
        consumer.subscribe([args.topic])
        while got < n and time.monotonic() < deadline:
            for m in consumer.consume(num_messages=10000, timeout=0.5):
                if m.error():
                    if m.error().code() == KafkaError._PARTITION_EOF:
                        continue
                    raise Failed("consumer error: %s" % m.error())
                v = m.value()
                if v is not None and v.startswith(prefix):
                    if first is None:
                        first = time.monotonic()
                    got += 1
                    got_bytes += len(v)
    finally:
        end = time.monotonic()
        consumer.close()
    consume_s = end - (first or t1)
    result = {
        "client": "python", "topic": args.topic, "records": n, "record_size": len(payload),
        "bytes": total_bytes, "acks": str(args.acks),
        "produce_seconds": round(produce_s, 3),
        "produce_mb_s": round(total_bytes / 1e6 / produce_s, 2) if produce_s > 0 else None,
        "consumed": got,
        "consume_seconds": round(consume_s, 3),
        "consume_mb_s": round(got_bytes / 1e6 / consume_s, 2) if consume_s > 0 else None,
        "consume_join_seconds": round((first or end) - t1, 3),
    }
    return got == n, result


def cmd_produce_rate(args):
    admin = make_admin(args)
    ensure_topic(admin, args.topic, args.partitions, args.replication, timeout=args.op_timeout)
    payload = b"r" * args.record_size
    producer = make_producer(args, **{
        "acks": str(args.acks), "linger.ms": 5, "batch.size": args.batch_size,
        "queue.buffering.max.kbytes": 65536, "compression.type": "none",
    })
    acked = {"bytes": 0, "errors": 0, "first": None}
    t0 = time.monotonic()
    deadline = t0 + args.seconds

    def on_delivery(err, _msg):
        if err is not None:
            acked["errors"] += 1
            acked["first"] = acked["first"] or str(err)
        elif time.monotonic() <= deadline:
            acked["bytes"] += len(payload)

    while time.monotonic() < deadline:
        try:
            producer.produce(args.topic, value=payload, on_delivery=on_delivery)
        except BufferError:
            producer.poll(0.005)
        producer.poll(0)
    producer.purge(in_queue=True)
    producer.flush(10)
    rate = acked["bytes"] / args.seconds
    return acked["bytes"] > 0, {
        "client": "python", "topic": args.topic, "seconds": args.seconds, "acks": str(args.acks),
        "acked_bytes": acked["bytes"], "bytes_per_s": round(rate, 1),
        "errors_after_purge": acked["errors"], "first_error": acked["first"],
    }


def cmd_consume_rate(args):
    consumer = make_consumer(args, "kgw-rate-" + uuid.uuid4().hex[:12], **{
        "fetch.max.bytes": args.fetch_max_bytes,
        "max.partition.fetch.bytes": args.fetch_max_bytes,
        "message.max.bytes": args.fetch_max_bytes,
        "enable.auto.commit": False,
    })
    got = 0
    first = None
    try:
        consumer.subscribe([args.topic])
        end = time.monotonic() + args.timeout
        while time.monotonic() < end:
            for m in consumer.consume(num_messages=1000, timeout=0.2):
                if m.error():
                    continue
                now = time.monotonic()
                if first is None:
                    # The clock starts at the first record: joining the group is not fetching.
                    first = now
                    end = now + args.seconds
                if now <= end:
                    got += len(m.value() or b"")
    finally:
        consumer.close()
    return got > 0, {
        "client": "python", "topic": args.topic, "seconds": args.seconds,
        "bytes": got, "bytes_per_s": round(got / args.seconds, 1),
    }


def cmd_metadata(args):
    admin = make_admin(args)
    md = admin.list_topics(timeout=args.op_timeout)
    return True, {
        "client": "python", "cluster_id": md.cluster_id, "controller_id": md.controller_id,
        "brokers": [{"node_id": b.id, "host": b.host, "port": b.port} for b in md.brokers.values()],
        "topics": sorted(md.topics.keys()),
    }


# --------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------

def build_parser():
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--bootstrap", required=True, help="HOST:PORT[,HOST:PORT]")
    common.add_argument("--tls", action="store_true", help="use TLS (system CAs unless --tls-ca)")
    common.add_argument("--tls-ca", help="CA bundle PEM to verify the server")
    common.add_argument("--client-cert", help="client certificate PEM (mTLS)")
    common.add_argument("--client-key", help="client private key PEM (mTLS)")
    common.add_argument("--no-hostname-verify", action="store_true", help="disable TLS hostname verification")
    common.add_argument("--sasl-mechanism", help="PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER")
    common.add_argument("--username")
    common.add_argument("--password")
    common.add_argument("--oauth-token", help="static OAUTHBEARER token (implies --sasl-mechanism OAUTHBEARER)")
    common.add_argument("--oauth-lifetime", type=float, default=3600.0, help="token lifetime seconds reported to librdkafka")
    common.add_argument("--extra", action="append", metavar="KEY=VALUE", help="raw librdkafka property (repeatable)")
    for kind in ("producer", "consumer", "admin"):
        common.add_argument("--%s-extra" % kind, action="append", metavar="KEY=VALUE",
                            help="raw librdkafka property for the %s only (repeatable)" % kind)
    common.add_argument("--debug", help="librdkafka debug contexts, e.g. broker,protocol,security")
    common.add_argument("--op-timeout", type=float, default=30.0, help="timeout for single admin/produce operations (s)")
    common.add_argument("--session-timeout-ms", type=int, default=6000,
                        help="consumer session.timeout.ms (tansu's first join takes about half of it)")
    common.add_argument("--partitions", type=int, default=3)
    common.add_argument("--replication", type=int, default=1)

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)

    r = sub.add_parser("roundtrip", parents=[common])
    add_roundtrip_args(r, count=10000, timeout=120.0)
    r.add_argument("--subscribe", help="consume by this subscription (a regex starting with ^) instead of --topic")
    r.set_defaults(fn=cmd_roundtrip)

    a = sub.add_parser("admin", parents=[common])
    a.add_argument("--topic", required=True)
    a.add_argument("--retention-ms", type=int, default=3600000, help="config set at creation and read back via DescribeConfigs")
    a.set_defaults(fn=cmd_admin)

    sg = sub.add_parser("safeguards", parents=[common])
    sg.add_argument("--op", action="append", required=True, help="one admin operation (see cmd_safeguards)")
    sg.set_defaults(fn=cmd_safeguards)

    lt = sub.add_parser("produce-latency", parents=[common])
    lt.add_argument("--topic", required=True)
    lt.add_argument("--count", type=int, default=1000)
    lt.add_argument("--warmup", type=int, default=20)
    lt.add_argument("--record-size", type=int, default=100)
    lt.add_argument("--acks", default="1")
    lt.set_defaults(fn=cmd_produce_latency)

    t = sub.add_parser("throughput", parents=[common])
    t.add_argument("--topic", required=True)
    t.add_argument("--bytes", type=int, required=True, help="total bytes to produce")
    t.add_argument("--record-size", type=int, default=1024)
    t.add_argument("--acks", default="1")
    t.add_argument("--linger-ms", type=int, default=10)
    t.add_argument("--compression", default="none")
    t.add_argument("--group", help="consumer group (default: unique per run)")
    t.add_argument("--timeout", type=float, default=300.0)
    t.set_defaults(fn=cmd_throughput)

    ak = sub.add_parser("acked", parents=[common])
    ak.add_argument("--topic", required=True)
    ak.add_argument("--count", type=int, default=2000)
    ak.add_argument("--rate", type=float, default=200.0, help="records per second")
    ak.add_argument("--idempotent", action="store_true")
    ak.add_argument("--timeout", type=float, default=60.0, help="delivery timeout and read-back timeout (s)")
    ak.set_defaults(fn=cmd_acked)

    ch = sub.add_parser("churn", parents=[common])
    ch.add_argument("--topic", required=True)
    ch.add_argument("--group", help="consumer group (default: unique per run)")
    ch.add_argument("--count", type=int, default=1000)
    ch.add_argument("--rate", type=float, default=100.0, help="records per second")
    ch.add_argument("--timeout", type=float, default=90.0, help="delivery and catch-up timeout (s)")
    ch.set_defaults(fn=cmd_churn)

    pr = sub.add_parser("produce-rate", parents=[common])
    pr.add_argument("--topic", required=True)
    pr.add_argument("--seconds", type=float, default=15.0)
    pr.add_argument("--record-size", type=int, default=10000)
    pr.add_argument("--batch-size", type=int, default=65536)
    pr.add_argument("--acks", default="1", help="0: no responses; the rate is what left the client")
    pr.set_defaults(fn=cmd_produce_rate)

    cr = sub.add_parser("consume-rate", parents=[common])
    cr.add_argument("--topic", required=True)
    cr.add_argument("--seconds", type=float, default=10.0)
    cr.add_argument("--fetch-max-bytes", type=int, default=262144)
    cr.add_argument("--timeout", type=float, default=60.0, help="overall limit, joining included (s)")
    cr.set_defaults(fn=cmd_consume_rate)

    m = sub.add_parser("metadata", parents=[common])
    m.set_defaults(fn=cmd_metadata)
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    ver = version()
    ver = ver[0] if isinstance(ver, tuple) else ver
    log("confluent-kafka %s, librdkafka %s, cmd=%s bootstrap=%s" % (ver, libversion()[0], args.cmd, args.bootstrap))
    t0 = time.monotonic()
    client_errors = (
        (KafkaException, lambda e: "KafkaException: %s" % e),
        ((TimeoutError, concurrent.futures.TimeoutError), lambda e: "timeout: %s %s" % (type(e).__name__, e)),
    )
    ok, code, result = outcome(lambda: args.fn(args), client_errors)
    report_and_exit(ok, code, result, "python", args.cmd, t0, [LAST_CLIENT_ERROR])


if __name__ == "__main__":
    main()
