#!/usr/bin/env bash
# The dashboard in a real browser (issue 12, part 3): starts 3 latticad daemons on loopback and
# a short digits run between them (node-2 attacks with sign-flip and has an identify agent full of
# HTML), loads each node's dashboard (http://<metrics_addr>/) in Debian's headless Chromium after
# the page's script has run, and checks what the DOM shows: the other two peers listed, an
# accuracy and a loss curve with points for each of the 3 nodes, both other peers in the
# reputation table, the hostile agent shown as text (never as markup); and, through the API, the
# same CRDT state hash on every node once the run is over. Saves a screenshot of node-0's page.
# Stops every daemon on exit, also on failure or Ctrl-C.
#   LATTICA_BIN_DIR: where latticad, lattica and lattica-train are (default: swift build's
#   release bin path). Output (DOM dumps, screenshot, logs): $LATTICA_DASHBOARD_OUT or
#   .lattica-dashboard/. Installs the `chromium` package with apt when it is missing;
#   `--setup-only` only installs it (Scripts/test.sh does that outside the test's network
#   namespace, which has no route to the package mirror).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v chromium >/dev/null; then
  echo "dashboard-test: installing chromium (Debian package)"
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo=sudo
  $sudo apt-get install -y --no-install-recommends chromium >/dev/null || {
    $sudo apt-get update >/dev/null && $sudo apt-get install -y --no-install-recommends chromium >/dev/null; }
fi
[ "${1:-}" = "--setup-only" ] && exit 0
bin="${LATTICA_BIN_DIR:-$(swift build -c release --show-bin-path)}"
out="${LATTICA_DASHBOARD_OUT:-$PWD/.lattica-dashboard}"
rounds="${LATTICA_DASHBOARD_ROUNDS:-12}"
for p in latticad lattica lattica-train; do
  [ -x "$bin/$p" ] || { echo "dashboard-test: $bin/$p is missing (build it, or set LATTICA_BIN_DIR)" >&2; exit 1; }
done
rm -rf "$out"; mkdir -p "$out"
t0=$(date +%s)
pids=()
stop() {
  local rc=$?
  trap - INT TERM EXIT
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ "$rc" -ne 0 ]; then
    echo "dashboard-test: FAILED (logs, DOM dumps in $out)" >&2
    for f in "$out"/node-*/latticad.log; do [ -s "$f" ] && { echo "--- $f" >&2; tail -5 "$f" >&2; }; done
  fi
  exit "$rc"
}
trap stop EXIT
trap 'exit 130' INT TERM
fail() { echo "dashboard-test: $*" >&2; exit 1; }
ctl() { local d="$1"; shift; "$bin/lattica" --data-dir "$out/node-$d" "$@"; }
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

# An agent string with markup and quotes: a hostile peer's (node-2, which also sends sign-flipped
# models), shown on the others' pages.
evil='<img src=x id=injected onerror="document.title=1"><script>document.title=2</script>"'"'"'&amp;'
boot=""
for i in 0 1 2; do
  d="$out/node-$i"; mkdir -p "$d"
  args=(--data-dir "$d" --listen /ip4/127.0.0.1/tcp/0 --metrics-addr 127.0.0.1:0 --log-level warning)
  if [ "$i" = 2 ]; then
    printf '[identify]\nagent_version = "%s"\n' "$(printf '%s' "$evil" | sed 's/\\/\\\\/g; s/"/\\"/g')" > "$d/latticad.toml"
    printf '[train]\nattack = "sign-flip"\n' >> "$d/latticad.toml"
    args+=(--config "$d/latticad.toml")
  fi
  [ -n "$boot" ] && args+=(--bootstrap "$boot")
  "$bin/latticad" "${args[@]}" 2>"$d/latticad.log" &
  pids+=($!)
  for _ in $(seq 1 200); do ctl "$i" status --json >/dev/null 2>&1 && break; kill -0 "$!" || fail "node-$i exited"; sleep 0.05; done
  ctl "$i" status --json > "$d/status.json" || fail "node-$i did not start"
  [ -z "$boot" ] && boot=$(json 'd["listen_addrs"][0]' < "$d/status.json")
done
url() { echo "http://$(json 'd["metrics_addr"]' < "$out/node-$1/status.json")"; }
for _ in $(seq 1 200); do  # until node-0 has both others connected and identified
  n=$(curl -sf "$(url 0)/api/v1/peers" | json 'sum(1 for p in d["peers"] if p["agent"])' || echo 0)
  [ "$n" -ge 2 ] && break; sleep 0.1
done
[ "$n" -ge 2 ] || fail "node-0 sees $n identified peers, not 2"

ctl 0 train start --run digits --nodes 3 --rounds "$rounds" --k 3 --shard 0/3 >/dev/null
run=$(ctl 0 train status --json | json 'd["runs"][0]["run"]')
for i in 1 2; do
  for _ in $(seq 1 100); do ctl "$i" train join "$run" --shard "$i/3" >/dev/null 2>&1 && break; sleep 0.1; done
done
echo "dashboard-test: 3 daemons, run $run ($rounds rounds)"

# Until every trainer has finished and node-0's API has every node's curve.
deadline=$(( $(date +%s) + 90 ))
while :; do
  finished=0
  for i in 0 1 2; do
    s=$(ctl "$i" train status --json 2>/dev/null | json 'd["runs"][0]["trainer"] if d["runs"] else ""' || true)
    case "$s" in finished|"exited with 0") finished=$((finished + 1)) ;; "exited with"*|"killed"*) fail "node-$i trainer: $s" ;; esac
  done
  curves=$(curl -sf "$(url 0)/api/v1/runs" | json 'sum(1 for s in d["runs"][0]["series"] if sum(p["accuracy"] is not None for p in s["points"]) >= 3)' 2>/dev/null || echo 0)
  [ "$finished" = 3 ] && [ "$curves" = 3 ] && break
  [ "$(date +%s)" -lt "$deadline" ] || fail "after 90 s: $finished of 3 trainers finished, $curves of 3 curves on node-0"
  sleep 0.5
done
for _ in $(seq 1 100); do  # the last progress writes reach everyone: one state hash
  hashes=$(for i in 0 1 2; do curl -sf "$(url "$i")/api/v1/crdt" | json 'd["state_hash"]'; done | sort -u | wc -l)
  [ "$hashes" = 1 ] && break; sleep 0.2
done
[ "$hashes" = 1 ] || fail "the nodes' CRDT state hashes differ"

for i in 0 1 2; do curl -sf "$(url "$i")/api/v1/state" > "$out/node-$i/state.json"; done  # what the pages will draw
chrome=(chromium --headless --disable-gpu --no-first-run --disable-extensions --disable-dev-shm-usage
        --user-data-dir="$out/chromium-profile" --virtual-time-budget=5000)
[ "$(id -u)" -eq 0 ] && chrome+=(--no-sandbox)
for i in 0 1 2; do
  "${chrome[@]}" --dump-dom "$(url "$i")/" > "$out/node-$i/dom.html" 2>"$out/node-$i/chromium.log" || fail "chromium failed on node-$i"
done
"${chrome[@]}" --window-size=1400,1900 --screenshot="$out/dashboard.png" "$(url 0)/" 2>"$out/chromium-screenshot.log" \
  || fail "chromium could not take the screenshot"
[ -s "$out/dashboard.png" ] || fail "no screenshot"

# What the DOM shows, read back as a browser built it.
python3 - "$out" "$evil" <<'PY'
import json, sys
from html.parser import HTMLParser
out, evil = sys.argv[1], sys.argv[2]

class DOM(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack, self.peers, self.curves, self.agents, self.tags, self.body = [], [], [], [], [], {}
        self.text, self.table, self.in_body, self.rows = None, None, False, {}
    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append((tag, a))
        if tag == "table": self.table = a.get("class")
        if tag == "tbody": self.in_body = True
        if tag == "tr" and self.in_body: self.rows[self.table] = self.rows.get(self.table, 0) + 1
        if tag == "body": self.body = a
        if tag == "tr" and a.get("class") == "peer": self.peers.append(a.get("data-peer-id"))
        if tag == "svg" and "data-metric" in a: self.metric = a["data-metric"]
        if tag == "polyline" and a.get("class") == "curve":
            self.curves.append((self.metric, a.get("data-peer"), int(a.get("data-points", "0")), a.get("points", "")))
        if tag == "td" and a.get("class") == "agent": self.text = []
    def handle_endtag(self, tag):
        if tag == "tbody": self.in_body = False
        if tag == "td" and self.text is not None: self.agents.append("".join(self.text)); self.text = None
    def handle_data(self, data):
        if self.text is not None: self.text.append(data)

status = [json.load(open(f"{out}/node-{i}/status.json")) for i in range(3)]
ids = [s["peer_id"] for s in status]
problems = []
for i in range(3):
    d = DOM(); d.feed(open(f"{out}/node-{i}/dom.html").read())
    others = set(ids) - {ids[i]}
    if d.body.get("data-state") != "ok" or int(d.body.get("data-updates", "0")) < 1:
        problems.append(f"node-{i}: the page's script did not render (body {d.body})")
    if set(d.peers) != others:
        problems.append(f"node-{i}: peers listed {d.peers}, expected {sorted(others)}")
    for metric in ("accuracy", "loss"):
        got = {p: n for m, p, n, pts in d.curves if m == metric and n >= 3 and len(pts.split()) == n}
        if set(got) != set(ids):
            problems.append(f"node-{i}: {metric} curves with >= 3 points for {sorted(got)}, expected all 3 nodes")
    scripts = [a.get("src") for t, a in d.tags if t == "script"]
    if scripts != ["/dashboard.js"] or any(t == "img" for t, _ in d.tags) or any(a.get("id") == "injected" for _, a in d.tags):
        problems.append(f"node-{i}: markup from a peer's agent string reached the DOM: scripts {scripts}")
    if d.rows.get("reputation", 0) != 2:
        problems.append(f"node-{i}: the reputation table lists {d.rows.get('reputation', 0)} peers, not 2")
    want_evil = i != 2
    if want_evil and evil not in d.agents:
        problems.append(f"node-{i}: the hostile agent is not shown as text: {d.agents}")
    print(f"dashboard-test: node-{i}: {len(d.peers)} peers listed, "
          f"{sum(1 for c in d.curves if c[0] == 'accuracy')} accuracy and {sum(1 for c in d.curves if c[0] == 'loss')} loss curves, "
          f"points per curve {sorted(c[2] for c in d.curves if c[0] == 'accuracy')}, "
          f"{d.rows.get('reputation', 0)} peers with a reputation, {d.rows.get('reports', 0)} reports shown")
if problems:
    print("\n".join("dashboard-test: " + p for p in problems), file=sys.stderr)
    sys.exit(1)
PY
echo "dashboard-test: ok in $(( $(date +%s) - t0 )) s; screenshot $out/dashboard.png"
