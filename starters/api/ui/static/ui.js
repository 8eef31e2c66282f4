// Live runs: the page names the runs it shows that have not finished (data-live); one EventSource
// (signed in by the session cookie) updates their status, progress and stage in place. Text only:
// nothing from a run is ever written as HTML.
"use strict";

function follow(holder) {
  const ids = (holder.dataset.live || "").split(" ").filter(Boolean);
  if (ids.length === 0) return;
  const query = ids.map((id) => "run=" + encodeURIComponent(id)).join("&");
  const source = new EventSource("/ui/live?" + query);
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
