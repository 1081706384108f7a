"""Report of scripts/bench-vclusters.sh: what SNI routing and tenant name translation cost against
the same gateway's plain listeners, in one run (ratios per round, medians)."""
import argparse
import sys

from benchlib import median, read_jsonl, round_ratios

LABELS = {
    "direct": "direct to tansu",
    "vc-plain": "plaintext listener, port per broker",
    "vc-tenant": "plaintext listener, tenant (names translated)",
    "vc-tls": "TLS listener, port per broker",
    "vc-sni": "TLS listener, SNI routing on one port",
}
ORDER = list(LABELS)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--results", required=True)
    ap.add_argument("--meta", required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    runs = read_jsonl(a.results)
    meta = dict(line.rstrip("\n").split("\t", 1) for line in open(a.meta) if "\t" in line)
    tp = [r for r in runs if r["kind"] == "throughput" and r["round"] > 0]
    lat = [r for r in runs if r["kind"] == "latency" and r["round"] > 0]
    by = {p: [r for r in tp if r["path"] == p] for p in ORDER}
    rounds = sorted({r["round"] for r in tp})
    paths = [p for p in ORDER if by[p]]

    def cpu_gb(p):
        cpu = sum(r[ph]["cpu"].get("gateway", 0.0) for r in by[p] for ph in ("produce", "consume"))
        nbytes = sum(r["bytes"] for r in by[p] for _ in ("produce", "consume"))
        return cpu / (nbytes / 1e9) if nbytes else None

    def per_round_cpu(p, base):
        out = []
        for rnd in rounds:
            def one(q):
                rs = [r for r in by[q] if r["round"] == rnd]
                c = sum(r[ph]["cpu"].get("gateway", 0.0) for r in rs for ph in ("produce", "consume"))
                b = sum(r["bytes"] for r in rs) * 2
                return c / b if b else None
            x, y = one(p), one(base)
            if x and y:
                out.append(x / y)
        return out

    lines = ["# kafka-gateway: cost of SNI routing and tenant name translation (same run)", ""]
    for k in ("date", "machine", "gateway", "rounds", "mb", "client", "hosts"):
        if k in meta:
            lines.append("- %s: %s" % (k, meta[k]))
    lines += ["", "One gateway process with four listeners in front of one tansu (every path's CPU is the",
              "same process, measured during that path's runs only; paths rotate every round).", "",
              "| path | produce MB/s | consume MB/s | ratio vs direct (produce / consume) | gateway CPU-s/GB | vs base | per round |",
              "|---|---:|---:|---:|---:|---:|---|"]
    base_of = {"vc-tenant": "vc-plain", "vc-sni": "vc-tls"}
    for p in paths:
        pm = median(r["produce"]["mb_s"] for r in by[p])
        cm = median(r["consume"]["mb_s"] for r in by[p])
        if p == "direct":
            lines.append("| %s | %.1f | %.1f | - | - | - | - |" % (LABELS[p], pm, cm))
            continue
        pr = median(round_ratios(by[p], by["direct"], rounds, lambda r: r["produce"]["mb_s"]))
        cr = median(round_ratios(by[p], by["direct"], rounds, lambda r: r["consume"]["mb_s"]))
        g = cpu_gb(p)
        base = base_of.get(p)
        vs, per = "-", "-"
        if base and by[base] and g and cpu_gb(base):
            vs = "%.3f x %s" % (g / cpu_gb(base), base)
            per = " ".join("%.2f" % x for x in per_round_cpu(p, base))
        lines.append("| %s | %.1f | %.1f | %.3f / %.3f | %.3f | %s | %s |" % (
            LABELS[p], pm, cm, pr, cr, g or 0, vs, per))
    if lat:
        l = lat[-1]["paths"]
        d = l.get("direct", {})
        lines += ["", "Produce latency (acks=1, one record at a time, paths interleaved record by record):", "",
                  "| path | p50 µs | p99 µs | added p50 | added p99 |", "|---|---:|---:|---:|---:|"]
        for p in ORDER:
            if p not in l:
                continue
            s = l[p]
            add = ("-", "-") if p == "direct" else ("%+.0f" % (s["p50_us"] - d["p50_us"]),
                                                   "%+.0f" % (s["p99_us"] - d["p99_us"]))
            lines.append("| %s | %.0f | %.0f | %s | %s |" % (LABELS[p], s["p50_us"], s["p99_us"], add[0], add[1]))
    lines += ["", "Connection set-up is where SNI routing works (the ClientHello is read, the listener",
              "picked, then the handshake finished with its settings); once connected, an SNI",
              "connection forwards exactly as a port-per-broker one. Tenant translation walks every",
              "request and response by Kafka's schema and copies it (names change length), records",
              "included: that copy is the cost shown.", ""]
    open(a.out, "w").write("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
