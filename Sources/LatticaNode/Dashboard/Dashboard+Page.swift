extension Dashboard {
    struct Asset {
        var contentType: String
        var body: [UInt8]
    }

    /// The page, its script and its style: static, in the binary, nothing loaded from elsewhere
    /// (no CDN, no web font), so it works on a machine without internet.
    static let assets: [String: Asset] = [
        "/": Asset(contentType: "text/html; charset=utf-8", body: Array(html.utf8)),
        "/dashboard.js": Asset(contentType: "text/javascript; charset=utf-8", body: Array(script.utf8)),
        "/dashboard.css": Asset(contentType: "text/css; charset=utf-8", body: Array(style.utf8)),
    ]

    static let html = #"""
    <!doctype html>
    <html lang="en">
    <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>latticad</title>
    <link rel="stylesheet" href="/dashboard.css">
    <script src="/dashboard.js" defer></script>
    </head>
    <body data-state="loading" data-updates="0">
    <header>
      <h1>latticad</h1>
      <span id="node-id" class="mono"></span>
      <span id="updated" class="muted">loading…</span>
    </header>
    <main>
      <div class="row">
        <section><h2>Node</h2><dl id="node-facts"></dl></section>
        <section><h2>CRDT store</h2><dl id="crdt-facts"></dl></section>
      </div>
      <section>
        <h2>Peers <span id="peers-count" class="muted"></span></h2>
        <table id="peers">
          <thead><tr><th>peer</th><th>connection</th><th>direction</th><th>address</th><th>RTT</th><th>agent</th>
          <th>CRDT lag</th><th>last sync</th><th>reputation</th><th>rejected</th></tr></thead>
          <tbody id="peers-body"></tbody>
        </table>
      </section>
      <section>
        <h2>Runs</h2>
        <div id="runs-body"><p class="muted">no run yet</p></div>
      </section>
    </main>
    <footer class="muted">JSON API: <a href="/api/v1/state">/api/v1/state</a> · <a href="/metrics">/metrics</a> · refreshed every second</footer>
    </body>
    </html>

    """#

    static let style = #"""
    :root { --fg: #1f2328; --muted: #656d76; --line: #d0d7de; --bg: #ffffff; --panel: #f6f8fa; }
    * { box-sizing: border-box; }
    body { margin: 0; font: 14px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); background: var(--bg); }
    header { display: flex; gap: 16px; align-items: baseline; padding: 10px 20px; border-bottom: 1px solid var(--line); background: var(--panel); }
    h1 { font-size: 18px; margin: 0; }
    h2 { font-size: 15px; margin: 0 0 8px; }
    h3 { font-size: 14px; margin: 12px 0 6px; word-break: break-all; }
    main { padding: 12px 20px; }
    section { margin-bottom: 18px; }
    .row { display: flex; gap: 40px; flex-wrap: wrap; }
    .row > section { flex: 1 1 440px; min-width: 0; }
    dl { display: grid; grid-template-columns: max-content auto; gap: 2px 12px; margin: 0; }
    dt { color: var(--muted); }
    dd { margin: 0; word-break: break-all; }
    table { border-collapse: collapse; width: 100%; }
    th, td { text-align: left; padding: 3px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
    th { color: var(--muted); font-weight: 600; }
    td.agent { max-width: 320px; word-break: break-all; }
    .mono, td.mono { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 12px; }
    .muted { color: var(--muted); }
    .bad { color: #cf222e; }
    .charts { display: flex; gap: 24px; flex-wrap: wrap; }
    .chart { border: 1px solid var(--line); background: var(--bg); }
    .chart .axis { stroke: var(--muted); stroke-width: 1; }
    .chart .grid { stroke: var(--line); stroke-width: 1; }
    .chart text { font-size: 11px; fill: var(--muted); }
    .chart .curve { fill: none; stroke-width: 2; }
    .legend { display: flex; flex-wrap: wrap; gap: 4px 14px; margin: 4px 0 8px; font-size: 12px; }
    .swatch { display: inline-block; width: 10px; height: 10px; margin-right: 4px; }
    .c0 { background: #2563eb; } .c1 { background: #dc2626; } .c2 { background: #16a34a; } .c3 { background: #9333ea; }
    .c4 { background: #ea580c; } .c5 { background: #0891b2; } .c6 { background: #db2777; } .c7 { background: #65a30d; }
    footer { padding: 10px 20px; border-top: 1px solid var(--line); }

    """#

    static let script = #"""
    // The latticad dashboard: polls /api/v1/state every second and draws it. Every text from the
    // daemon (peer agents are chosen by remote peers) goes into the page through textContent or
    // setAttribute only, never as markup.
    "use strict";
    (function () {
      const SVG = "http://www.w3.org/2000/svg";
      const COLORS = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#db2777", "#65a30d"];
      let updates = 0;

      function el(tag, cls, text) {
        const e = document.createElement(tag);
        if (cls) e.className = cls;
        if (text !== undefined && text !== null) e.textContent = String(text);
        return e;
      }
      function sv(tag, attrs, text) {
        const e = document.createElementNS(SVG, tag);
        for (const k of Object.keys(attrs)) e.setAttribute(k, String(attrs[k]));
        if (text !== undefined) e.textContent = String(text);
        return e;
      }
      function isNum(x) { return typeof x === "number" && isFinite(x); }
      function fmt(x, digits) { return isNum(x) ? x.toFixed(digits) : "–"; }
      function short(id) { id = String(id || ""); return id.length > 18 ? id.slice(0, 8) + "…" + id.slice(-6) : id; }
      function peerCell(id) { const td = el("td", "mono", short(id)); td.setAttribute("title", String(id)); return td; }
      function cell(text, cls) { return el("td", cls, text); }
      function facts(dl, pairs) {
        dl.replaceChildren();
        for (const [k, v] of pairs) dl.append(el("dt", null, k), el("dd", null, v));
      }
      function ago(s) { return isNum(s) ? s.toFixed(1) + " s ago" : "never"; }

      function renderNode(n, crdt) {
        document.getElementById("node-id").textContent = n.peer_id;
        document.getElementById("node-id").setAttribute("title", n.peer_id);
        const dht = n.dht ? n.dht.size + " peers in the routing table, " + n.dht.records + " records (" + n.dht.mode + ", " + n.dht.protocol_id + ")" : "not running";
        facts(document.getElementById("node-facts"), [
          ["agent", n.agent], ["version", n.version], ["uptime", fmt(n.uptime_s, 0) + " s"],
          ["connected peers", n.connected_peers], ["reachability", n.reachability], ["NAT type", n.nat_type],
          ["", n.nat_note], ["DHT", dht], ["listening", (n.listen_addrs || []).join("  ")],
          ["services", (n.services || []).join(", ")],
        ]);
        facts(document.getElementById("crdt-facts"), [
          ["state hash", crdt.state_hash], ["deltas", crdt.deltas], ["authors", crdt.authors], ["paths", crdt.paths],
        ]);
      }

      function renderPeers(p, crdt) {
        const body = document.getElementById("peers-body");
        body.replaceChildren();
        for (const x of p.peers) {
          const tr = el("tr", "peer");
          tr.setAttribute("data-peer-id", x.peer_id);
          const c = x.crdt;
          tr.append(peerCell(x.peer_id), cell(x.connection), cell(x.direction), cell(x.addr, "mono"),
                    cell(isNum(x.rtt_ms) ? x.rtt_ms.toFixed(2) + " ms" : "–"), cell(x.agent, "agent"),
                    cell(c ? String(c.lag) : "–"), cell(c ? ago(c.last_sync_s) : "–"),
                    cell(fmt(x.reputation, 3)), cell(x.rejected === null || x.rejected === undefined ? "–" : String(x.rejected)));
          body.append(tr);
        }
        const more = p.total > p.peers.length ? " (" + p.peers.length + " of " + p.total + " shown)" : "";
        document.getElementById("peers-count").textContent = p.total + " connected" + more;
      }

      // One chart: a polyline per node over outer steps, for `key` (accuracy or loss).
      function chart(series, key, title) {
        const W = 520, H = 240, L = 52, R = 12, T = 22, B = 30;
        const svg = sv("svg", { class: "chart", width: W, height: H, viewBox: "0 0 " + W + " " + H, "data-metric": key });
        let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
        for (const s of series) for (const p of s.points) {
          if (!isNum(p[key]) || !isNum(p.step)) continue;
          x0 = Math.min(x0, p.step); x1 = Math.max(x1, p.step); y0 = Math.min(y0, p[key]); y1 = Math.max(y1, p[key]);
        }
        svg.append(sv("text", { x: L, y: 14 }, title));
        if (!(x0 <= x1)) { svg.append(sv("text", { x: W / 2 - 30, y: H / 2 }, "no points yet")); return svg; }
        if (key === "accuracy") { y0 = Math.min(y0, 0); y1 = Math.max(y1, 1); } else { y0 = Math.min(y0, 0); }
        if (x1 === x0) x1 = x0 + 1;
        if (y1 === y0) y1 = y0 + 1;
        const X = v => L + (v - x0) / (x1 - x0) * (W - L - R);
        const Y = v => H - B - (v - y0) / (y1 - y0) * (H - T - B);
        for (let i = 0; i <= 4; i++) {
          const v = y0 + (y1 - y0) * i / 4;
          svg.append(sv("line", { class: "grid", x1: L, x2: W - R, y1: Y(v), y2: Y(v) }));
          svg.append(sv("text", { x: 4, y: Y(v) + 4 }, v.toFixed(key === "accuracy" ? 2 : 3)));
        }
        svg.append(sv("line", { class: "axis", x1: L, x2: W - R, y1: H - B, y2: H - B }));
        svg.append(sv("line", { class: "axis", x1: L, x2: L, y1: T, y2: H - B }));
        svg.append(sv("text", { x: L, y: H - 10 }, String(x0)));
        svg.append(sv("text", { x: W - R - 30, y: H - 10 }, String(x1)));
        svg.append(sv("text", { x: (W - L) / 2, y: H - 10 }, "outer step"));
        series.forEach((s, i) => {
          const pts = s.points.filter(p => isNum(p[key]) && isNum(p.step));
          const color = COLORS[i % COLORS.length];
          const line = sv("polyline", { class: "curve", stroke: color, "data-points": pts.length,
                                        points: pts.map(p => X(p.step).toFixed(1) + "," + Y(p[key]).toFixed(1)).join(" ") });
          line.setAttribute("data-peer", s.peer);
          svg.append(line);
          if (pts.length) {
            const last = pts[pts.length - 1];
            svg.append(sv("circle", { cx: X(last.step), cy: Y(last[key]), r: 3, fill: color }));
          }
        });
        return svg;
      }

      function table(headers, rows, cls) {
        const t = el("table", cls);
        const hr = el("tr");
        for (const h of headers) hr.append(el("th", null, h));
        const head = el("thead"); head.append(hr);
        const body = el("tbody");
        for (const r of rows) { const tr = el("tr"); for (const c of r) tr.append(c instanceof Element ? c : cell(c)); body.append(tr); }
        t.append(head, body);
        return t;
      }

      function renderRuns(runs) {
        const root = document.getElementById("runs-body");
        root.replaceChildren();
        if (!runs.length) { root.append(el("p", "muted", "no run yet")); return; }
        for (const r of runs) {
          const sec = el("div", "run");
          sec.setAttribute("data-run", r.run);
          sec.append(el("h3", null, r.run));
          const dl = el("dl");
          const pairs = [["joined", r.joined ? "yes" : "no"], ["members", String(r.members_total)]];
          if (r.joined) pairs.push(["our step", r.step + " / " + r.rounds], ["our rejected contributions", String(r.rejected)]);
          const cfg = Object.keys(r.config).map(k => k + "=" + r.config[k]).join("  ");
          if (cfg) pairs.push(["config", cfg]);
          facts(dl, pairs);
          sec.append(dl);
          const legend = el("div", "legend");
          r.series.forEach((s, i) => {
            const item = el("span");
            item.append(el("span", "swatch c" + (i % COLORS.length)), document.createTextNode(short(s.peer) + " (" + s.points.length + " points)"));
            item.setAttribute("title", s.peer);
            legend.append(item);
          });
          sec.append(legend);
          const charts = el("div", "charts");
          charts.append(chart(r.series, "accuracy", "held-out accuracy per node"), chart(r.series, "loss", "training loss per node"));
          sec.append(charts);
          if (r.reputation.length) {
            sec.append(el("h3", null, "reputation (ours, of the peers we pulled from)"));
            sec.append(table(["peer", "reputation", "rejected contributions"],
                             r.reputation.map(p => [peerCell(p.peer), fmt(p.reputation, 3), String(p.rejected)]), "reputation"));
          }
          sec.append(el("h3", null, "reports (evidence, " + r.reports_total + " in the store)"));
          if (r.reports.length) {
            sec.append(table(["reporter", "accused", "reason", "step", "evidence (SHA-256)"],
                             r.reports.map(x => [peerCell(x.reporter), peerCell(x.accused), x.reason, String(x.step),
                                                 el("td", "mono", x.evidence.map(h => h.slice(0, 16) + "…").join(" "))]), "reports"));
          } else {
            sec.append(el("p", "muted", "none"));
          }
          if (r.checkpoints.length) {
            sec.append(el("h3", null, "checkpoints"));
            sec.append(table(["version", "step", "accuracy", "author", "content hash"],
                             r.checkpoints.map(c => [String(c.version), String(c.step), fmt(c.accuracy, 3), peerCell(c.author),
                                                     el("td", "mono", c.content_hash.slice(0, 16) + "…")]), "checkpoints"));
          }
          root.append(sec);
        }
      }

      async function poll() {
        try {
          const res = await fetch("/api/v1/state", { cache: "no-store" });
          if (!res.ok) throw new Error("HTTP " + res.status);
          const s = await res.json();
          renderNode(s.node, s.crdt);
          renderPeers(s.peers, s.crdt);
          renderRuns(s.runs.runs);
          updates += 1;
          document.body.setAttribute("data-state", "ok");
          document.body.setAttribute("data-updates", String(updates));
          document.getElementById("updated").textContent = "updated " + new Date(s.generated_ms).toLocaleTimeString();
        } catch (e) {
          document.body.setAttribute("data-state", "error");
          document.getElementById("updated").textContent = "cannot reach latticad: " + e.message;
        } finally {
          setTimeout(poll, 1000);
        }
      }
      poll();
    })();

    """#
}
