#!/usr/bin/env python3
"""A Kerberos (SASL/GSSAPI) Kafka client for the gateway's end-to-end tests: kafka-python with
python-gssapi, both pinned in the venv scripts/install-deps.sh makes ($KGW_PYTHON). (The pinned
confluent-kafka wheel's librdkafka is built without GSSAPI, hence a second client library.)

  roundtrip --bootstrap H:P --topic T --count N [--group G] [--service-name kafka]
            [--service-host HOST]
      create topic T (if missing), produce N keyed records with a header (acks=all), consume them
      back in consumer group G, verify each exactly once and unchanged, commit.

Prints exactly ONE JSON object as the LAST line of stdout, in the shape of
`tests/clients/workload.py roundtrip` (produced, consumed, distinct, mismatches, ...; both build it
in tests/clients/roundtrip_common.py), so that the same assertion applies; diagnostics go to
stderr. Exit code 0 = success, 1 = verification or Kafka failure, 2 = usage error, 3 = unexpected
exception.

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

from roundtrip_common import Failed, Records, Tally, add_roundtrip_args, make_log, outcome, report_and_exit

log = make_log("[kpy_gssapi.py]")


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

    def poll():
        for tp, msgs in consumer.poll(timeout_ms=500, max_records=1000).items():
            for m in msgs:
                yield m.key, m.value, m.headers, tp.partition, tp.topic

    tally = Tally(recs)
    commit_ok, committed = False, {}
    try:
        consumer.subscribe([args.topic])
        tally.consume(poll, args.timeout, args.settle, log)
        try:
            consumer.commit()
            commit_ok = True
            for tp in sorted(consumer.assignment(), key=lambda tp: tp.partition):
                committed[tp.partition] = consumer.committed(tp)
        except KafkaError as e:
            log("commit failed: %s" % e)
    finally:
        consumer.close(autocommit=False)
    return tally.result("kafka-python", args.topic, group, ok_count, commit_ok, committed, produce_s)


class Parser(argparse.ArgumentParser):
    def error(self, message):
        raise SystemExit(message)  # a str code: reported as a usage error (exit 2) in JSON


def build_parser():
    p = Parser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True, parser_class=Parser)
    r = sub.add_parser("roundtrip")
    r.add_argument("--bootstrap", required=True, help="HOST:PORT[,HOST:PORT]")
    add_roundtrip_args(r, count=1000, timeout=60.0)
    r.add_argument("--service-name", default="kafka", help="the service principal's first part")
    r.add_argument("--service-host", help="the service principal's host (default: each broker's host as given)")
    r.add_argument("--partitions", type=int, default=3)
    r.add_argument("--replication", type=int, default=1)
    r.add_argument("--op-timeout", type=float, default=30.0, help="timeout of one request or admin operation (s)")
    r.add_argument("--session-timeout-ms", type=int, default=6000)
    r.add_argument("--debug", action="store_true", help="kafka-python's debug log on stderr")
    r.set_defaults(fn=cmd_roundtrip)
    return p


def main(argv=None):
    t0 = time.monotonic()
    args = None

    def run():
        nonlocal args
        args = build_parser().parse_args(argv)
        setup_logging(args.debug)
        log("kafka-python %s, gssapi, cmd=%s bootstrap=%s KRB5_CONFIG=%s KRB5CCNAME=%s KRB5_CLIENT_KTNAME=%s" % (
            kafka.__version__, args.cmd, args.bootstrap, os.environ.get("KRB5_CONFIG"),
            os.environ.get("KRB5CCNAME"), os.environ.get("KRB5_CLIENT_KTNAME")))
        return args.fn(args)

    client_errors = (((KafkaError, gssapi.exceptions.GSSError), lambda e: "%s: %s" % (type(e).__name__, e)),)
    ok, code, result = outcome(run, client_errors)
    report_and_exit(ok, code, result, "kafka-python", args.cmd if args else None, t0,
                    [LAST_AUTH_ERROR, LAST_CLIENT_ERROR])


if __name__ == "__main__":
    main()
