// Live runs: the page names the runs it shows that have not finished (data-live) and, on the list's first
// page, its filter (data-newer); one EventSource (signed in by the session cookie) updates their status,
// progress and stage in place and says how many newer runs match. Text only: nothing from a run is ever
// written as HTML.
"use strict";

function follow(holder) {
  const ids = (holder.dataset.live || "").split(" ").filter(Boolean);
  const newer = holder.dataset.newer;
  if (ids.length === 0 && !newer) return;
  const query = ids.map((id) => "run=" + encodeURIComponent(id));
  if (newer) query.push("newer=" + encodeURIComponent(newer));
  const source = new EventSource("/ui/live?" + query.join("&"));
  source.addEventListener("newer", (event) => {
    const count = JSON.parse(event.data).count;
    const line = document.querySelector("p.newer");
    if (!line) return;
    line.hidden = count === 0;
    const link = line.querySelector("a");
    link.href = location.href; // the first page again, with its filters
    link.textContent = count + (count === 1 ? " newer run" : " newer runs") + " — show";
  });
  source.addEventListener("run", (event) => {
    const run = JSON.parse(event.data);
    for (const element of document.querySelectorAll("[data-run]")) {
      if (element.dataset.run === run.id) show(element, run);
    }
    if (holder.id === "run" && ["completed", "failed", "cancelled", "timed_out", "expired"].includes(run.status)) {
      source.close();
      refresh(); // the finished run's output, error and steps, without reloading the page
    }
  });
  source.addEventListener("end", () => source.close());
}

function show(element, run) {
  const status = element.querySelector(".status");
  if (status) {
    status.textContent = run.status;
    status.dataset.status = run.status;
  }
  const bar = element.querySelector(".progress progress");
  if (bar) bar.value = run.progress;
  const percent = element.querySelector(".progress .percent");
  if (percent) percent.textContent = run.progress + "%";
  const stage = element.querySelector(".stage");
  if (stage) stage.textContent = run.stage;
}

async function refresh() {
  const response = await fetch(location.href, { credentials: "same-origin" });
  if (!response.ok) return;
  const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
  const main = fresh.querySelector("main");
  if (main) document.querySelector("main").replaceWith(main);
}

// Relative times ("3 min ago") and the time running runs have taken, kept current while the page is open.
function duration(seconds) {
  if (seconds < 1) return Math.round(seconds * 1000) + " ms";
  if (seconds < 60) return Math.round(seconds * 10) / 10 + " s";
  const whole = Math.round(seconds);
  for (const [unit, size, smaller, small] of [["d", 86400, "h", 3600], ["h", 3600, "min", 60], ["min", 60, "s", 1]]) {
    if (whole >= size * (unit === "d" ? 2 : 1)) {
      const rest = Math.floor((whole % size) / small);
      return Math.floor(whole / size) + " " + unit + (rest ? " " + rest + " " + smaller : "");
    }
  }
  return whole + " s";
}

const FINISHED = ["completed", "failed", "cancelled", "timed_out", "expired"];

function tick() {
  const now = Date.now();
  for (const time of document.querySelectorAll("time.ago[datetime]")) {
    time.textContent = duration(Math.max(0, (now - Date.parse(time.getAttribute("datetime"))) / 1000)) + " ago";
  }
  for (const took of document.querySelectorAll(".took[data-since]")) {
    const status = took.closest("tr")?.querySelector(".status");
    if (status && FINISHED.includes(status.dataset.status)) continue; // the live update said it ended
    took.textContent = duration(Math.max(0, (now - Date.parse(took.dataset.since)) / 1000));
  }
}

// A bar of the trace view opens its step's input, result and error in the steps table.
document.addEventListener("click", (event) => {
  const bar = event.target.closest("a.bar");
  const row = bar && document.getElementById(bar.getAttribute("href").slice(1));
  if (row) for (const details of row.querySelectorAll("details")) details.open = true;
});

document.addEventListener("DOMContentLoaded", () => {
  for (const holder of document.querySelectorAll("[data-live]")) follow(holder);
  setInterval(tick, 5000);
});

// A run's data streams: each shown stream follows on from its last chunk (an EventSource each, until the
// run has finished); while the run is open, streams it starts later are added. Text only, as above.
const STREAM_LINES = 500; // the lines a stream keeps on screen

function followStream(runId, pre) {
  const url = "/ui/runs/" + encodeURIComponent(runId) + "/streams/" + encodeURIComponent(pre.dataset.stream) +
    "/live?after=" + encodeURIComponent(pre.dataset.after || "0");
  const source = new EventSource(url);
  source.addEventListener("chunk", (event) => {
    const chunk = JSON.parse(event.data);
    pre.dataset.after = chunk.seq;
    const atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
    pre.textContent += chunk.data + "\n";
    const lines = pre.textContent.split("\n");
    if (lines.length > STREAM_LINES + 1) pre.textContent = lines.slice(-STREAM_LINES - 1).join("\n");
    if (atBottom) pre.scrollTop = pre.scrollHeight;
  });
  source.addEventListener("end", () => source.close());
}

function addStream(section, name) {
  const title = document.createElement("h3");
  title.textContent = name;
  const pre = document.createElement("pre");
  pre.className = "stream";
  pre.dataset.stream = name;
  pre.dataset.after = "0";
  section.append(title, pre);
  section.hidden = false;
  followStream(section.dataset.streams, pre);
}

function followStreams(section) {
  const runId = section.dataset.streams;
  for (const pre of section.querySelectorAll("pre.stream")) followStream(runId, pre);
  if (!("open" in section.dataset)) return;
  const look = async () => {
    if (!section.isConnected) return; // the page was refreshed: its new section looks for itself
    const response = await fetch("/ui/runs/" + encodeURIComponent(runId) + "/streams", { credentials: "same-origin" });
    if (response.ok) {
      const known = new Set([...section.querySelectorAll("pre.stream")].map((pre) => pre.dataset.stream));
      for (const info of await response.json()) if (!known.has(info.name)) addStream(section, info.name);
    }
    setTimeout(look, 2000);
  };
  setTimeout(look, 2000);
}

document.addEventListener("DOMContentLoaded", () => {
  for (const section of document.querySelectorAll("section.streams")) followStreams(section);
});
