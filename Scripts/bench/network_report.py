#!/usr/bin/env python3
"""The tables of Scripts/bench/network.sh, from the figures one run left in its output directory
(<who>.<repetition>.txt with one "metric value" per line, who = ours, base, lattica, machine;
and `settings`). network.sh calls it; run it again on a directory kept with KEEP_OUT=dir:
    python3 Scripts/bench/network_report.py dir"""
import glob
import statistics
import sys

out = sys.argv[1]
settings = {}
for line in open(f"{out}/settings"):
    for kv in line.split():
        k, _, v = kv.partition("=")
        settings[k] = v
runs, busy_poll, base = settings["runs"], settings["busy_poll"], settings.get("base", "")
lattica_version = settings.get("lattica_version", "?")
P, rr_n, window_n, stream_bytes = (int(settings[k]) for k in ("payload", "rr_n", "window_n", "stream_bytes"))
nan = float("nan")


def load(who):
    """{metric: [one value per repetition]} (a metric printed twice in a repetition: its median),
    and the same per repetition, for pairing ours with the baseline."""
    per_rep = {}
    for path in glob.glob(f"{out}/{who}.*.txt"):
        rep, d = int(path.rsplit(".", 2)[1]), {}
        for line in open(path):
            parts = line.split()
            if len(parts) == 2:
                try:
                    d.setdefault(parts[0], []).append(float(parts[1]))
                except ValueError:
                    pass
        per_rep[rep] = {k: statistics.median(v) for k, v in d.items()}
    merged = {}
    for rep in sorted(per_rep):
        for k, v in per_rep[rep].items():
            merged.setdefault(k, []).append(v)
    return merged, per_rep

(ours, ours_rep), (bas, bas_rep) = load("ours"), load("base")
lat = load("lattica")[0]
mach, mach_rep = load("machine")
def med(d, k): return statistics.median(d[k]) if d.get(k) else nan
def fmt(x):
    if x != x: return "-"
    if abs(x) >= 1000: return f"{x:,.0f}"
    return f"{x:.3g}" if abs(x) < 10 else f"{x:.1f}"
def ratio(a, b): return a / b if a == a and b == b and b else nan

mib = stream_bytes / 2**20
size = f"{mib:.0f} MiB" if mib >= 1 else f"{stream_bytes} B"
rr, raw = f"rr_{P}B_median_us", f"rtt_{P}B_median_us"
print(f"\n== like for like vs the real Lattica {lattica_version} (ours: busy polling off unless the row says on; "
      f"ratio = ours/Lattica) ==")
print(f"{'metric':<88} {'latticad':>10} {'Lattica':>10} {'ratio':>8}")
rows = [  # (label, our metric, Lattica metric, scale Lattica to our unit)
    (f"request/response round trip, sequential, {P} B, {rr_n} calls, median (us)  [HEADLINE]",
     f"{rr}.poll_off", "rr_median_ms", 1e3),
    (f"  same, ours with busy polling on ({busy_poll} us)", f"{rr}.poll_on", "rr_median_ms", 1e3),
    (f"  p99 of the same calls, busy polling off (us)", f"rr_{P}B_p99_us.poll_off", "rr_p99_ms", 1e3),
    (f"requests/s, sustained window of 100, {P} B, {window_n} requests, one connection",
     "requests_per_s_100_in_flight.poll_off", "rr_window100_req_per_s", 1),
    ("  same, ours with busy polling on", "requests_per_s_100_in_flight.poll_on", "rr_window100_req_per_s", 1),
    (f"requests/s, sustained window of 1000, {P} B, {window_n} requests, one connection (*)",
     "requests_per_s_1000_in_flight.poll_off", "rr_window1000_req_per_s", 1),
    ("  same, ours with busy polling on", "requests_per_s_1000_in_flight.poll_on", "rr_window1000_req_per_s", 1),
    (f"one stream, {size} (MB/s; ours: raw stream, Lattica: RPC stream call)",
     "stream_MBps.poll_off", "stream_mb_per_s", 1),
    ("  same, ours with busy polling on", "stream_MBps.poll_on", "stream_mb_per_s", 1),
    ("idle RSS (MB; Lattica: Python + lattica)", "idle_rss_mb", "idle_rss_mb", 1),
    ("DHT put, median (ms; ours: busy polling on)", "dht_put_median_ms", "dht_put_median_ms", 1),
    ("DHT get, median (ms; ours: busy polling on)", "dht_get_median_ms", "dht_get_median_ms", 1),
    ("DHT get from a late joiner, median (ms; ours: busy polling on)", "dht_get_late_joiner_median_ms", "dht_get_late_joiner_median_ms", 1),
]
for label, k, lk, scale in rows:
    o, l = med(ours, k), med(lat, lk) * scale
    print(f"{label:<88} {fmt(o):>10} {fmt(l):>10} {fmt(ratio(o, l)):>8}")
for w in (100, 1000):
    e = med(lat, f"rr_window{w}_errors")
    if e == e and e > 0:
        print(f"  (*) Lattica, window of {w}: successful calls only; median {e:.0f} of {window_n} failed (rust-libp2p allows 100 "
              "concurrent substreams per connection; the rest fail with 'max sub-streams reached' after retries)")
if lat.get("stream_failures"):
    print(f"  Lattica: {sum(lat['stream_failures']):.0f} RPC stream call(s) failed or stalled; the stream figure is "
          "the median of the others")
print(f"  Lattica: python + import lattica alone is {fmt(med(lat, 'python_import_lattica_rss_mb'))} MB of its RSS")

print(f"\n== ours against the machine (same run; no Lattica counterpart; ratio = median over the repetitions "
      "of ours / the machine's figure of the same repetition) ==")
print(f"{'metric':<88} {'latticad':>10} {'machine':>10} {'ratio':>8}  target")
def paired(k, ref_rep, rk):
    """Median over the repetitions of ours / the reference's figure of the same repetition."""
    v = [ours_rep[i][k] / ref_rep[i][rk] for i in ours_rep
         if k in ours_rep[i] and ref_rep.get(i, {}).get(rk)]
    return statistics.median(v) if v else nan
def row(label, o, m, target="", ok=None, r=None):
    r = ratio(o, m) if r is None else r
    met = "" if ok is None or o != o else ("  met" if ok(o, r) else "  not met")
    print(f"{label:<88} {fmt(o):>10} {fmt(m):>10} {fmt(r):>8}  {target}{met}")
cpoll, csleep = med(mach, "c_tcp_pingpong_polling_us"), med(mach, "c_tcp_pingpong_blocking_us")
print(f"{'  floor: plain C, 2 threads, 64 B TCP ping-pong, polling / sleeping in epoll (us)':<88} "
      f"{fmt(cpoll):>10} {fmt(csleep):>10}")
for what, k in (("request/response round trip", rr), ("raw-stream echo on one open stream", raw)):
    for poll, mk, floor, target, ok in (("on", "c_tcp_pingpong_polling_us", cpoll, "<= 1.5x", lambda o, r: r <= 1.5),
                                        ("off", "c_tcp_pingpong_blocking_us", csleep, "", None)):
        if k == raw:
            target, ok = "", None
        row(f"{what}, {P} B, busy polling {poll} (us) vs C {'polling' if poll == 'on' else 'sleeping'} floor",
            med(ours, f"{k}.poll_{poll}"), floor, target, ok, r=paired(f"{k}.poll_{poll}", mach_rep, mk))
aead = med(ours, "aead_seal_MBps_one_core")
print(f"{'  ceiling: ChaCha20-Poly1305 seal of 64 KiB frames, one core (MB/s)':<88} {'':>10} {fmt(aead):>10}")
for poll in ("on", "off"):
    row(f"one stream, {size}, busy polling {poll} (MB/s) vs AEAD ceiling", med(ours, f"stream_MBps.poll_{poll}"), aead,
        ">= 0.85", lambda o, r: r >= 0.85, r=paired(f"stream_MBps.poll_{poll}", ours_rep, "aead_seal_MBps_one_core"))
row(f"requests/s, window of 1000, busy polling on", med(ours, "requests_per_s_1000_in_flight.poll_on"), nan,
    ">= 100,000", lambda o, r: o >= 100_000)
row(f"requests/s, window of 1000, busy polling off", med(ours, "requests_per_s_1000_in_flight.poll_off"), nan,
    ">= 100,000", lambda o, r: o >= 100_000)
row("connect + Noise + yamux + identify, busy polling on (ms)", med(ours, "connect_identified_ms.poll_on"), nan,
    "<= 2", lambda o, r: o <= 2)
row("connect + Noise + yamux + identify, busy polling off (ms)", med(ours, "connect_identified_ms.poll_off"), nan,
    "<= 2", lambda o, r: o <= 2)

print(f"\n(medians over {runs} repetitions: ours {len(ours_rep)}, Lattica {max(map(len, lat.values()), default=0)} "
      "(one round of anchors.py each), C floor " f"{max(map(len, mach.values()), default=0)})")
print(f"(DHT rows and idle RSS: ours with the daemon's default busy polling ({busy_poll} us); "
      "the DHT benchmark has no polling switch)")

if base:
    print(f"\n== this tree vs the baseline {base} (alternated step by step in each repetition) ==")
    print("ratio = median(ours) / median(baseline); paired = median over the repetitions of ours/baseline within")
    print("one repetition (each step of the two builds ran back to back: the verdict uses this one);")
    print("spread = (max - min) / median over the repetitions, baseline / ours")
    print(f"{'metric':<44} {'baseline':>10} {'ours':>10} {'ratio':>7} {'paired':>7} {'spread':>10}")
    def higher_better(k): return "per_s" in k or "MBps" in k
    def spread(v):
        m = statistics.median(v) if v else nan
        return (max(v) - min(v)) / m * 100 if v and m else nan
    worse = noisy = 0
    for k in sorted(set(ours) | set(bas)):
        b, o = med(bas, k), med(ours, k)
        r = ratio(o, b)
        pairs = [ours_rep[i][k] / bas_rep[i][k] for i in sorted(ours_rep)
                 if i in bas_rep and k in ours_rep[i] and bas_rep[i].get(k)]
        pr = statistics.median(pairs) if pairs else nan
        hb = higher_better(k)
        def beyond(x): return x == x and (x < 0.9 if hb else x > 1.1)
        every = bool(pairs) and all((x < 1) if hb else (x > 1) for x in pairs)
        flag = ""
        if beyond(pr) and every:
            flag, worse = "WORSE by > 10% (in every repetition)", worse + 1
        elif beyond(pr):
            flag, noisy = "worse by > 10% (not in every repetition)", noisy + 1
        elif beyond(r):
            flag = "(medians worse by > 10%, paired not)"
        sp = f"{spread(bas.get(k, [])):.0f}/{spread(ours.get(k, [])):.0f}%"
        print(f"{k:<44} {fmt(b):>10} {fmt(o):>10} {fmt(r):>7} {fmt(pr):>7} {sp:>10}  {flag}")
    print(f"({worse} metric(s) worse by more than 10% in every repetition, {noisy} more worse by more than "
          "10% but not in every repetition; higher is better for */s and MB/s, lower for the rest; p99 and "
          "first_ms are single samples and noisy)")
    print(f"(two identical builds come out worse in every one of {len(ours_rep)} repetitions by chance 1 time in "
          f"{2 ** len(ours_rep)} per metric: for a verdict over ~24 metrics use RUNS >= 9 on a quiet machine, "
          "e.g. ANCHORS=0 RUNS=9)")
