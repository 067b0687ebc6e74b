#!/usr/bin/env python3
"""Helper of bench/peers.

  peers_report.py row WRK_OUTPUT ROUND SCENARIO ROLE GATEWAY T0 T1 HZ SECONDS
      prints one CSV row from a `wrk --latency` output and the gateway's CPU
      ticks before (T0) and after (T1) the run
  peers_report.py report PEERS_CSV IDLE_CSV IDLE_N WHEN VERSIONS COMMAND
      prints the markdown report: medians, ratios (min/median/max over rounds)
      and the issue's bar, met or missed
"""
import csv
import re
import statistics
import sys

GATEWAYS = ["tlsgate", "haproxy", "nginx"]
SCENARIOS = [("ka", "keep-alive, small response"), ("new", "new TLS connection per request"),
             ("1mib", "1 MiB responses")]
ROLES = ["passthrough", "offload"]


def wrk_ms(text, label):
    m = re.search(r"^\s*" + re.escape(label) + r"\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
    if not m:
        return ""
    v = float(m.group(1))
    unit = m.group(2)
    return "%.3f" % (v / 1000 if unit == "us" else v * 1000 if unit == "s" else v)


def row(args):
    path, rnd, sc, role, gw, t0, t1, hz, secs = args
    text = open(path, encoding="utf-8", errors="replace").read()
    m = re.search(r"(\d+) requests in", text)
    reqs = int(m.group(1)) if m else 0
    errors = 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if m:
        errors += sum(int(x) for x in m.groups())
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    if m:
        errors += int(m.group(1))
    cpu = ""
    if gw != "direct" and reqs:
        cpu = "%.1f" % ((int(t1) - int(t0)) / int(hz) * 1e6 / reqs)
    print(",".join([rnd, sc, role, gw, "%.0f" % (reqs / float(secs)), wrk_ms(text, "50%"),
                    wrk_ms(text, "99%"), cpu, str(errors)]))


def num(v):
    return float(v) if v not in ("", None) else None


def med(vals):
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


def fmt(v, digits=1):
    return "—" if v is None else ("%.*f" % (digits, v))


def report(args):
    peers_csv, idle_csv, idle_n, when, versions, command = args
    rows = list(csv.DictReader(open(peers_csv)))
    by = {}
    for r in rows:
        by.setdefault((r["scenario"], r["role"], r["gateway"]), []).append(r)
    rounds = sorted({r["round"] for r in rows}, key=int)
    out = []
    p = out.append
    p("# bench/peers — %s" % when)
    p("")
    p("%s. Command: `%s`. Every gateway: one worker pinned to CPU 0; origin and wrk on CPU 1. "
      "Medians over %d interleaved rounds." % (versions, command, len(rounds)))
    p("")
    p("| scenario | role | gateway | req/s | p50 ms | p99 ms | gateway CPU µs/req | errors |")
    p("|---|---|---|---|---|---|---|---|")
    for sc, label in SCENARIOS:
        for role in ROLES + ["direct"]:
            for gw in (GATEWAYS if role != "direct" else ["direct"]):
                rs = by.get((sc, role, gw), [])
                if not rs:
                    continue
                p("| %s | %s | %s | %s | %s | %s | %s | %d |" % (
                    label, role, gw, fmt(med([num(r["rps"]) for r in rs]), 0),
                    fmt(med([num(r["p50_ms"]) for r in rs]), 2),
                    fmt(med([num(r["p99_ms"]) for r in rs]), 2),
                    fmt(med([num(r["cpu_us_per_req"]) for r in rs])),
                    sum(int(r["errors"]) for r in rs)))
    p("")
    p("Ratios tlsgate/peer per round (min / median / max). CPU: lower is better (bar ≤ 1.00); "
      "req/s: higher is better (bar ≥ 1.00).")
    p("")
    p("| scenario | role | CPU vs haproxy | CPU vs nginx | req/s vs haproxy | req/s vs nginx |")
    p("|---|---|---|---|---|---|")
    bar = []
    for sc, label in SCENARIOS:
        for role in ROLES:
            cells = []
            for metric in ("cpu_us_per_req", "rps"):
                for peer in ("haproxy", "nginx"):
                    ratios = []
                    for rnd in rounds:
                        a = [num(r[metric]) for r in by.get((sc, role, "tlsgate"), [])
                             if r["round"] == rnd]
                        b = [num(r[metric]) for r in by.get((sc, role, peer), [])
                             if r["round"] == rnd]
                        if a and b and a[0] is not None and b[0]:
                            ratios.append(a[0] / b[0])
                    if ratios:
                        cells.append("%.2f / **%.2f** / %.2f" % (min(ratios),
                                                                 statistics.median(ratios),
                                                                 max(ratios)))
                        if peer == "haproxy":
                            m = statistics.median(ratios)
                            ok = m <= 1.0 if metric == "cpu_us_per_req" else m >= 1.0
                            bar.append("%s %s %s vs haproxy: median %.2f — %s" % (
                                label, role, "CPU" if metric == "cpu_us_per_req" else "req/s",
                                m, "met" if ok else "MISSED"))
                    else:
                        cells.append("—")
            p("| %s | %s | %s |" % (label, role, " | ".join(cells)))
    p("")
    direct = med([num(r["rps"]) for r in by.get(("1mib", "direct", "direct"), [])])
    pt = med([num(r["rps"]) for r in by.get(("1mib", "passthrough", "tlsgate"), [])])
    if direct and pt:
        bar.append("passthrough 1 MiB throughput: %.0f MiB/s = %.0f%% of direct (%.0f MiB/s) — %s"
                   % (pt, 100 * pt / direct, direct, "met" if pt >= 0.9 * direct else "MISSED"))
    idle = list(csv.reader(open(idle_csv))) if idle_csv else []
    idle = [r for r in idle if r]
    if idle:
        p("Memory per idle connection (RSS growth / %s connections, KiB; offload: handshake "
          "done and one request served):" % idle_n)
        p("")
        p("| role | tlsgate | haproxy | nginx |")
        p("|---|---|---|---|")
        for r in idle:
            p("| %s | %s |" % (r[0], " | ".join(r[1:])))
            try:
                t, h = float(r[1]), float(r[2])
                bar.append("%s idle memory: tlsgate %.2f KiB vs haproxy %.2f KiB — %s" % (
                    r[0], t, h, "met" if t <= h else "MISSED"))
            except (ValueError, IndexError):
                pass
        p("")
    p("Bar (issue 7):")
    p("")
    for b in bar:
        p("- " + b)
    print("\n".join(out))


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "row" and len(sys.argv) == 11:
        row(sys.argv[2:])
    elif len(sys.argv) >= 2 and sys.argv[1] == "report" and len(sys.argv) == 8:
        report(sys.argv[2:])
    else:
        sys.exit(__doc__)
