"""The read-only line view `socketeer serve` shows at /line: this station's sites in the
window's state colours, the other stations' sites (as they publish them to a shared
production log), the job's yield and devices per hour, each station of the line
(from a shared production log), and the last failures, refreshed every second from
/api/v1/line. The page reads the operator token from its address's fragment
(``/line#token=...``: a fragment never reaches a server log) and sends it as a bearer
token; it changes nothing."""

from __future__ import annotations

#: state -> (background, ink), as app.ui.site_grid paints the sites
STATE_COLOURS = {
    "idle": ("#eceff1", "#37474f"),
    "running": ("#fff3c4", "#5d4300"),
    "pass": ("#c8f7c5", "#0b5e1a"),
    "fail": ("#ffcdd2", "#8e0015"),
    "cancelled": ("#ffe0b2", "#7a3e00"),
    "link-lost": ("#ffcdd2", "#8e0015"),
    "error": ("#ede7f6", "#4a148c"),
}

_CSS_STATES = "\n".join(
    f".site.{state} {{ background: {bg}; color: {ink}; }}"
    for state, (bg, ink) in STATE_COLOURS.items()
)

LINE_VIEW_HTML = (
    """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Socketeer line view</title>
<style>
body { font-family: sans-serif; margin: 16px; background: #fafafa; color: #263238; }
h1 { font-size: 20px; margin: 0 0 4px 0; } .sub { color: #607d8b; margin-bottom: 12px; }
#sites, .grid { display: grid; grid-template-columns: repeat(8, 110px); gap: 8px; }
.site { border-radius: 8px; padding: 8px; height: 60px; border: 1px solid #b0bec5; }
.site b { font-size: 18px; } .site .what { font-size: 12px; }
.figures { display: flex; gap: 24px; margin: 16px 0; }
.figure { background: white; border: 1px solid #cfd8dc; border-radius: 8px; padding: 8px 16px; }
.figure .value { font-size: 24px; font-weight: bold; }
table { border-collapse: collapse; background: white; margin-bottom: 16px; }
td, th { border: 1px solid #cfd8dc; padding: 4px 8px; font-size: 13px; text-align: left; }
#problem { color: #8e0015; }
"""
    + _CSS_STATES
    + """
</style></head>
<body>
<h1 id="title">Socketeer line view</h1>
<div class="sub" id="job">connecting...</div>
<div id="problem"></div>
<div id="sites"></div>
<div id="line"></div>
<div class="figures">
 <div class="figure"><div>good</div><div class="value" id="good">-</div></div>
 <div class="figure"><div>yield</div><div class="value" id="yield">-</div></div>
 <div class="figure"><div>devices / hour</div><div class="value" id="rate">-</div></div>
</div>
<h2>Stations</h2><table id="stations"><tr><th>station</th><th>total</th><th>pass</th>
<th>fail</th><th>yield</th></tr></table>
<h2>Last failures</h2><table id="failures"><tr><th>time</th><th>station</th><th>site</th>
<th>serial</th><th>step</th><th>message</th></tr></table>
<script>
const token = new URLSearchParams(location.hash.slice(1)).get("token") || "";
function cell(text) { const td = document.createElement("td"); td.textContent = text; return td; }
function rows(table, items, cells) {
  while (table.rows.length > 1) table.deleteRow(1);
  for (const item of items) {
    const tr = document.createElement("tr");
    for (const text of cells(item)) tr.appendChild(cell(text));
    table.appendChild(tr);
  }
}
function pct(value) {
  return value === null || value === undefined ? "-" : value.toFixed(1) + " %";
}
async function refresh() {
  try {
    const answer = await fetch("/api/v1/line", {headers: {Authorization: "Bearer " + token}});
    const doc = await answer.json();
    if (!answer.ok) { document.getElementById("problem").textContent = doc.error; return; }
    document.getElementById("problem").textContent = "";
    document.getElementById("title").textContent = "Station " + doc.station;
    const job = doc.job;
    document.getElementById("job").textContent = job
      ? job.name + " (" + job.device + ")" + (doc.running ? ": running" : ": idle")
      : "no job open";
    const sites = document.getElementById("sites");
    sites.innerHTML = "";
    for (const site of doc.sites) {
      const tile = document.createElement("div");
      tile.className = "site " + site.state;
      tile.dataset.state = site.state;
      tile.innerHTML = "<b>" + site.index + "</b><div class='what'></div>";
      tile.querySelector(".what").textContent = site.phase || site.state;
      sites.appendChild(tile);
    }
    const line = document.getElementById("line");
    line.innerHTML = "";
    for (const [name, others] of Object.entries(doc.line || {})) {
      const heading = document.createElement("h3");
      heading.textContent = "Station " + name;
      line.appendChild(heading);
      const grid = document.createElement("div");
      grid.className = "grid";
      for (const site of others) {
        const tile = document.createElement("div");
        tile.className = "site " + site.state;
        tile.dataset.station = name;
        tile.dataset.state = site.state;
        tile.innerHTML = "<b>" + site.index + "</b><div class='what'></div>";
        tile.querySelector(".what").textContent = site.phase || site.state;
        grid.appendChild(tile);
      }
      line.appendChild(grid);
    }
    const summary = doc.summary;
    document.getElementById("good").textContent = summary.passed;
    document.getElementById("yield").textContent = pct(summary.yield_percent);
    document.getElementById("rate").textContent =
      summary.devices_per_hour === null ? "-" : summary.devices_per_hour.toFixed(0);
    rows(document.getElementById("stations"), Object.entries(summary.per_station),
      ([name, c]) => [name, c.total, c.passed, c.failed, pct(c.yield_percent)]);
    rows(document.getElementById("failures"), doc.failures,
      (f) => [f.time, f.station, f.site, f.serial || "", f.failed_step || "", f.message]);
  } catch (err) {
    document.getElementById("problem").textContent = "no answer from the station: " + err;
  }
}
refresh();
setInterval(refresh, 1000);
</script>
</body></html>
"""
)
