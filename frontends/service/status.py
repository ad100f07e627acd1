"""The status page: what the server is baking now, what it baked lately, how big its cache is.

`snapshot` reads the builds the bake machinery keeps (with their typed progress events) and the
index; `/api/v1/status` serves it as JSON and `/` serves `PAGE`, whose script polls that JSON
every two seconds and draws it (text only: request strings never become markup).
"""

from typing import Any

from bakery import wire
from frontends.service.bakes import BakeRpcs, Build
from frontends.service.state import ServiceIndex
from stagekit.api.bakery.v1 import bakery_pb2

RECENT = 20
"""Finished builds the page lists, newest first."""


def snapshot(service: BakeRpcs, index: ServiceIndex) -> dict[str, Any]:
    """The status page's data: active (running and queued) builds oldest first, recent
    results newest first, the cache's size and the bakes the index counted."""
    builds = service.known_builds()
    active = [_active(build) for build in builds if not build.done]
    recent = [_finished(build) for build in reversed(builds) if build.done][:RECENT]
    rows = index.entries()
    return {
        "active": active,
        "recent": recent,
        "load": {
            "running": sum(1 for build in active if build["state"] == "running"),
            "queued": sum(1 for build in active if build["state"] == "queued"),
            "max_builds": service.max_builds,
        },
        "cache": {"entries": len(rows), "bytes": sum(row.size for row in rows)},
        "outcomes": index.outcomes(),
    }


def _common(build: Build) -> dict[str, Any]:
    return {
        "id": build.id,
        "summary": build.summary,
        "created": build.created,
        "started": build.started,
        "callers": build.watchers,
    }


def _active(build: Build) -> dict[str, Any]:
    """A running or queued build with the latest progress of each stage and log line."""
    progress: dict[str, dict[str, Any]] = {}
    position, last_log = 0, ""
    for event in list(build.events):
        kind = event.WhichOneof("event")
        if kind == "progress":
            p = event.progress
            unit = "bytes" if p.unit == bakery_pb2.UNIT_BYTES else "items"
            progress[p.stage] = {"done": p.done, "total": p.total, "unit": unit}
        elif kind == "log":
            last_log = event.log.message
        elif kind == "queued":
            position = event.queued.position
    queued = build.started is None
    return {
        **_common(build),
        "state": "queued" if queued else "running",
        "position": position if queued else 0,
        "progress": [{"stage": stage, **values} for stage, values in progress.items()],
        "log": last_log,
    }


def _finished(build: Build) -> dict[str, Any]:
    """A finished build: its result (image, spec, outcome, seconds) or its error."""
    last = build.events[-1]
    answer = {**_common(build), "finished": build.finished}
    if last.HasField("result"):
        r = last.result
        outcome = next(name for name, value in wire.OUTCOMES.items() if value == r.outcome)
        answer["state"] = outcome
        answer["result"] = {
            "image": r.image,
            "spec_id": r.spec_id,
            "seconds": round(sum(r.stage_seconds.values()), 3),
            "bytes_uploaded": r.bytes_uploaded,
        }
    else:
        answer["state"] = "failed"
        answer["error"] = {
            "kind": wire.error_kind(last.error.kind).value,
            "message": last.error.message,
        }
    return answer


PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Bakery</title>
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }
  h1 { font-size: 1.4em; margin: 0 0 .2em; }
  h2 { font-size: 1.1em; margin: 1.4em 0 .4em; }
  table { border-collapse: collapse; width: 100%; }
  th, td { text-align: left; padding: .25em .6em; border-bottom: 1px solid #ddd;
           vertical-align: top; }
  th { background: #f4f4f4; }
  code { font-size: 12px; word-break: break-all; }
  .failed { color: #b00020; } .built { color: #05690a; } .muted { color: #777; }
</style>
</head>
<body>
<h1>Bakery</h1>
<p id="summary" class="muted">loading...</p>
<h2>Running and queued</h2>
<table id="active">
  <thead><tr><th>state</th><th>spec</th><th>progress</th><th>callers</th></tr></thead>
  <tbody></tbody>
</table>
<h2>Recent results</h2>
<table id="recent">
  <thead><tr><th>outcome</th><th>spec</th><th>image / error</th><th>seconds</th></tr></thead>
  <tbody></tbody>
</table>
<p id="updated" class="muted"></p>
<script>
"use strict";
function size(bytes) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (bytes >= 1024 && i < units.length - 1) { bytes /= 1024; i++; }
  return (i ? bytes.toFixed(1) : bytes) + " " + units[i];
}
function row(body, cells, cls) {
  const tr = body.insertRow();
  for (const text of cells) {
    const td = tr.insertCell();
    td.textContent = text;
  }
  if (cls) tr.cells[0].className = cls;
  return tr;
}
function progress(build) {
  if (build.state === "queued") return "position " + build.position;
  const parts = build.progress.map(p => {
    const amount = p.unit === "bytes" ? size(p.done) + (p.total ? " / " + size(p.total) : "")
                                      : p.done + (p.total ? " / " + p.total : "");
    return p.stage + " " + amount;
  });
  if (build.log) parts.push(build.log);
  return parts.join("; ");
}
function fill(id) {
  const body = document.querySelector("#" + id + " tbody");
  body.replaceChildren();
  return body;
}
function render(status) {
  const active = fill("active");
  if (!status.active.length) row(active, ["idle", "", "", ""], "muted");
  for (const b of status.active) {
    row(active, [b.state, b.summary, progress(b), String(b.callers)]);
  }
  const recent = fill("recent");
  if (!status.recent.length) row(recent, ["none yet", "", "", ""], "muted");
  for (const b of status.recent) {
    const tr = row(recent, [b.state, b.summary, "", b.result ? String(b.result.seconds) : ""],
                   b.state === "failed" ? "failed" : b.state === "built" ? "built" : "");
    const detail = tr.cells[2];
    if (b.result) {
      const image = document.createElement("code");
      image.className = "image";
      image.textContent = b.result.image;
      const spec = document.createElement("div");
      spec.className = "muted spec-id";
      spec.textContent = "spec " + b.result.spec_id;
      detail.append(image, spec);
    } else {
      detail.textContent = b.error.kind + ": " + b.error.message;
      detail.className = "failed";
    }
  }
  const load = status.load, cache = status.cache;
  document.getElementById("summary").textContent =
    load.running + " running, " + load.queued + " queued (" + load.max_builds +
    " build slots); cache: " + cache.entries + " images, " + size(cache.bytes);
}
async function refresh() {
  const updated = document.getElementById("updated");
  try {
    const answer = await fetch("api/v1/status", {cache: "no-store"});
    if (!answer.ok) throw new Error("HTTP " + answer.status);
    render(await answer.json());
    updated.textContent = "updated " + new Date().toLocaleTimeString();
  } catch (error) {
    updated.textContent = "cannot reach the server: " + error.message;
  }
}
refresh();
setInterval(refresh, 2000);
</script>
</body>
</html>
"""
