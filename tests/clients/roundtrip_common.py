"""What the Python test clients share, whichever Kafka library each drives: workload.py
(confluent-kafka / librdkafka) and kpy_gssapi.py (kafka-python + python-gssapi). Imports no
Kafka library itself, so neither script pulls in the other's.

  Records                the roundtrip's records: key k-{i}, value v-{i}-{run}-xxx, header idx={i}
  Tally                  consumes them back through a client's poll, verifies each exactly once
                         and unchanged, and builds the roundtrip's JSON result
  add_roundtrip_args     the roundtrip subcommand's own options
  make_log, Failed, outcome, report_and_exit
                         stderr diagnostics, and the frame every command runs in: exit code
                         0 = success, 1 = verification or Kafka failure, 2 = usage error,
                         3 = unexpected exception; ONE JSON object as the last line of stdout
"""

import json
import os
import sys
import time


def make_log(prefix):
    """A print to stderr, each line tagged with `prefix` (the script's name)."""

    def log(*a):
        print(prefix, *a, file=sys.stderr, flush=True)

    return log


class Failed(Exception):
    """Verification failure: reported as JSON with exit code 1."""

    def __init__(self, msg, **fields):
        super().__init__(msg)
        self.fields = fields


# --------------------------------------------------------------------------
# roundtrip
# --------------------------------------------------------------------------

class Records:
    """Iterable of (key, value, headers) for roundtrip: k-{i} / v-{i}-{run}-payload, header idx={i}."""

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


class Tally:
    """What a roundtrip's consumer saw of `recs`: each record counted once it is verified,
    mismatches and records of earlier runs (on a reused topic) apart. The consume clock starts
    when it is made."""

    def __init__(self, recs):
        self.recs = recs
        self.seen = {}  # record number -> times consumed
        self.mismatches, self.mismatch_examples = 0, []
        self.stale = self.consumed = 0
        self.partitions_seen, self.topics_seen = set(), set()
        self.t1 = time.monotonic()
        self.first_msg_at = self.consume_s = None

    def add(self, key, value, headers, partition, topic):
        if self.first_msg_at is None:
            self.first_msg_at = time.monotonic()
        self.partitions_seen.add(partition)
        self.topics_seen.add(topic)
        k = (key or b"").decode(errors="replace")
        v = (value or b"").decode(errors="replace")
        # expected: key k-{i}, value v-{i}-{run}-xxx, header idx={i}
        try:
            i = int(k[2:]) if k.startswith("k-") else -1
        except ValueError:
            i = -1
        vparts = v.split("-", 3)
        if len(vparts) >= 3 and vparts[0] == "v" and vparts[2] != self.recs.run and vparts[1] == str(i):
            self.stale += 1  # a record left by an earlier run on a reused topic
            return
        self.consumed += 1
        hdrs = dict(headers or [])
        if not (0 <= i < self.recs.count and v == self.recs.value(i) and hdrs.get("idx") == str(i).encode()):
            self.mismatches += 1
            if len(self.mismatch_examples) < 5:
                self.mismatch_examples.append({"key": k, "value": v[:60], "headers": {hk: (hv or b"").decode(errors="replace") for hk, hv in hdrs.items()}})
            return
        self.seen[i] = self.seen.get(i, 0) + 1

    def consume(self, poll, timeout, settle, log):
        """Calls poll() (an iterable of (key, value, headers, partition, topic), about half a
        second's worth) until every record is seen and `settle` s more have passed, to catch
        duplicates, or `timeout` s have passed."""
        deadline = self.t1 + timeout
        complete_at = None
        while True:
            now = time.monotonic()
            if complete_at is not None and now - complete_at >= settle:
                break
            if now > deadline:
                log("consume timeout after %.1fs" % timeout)
                break
            for rec in poll():
                self.add(*rec)
            if complete_at is None and len(self.seen) >= self.recs.count:
                complete_at = time.monotonic()
        self.consume_s = (complete_at or time.monotonic()) - self.t1

    def result(self, client, topic, group, produced, commit_ok, committed_offsets, produce_s):
        """(ok, the roundtrip's JSON result); committed_offsets: {partition: offset}."""
        count = self.recs.count
        missing = [i for i in range(count) if i not in self.seen]
        duplicates = sum(c - 1 for c in self.seen.values() if c > 1)
        result = {
            "client": client,
            "topic": topic,
            "group": group,
            "produced": produced,
            "consumed": self.consumed,
            "distinct": len(self.seen),
            "mismatches": self.mismatches,
            "missing": ["k-%d" % i for i in missing[:10]],
            "missing_count": len(missing),
            "duplicates": duplicates,
            "stale_ignored": self.stale,
            "partitions": sorted(self.partitions_seen),
            "topics_seen": sorted(self.topics_seen),
            "committed": commit_ok,
            "committed_offsets": {str(p): o for p, o in committed_offsets.items()},
            "produce_seconds": round(produce_s, 3),
            "consume_seconds": round(self.consume_s, 3),
            "first_record_seconds": round(self.first_msg_at - self.t1, 3) if self.first_msg_at else None,
        }
        if self.mismatch_examples:
            result["mismatch_examples"] = self.mismatch_examples
        ok = (produced == count and len(self.seen) == count and not missing and self.mismatches == 0
              and duplicates == 0 and commit_ok)
        return ok, result


def add_roundtrip_args(r, count, timeout):
    """The roundtrip subcommand's options about its records (connection and topic options apart)."""
    r.add_argument("--topic", required=True)
    r.add_argument("--count", type=int, default=count)
    r.add_argument("--group", help="consumer group (default: unique per run)")
    r.add_argument("--value-size", type=int, default=100, help="bytes per value (min: the v-{i}-{run}- prefix)")
    r.add_argument("--timeout", type=float, default=timeout, help="produce flush / consume timeout (s)")
    r.add_argument("--settle", type=float, default=0.5, help="keep consuming this long after all seen, to catch duplicates (s)")


# --------------------------------------------------------------------------
# running a command and reporting it
# --------------------------------------------------------------------------

def outcome(run, client_errors=()):
    """Calls run() -> (ok, result) and returns (ok, exit code, result), an exception turned into
    a result with "error": Failed (its fields kept) -> 1, SystemExit with a message -> 2 (usage),
    one of client_errors ((exception types, describe(e)) pairs, the client library's failures)
    -> 1, anything else -> 3."""
    try:
        ok, result = run()
        return ok, (0 if ok else 1), result
    except Failed as e:
        result = dict(e.fields)
        result["error"] = str(e)
        return False, 1, result
    except SystemExit as e:
        if not isinstance(e.code, str):
            raise
        return False, 2, {"error": "usage: %s" % e.code}
    except Exception as e:  # noqa: BLE001
        for types, describe in client_errors:
            if isinstance(e, types):
                return False, 1, {"error": describe(e)}
        return False, 3, {"error": "%s: %s" % (type(e).__name__, e)}


def report_and_exit(ok, code, result, client, cmd, t0, last_errors=()):
    """Prints `result` as the last line of stdout, with the client's latest logged error (the
    first of `last_errors`, lists of one message, that is set) on failure, and exits with `code`."""
    last = next((e for e in last_errors if e), None)
    if not ok and last:
        result["last_client_error"] = last[0]
    result.setdefault("client", client)
    result["command"] = cmd
    result["ok"] = ok
    result["elapsed_seconds"] = round(time.monotonic() - t0, 3)
    sys.stdout.flush()
    print(json.dumps(result), flush=True)
    sys.stderr.flush()
    # Exit hard: confluent-kafka destructors can block on unreachable brokers, and kafka-python
    # may still be retrying one in a background thread.
    os._exit(code)
