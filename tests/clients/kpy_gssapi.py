#!/usr/bin/env python3
"""A Kerberos (SASL/GSSAPI) Kafka client for the gateway's end-to-end tests: kafka-python with
python-gssapi, both pinned in the venv scripts/install-deps.sh makes ($KGW_PYTHON). (The pinned
confluent-kafka wheel's librdkafka is built without GSSAPI, hence a second client library.)

  roundtrip --bootstrap H:P --topic T --count N [--group G] [--service-name kafka]
            [--service-host HOST]
      create topic T (if missing), produce N keyed records with a header (acks=all), consume them
      back in consumer group G, verify each exactly once and unchanged, commit.

Prints exactly ONE JSON object as the LAST line of stdout, in the shape of
`tests/clients/workload.py roundtrip` (produced, consumed, distinct, mismatches, ...), so that the
same assertion applies; diagnostics go to stderr. Exit code 0 = success, 1 = verification or
Kafka failure, 2 = usage error, 3 = unexpected exception.

Credentials come from the environment, as for any MIT krb5 program:
  KRB5_CONFIG          the realm's krb5.conf (tests/common/kdc.rs: Kdc::env)
  KRB5CCNAME           FILE:<ccache> made by `kinit` (Kdc::kinit), or
  KRB5_CLIENT_KTNAME   a client keytab the library logs in from by itself
The service principal is SERVICE-NAME/HOST: HOST is --service-host if given, else the broker's
host exactly as given in --bootstrap or in the metadata (kafka-python does no reverse lookup).
"""

import argparse
import json
import logging
import os
import sys
import time
import uuid


def log(*a):
    print("[kpy_gssapi.py]", *a, file=sys.stderr, flush=True)


LAST_CLIENT_ERROR = []  # the latest warning or error kafka-python logged, added to failure JSON
LAST_AUTH_ERROR = []  # the latest of those about the login (GSS-API, SASL), which is preferred


class RecordLast(logging.Handler):
    def emit(self, record):
        text = self.format(record)
        LAST_CLIENT_ERROR[:] = [text]
        if any(w in text for w in ("GSS", "SASL", "Sasl", "uthenticat")):
            LAST_AUTH_ERROR[:] = [text]


def setup_logging(debug):
    # kafka-python reports a refused login (a GSS-API error, say) only in its log, then retries
    # until the operation times out: the log line is the one useful diagnostic.
    logging.basicConfig(stream=sys.stderr, level=logging.DEBUG if debug else logging.WARNING,
                        format="[kafka-python] %(levelname)s %(name)s: %(message)s")
    last = RecordLast(level=logging.WARNING)
    last.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    logging.getLogger().addHandler(last)


class Failed(Exception):
    """Verification failure: reported as JSON with exit code 1."""

    def __init__(self, msg, **fields):
        super().__init__(msg)
        self.fields = fields


try:
    import gssapi  # noqa: F401  (kafka-python imports it lazily; fail early and clearly)
    import kafka
    from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
    from kafka.errors import KafkaError, TopicAlreadyExistsError
except ImportError as e:  # pragma: no cover
    print(json.dumps({"ok": False, "client": "kafka-python", "error": "kafka-python / gssapi not importable (use $KGW_PYTHON): %s" % e}))
    sys.exit(3)


def security(args):
    conf = {
        "bootstrap_servers": args.bootstrap.split(","),
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "GSSAPI",
        "sasl_kerberos_service_name": args.service_name,
        "request_timeout_ms": int(args.op_timeout * 1000),
        # A refused login is retried until this passes (the producer, consumer and admin client
        # each bootstrap once).
        "bootstrap_timeout_ms": int(args.op_timeout * 1000),
    }
    if args.service_host:
        conf["sasl_kerberos_domain_name"] = args.service_host
    return conf


def ensure_topic(args):
    admin = KafkaAdminClient(client_id="kgw-kpy-gssapi-admin", **security(args))
    try:
        try:
            admin.create_topics(
                {args.topic: {"num_partitions": args.partitions, "replication_factor": args.replication}},
                timeout_ms=int(args.op_timeout * 1000),
            )
            created = True
        except TopicAlreadyExistsError:
            log("topic %s already exists" % args.topic)
            created = False
        admin.wait_for_topics([args.topic], timeout_ms=int(args.op_timeout * 1000))
        return created
    finally:
        admin.close()


class Records:
    """(key, value, headers) for roundtrip: k-{i} / v-{i}-{run}-xxx, header idx={i} (workload.py's)."""

    def __init__(self, count, run, value_size):
        self.count, self.run, self.value_size = count, run, value_size

    def value(self, i):
        v = "v-%d-%s-" % (i, self.run)
        if len(v) < self.value_size:
            v += "x" * (self.value_size - len(v))
        return v

    def __iter__(self):
        for i in range(self.count):
            yield ("k-%d" % i).encode(), self.value(i).encode(), [("idx", str(i).encode())]


def cmd_roundtrip(args):
    run = uuid.uuid4().hex[:12]
    group = args.group or ("kgw-kpy-rt-" + run)
    created = ensure_topic(args)
    log("roundtrip: topic=%s created=%s count=%d group=%s run=%s" % (args.topic, created, args.count, group, run))

    recs = Records(args.count, run, args.value_size)
    producer = KafkaProducer(client_id="kgw-kpy-gssapi-producer", acks="all", linger_ms=5, **security(args))
    t0 = time.monotonic()
    futures = [producer.send(args.topic, key=k, value=v, headers=h) for k, v, h in recs]
    producer.flush(timeout=args.timeout)
    ok_count, errors = 0, []
    for f in futures:
        try:
            f.get(timeout=0)
            ok_count += 1
        except Exception as e:  # noqa: BLE001  (a delivery failure of any kind is counted)
            errors.append("%s: %s" % (type(e).__name__, e))
    producer.close(timeout=5)
    produce_s = time.monotonic() - t0
    log("produced %d (errors %d) in %.2fs" % (ok_count, len(errors), produce_s))
    if errors:
        raise Failed("produce failed: %s" % errors[0], produced=ok_count, produce_errors=len(errors))

    consumer = KafkaConsumer(
        client_id="kgw-kpy-gssapi-consumer",
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        session_timeout_ms=args.session_timeout_ms,
        heartbeat_interval_ms=max(100, args.session_timeout_ms // 3),
        **security(args),
    )
    seen, mismatches, mismatch_examples = {}, 0, []
    stale = consumed = 0
    partitions_seen, topics_seen = set(), set()
    t1 = time.monotonic()
    first_msg_at = complete_at = None
    deadline = t1 + args.timeout
    commit_ok, committed = False, {}
    try:
        consumer.subscribe([args.topic])
        while True:
            now = time.monotonic()
            if complete_at is not None and now - complete_at >= args.settle:
                break
            if now > deadline:
                log("consume timeout after %.1fs" % args.timeout)
                break
            batches = consumer.poll(timeout_ms=500, max_records=1000)
            for tp, msgs in batches.items():
                for m in msgs:
                    if first_msg_at is None:
                        first_msg_at = time.monotonic()
                    partitions_seen.add(tp.partition)
                    topics_seen.add(tp.topic)
                    k = (m.key or b"").decode(errors="replace")
                    v = (m.value or b"").decode(errors="replace")
                    try:
                        i = int(k[2:]) if k.startswith("k-") else -1
                    except ValueError:
                        i = -1
                    vparts = v.split("-", 3)
                    if len(vparts) >= 3 and vparts[0] == "v" and vparts[2] != run and vparts[1] == str(i):
                        stale += 1  # a record left by an earlier run on a reused topic
                        continue
                    consumed += 1
                    hdrs = dict(m.headers or [])
                    if not (0 <= i < args.count and v == recs.value(i) and hdrs.get("idx") == str(i).encode()):
                        mismatches += 1
                        if len(mismatch_examples) < 5:
                            mismatch_examples.append({"key": k, "value": v[:60], "headers": {hk: (hv or b"").decode(errors="replace") for hk, hv in hdrs.items()}})
                        continue
                    seen[i] = seen.get(i, 0) + 1
            if complete_at is None and len(seen) >= args.count:
                complete_at = time.monotonic()
        consume_s = (complete_at or time.monotonic()) - t1
        try:
            consumer.commit()
            commit_ok = True
            for tp in sorted(consumer.assignment(), key=lambda tp: tp.partition):
                committed[str(tp.partition)] = consumer.committed(tp)
        except KafkaError as e:
            log("commit failed: %s" % e)
    finally:
        consumer.close(autocommit=False)

    missing = [i for i in range(args.count) if i not in seen]
    duplicates = sum(c - 1 for c in seen.values() if c > 1)
    result = {
        "client": "kafka-python",
        "topic": args.topic,
        "group": group,
        "produced": ok_count,
        "consumed": consumed,
        "distinct": len(seen),
        "mismatches": mismatches,
        "missing": ["k-%d" % i for i in missing[:10]],
        "missing_count": len(missing),
        "duplicates": duplicates,
        "stale_ignored": stale,
        "partitions": sorted(partitions_seen),
        "topics_seen": sorted(topics_seen),
        "committed": commit_ok,
        "committed_offsets": committed,
        "produce_seconds": round(produce_s, 3),
        "consume_seconds": round(consume_s, 3),
        "first_record_seconds": round(first_msg_at - t1, 3) if first_msg_at else None,
    }
    if mismatch_examples:
        result["mismatch_examples"] = mismatch_examples
    ok = (ok_count == args.count and len(seen) == args.count and not missing and mismatches == 0
          and duplicates == 0 and commit_ok)
    return ok, result


class Parser(argparse.ArgumentParser):
    def error(self, message):
        raise SystemExit(message)  # a str code: reported as a usage error (exit 2) in JSON


def build_parser():
    p = Parser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True, parser_class=Parser)
    r = sub.add_parser("roundtrip")
    r.add_argument("--bootstrap", required=True, help="HOST:PORT[,HOST:PORT]")
    r.add_argument("--topic", required=True)
    r.add_argument("--count", type=int, default=1000)
    r.add_argument("--group", help="consumer group (default: unique per run)")
    r.add_argument("--service-name", default="kafka", help="the service principal's first part")
    r.add_argument("--service-host", help="the service principal's host (default: each broker's host as given)")
    r.add_argument("--partitions", type=int, default=3)
    r.add_argument("--replication", type=int, default=1)
    r.add_argument("--value-size", type=int, default=100, help="bytes per value (min: the v-{i}-{run}- prefix)")
    r.add_argument("--timeout", type=float, default=60.0, help="produce flush / consume timeout (s)")
    r.add_argument("--op-timeout", type=float, default=30.0, help="timeout of one request or admin operation (s)")
    r.add_argument("--settle", type=float, default=0.5, help="keep consuming this long after all seen, to catch duplicates (s)")
    r.add_argument("--session-timeout-ms", type=int, default=6000)
    r.add_argument("--debug", action="store_true", help="kafka-python's debug log on stderr")
    r.set_defaults(fn=cmd_roundtrip)
    return p


def main(argv=None):
    t0 = time.monotonic()
    cmd = None
    try:
        args = build_parser().parse_args(argv)
        cmd = args.cmd
        setup_logging(args.debug)
        log("kafka-python %s, gssapi, cmd=%s bootstrap=%s KRB5_CONFIG=%s KRB5CCNAME=%s KRB5_CLIENT_KTNAME=%s" % (
            kafka.__version__, cmd, args.bootstrap, os.environ.get("KRB5_CONFIG"),
            os.environ.get("KRB5CCNAME"), os.environ.get("KRB5_CLIENT_KTNAME")))
        ok, result = args.fn(args)
        code = 0 if ok else 1
    except Failed as e:
        ok, code = False, 1
        result = dict(e.fields)
        result["error"] = str(e)
    except SystemExit as e:
        if not isinstance(e.code, str):
            raise
        ok, code = False, 2
        result = {"error": "usage: %s" % e.code}
    except (KafkaError, gssapi.exceptions.GSSError) as e:
        ok, code = False, 1
        result = {"error": "%s: %s" % (type(e).__name__, e)}
    except Exception as e:  # noqa: BLE001
        ok, code = False, 3
        result = {"error": "%s: %s" % (type(e).__name__, e)}
    if not ok and (LAST_AUTH_ERROR or LAST_CLIENT_ERROR):
        result["last_client_error"] = (LAST_AUTH_ERROR or LAST_CLIENT_ERROR)[0]
    result.setdefault("client", "kafka-python")
    result["command"] = cmd
    result["ok"] = ok
    result["elapsed_seconds"] = round(time.monotonic() - t0, 3)
    sys.stdout.flush()
    print(json.dumps(result), flush=True)
    sys.stderr.flush()
    # A client still retrying an unreachable broker in a background thread must not delay the exit.
    os._exit(code)


if __name__ == "__main__":
    main()
