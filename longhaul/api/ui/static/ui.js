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

document.addEventListener("DOMContentLoaded", () => {
  for (const holder of document.querySelectorAll("[data-live]")) follow(holder);
});
