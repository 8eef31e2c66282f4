// A run (or every run with a tag) live, from a public access token in the page's fragment
// (#run=RUN_ID&token=pat_… or #tag=TAG&token=pat_…; the fragment never reaches a server log).
// Everything shown is set as text, never as HTML: a stage or a tag cannot inject markup.
"use strict";

const params = new URLSearchParams(location.hash.slice(1));
const token = params.get("token");
const run = params.get("run");
const tag = params.get("tag");
const api = params.get("api") || ""; // the API's origin, when this page is served from another one
const cards = new Map();

function show(element, text) {
  element.textContent = text;
}

function problem(text) {
  const box = document.getElementById("problem");
  show(box, text);
  box.hidden = false;
}

function card(id) {
  let section = cards.get(id);
  if (!section) {
    section = document.getElementById("run-card").content.firstElementChild.cloneNode(true);
    section.dataset.run = id;
    cards.set(id, section);
    document.getElementById("runs").prepend(section);
  }
  return section;
}

function renditions(list, states) {
  list.replaceChildren();
  for (const [name, state] of Object.entries(states || {})) {
    const item = document.createElement("li");
    const size = state.size_bytes ? `, ${(state.size_bytes / 1024).toFixed(0)} KiB` : "";
    item.textContent = `${name}: ${state.status}${size}`;
    list.append(item);
  }
}

function render(record) {
  const section = card(record.id);
  show(section.querySelector(".workflow"), record.workflow);
  show(section.querySelector(".run-id"), record.id);
  const status = section.querySelector(".status");
  show(status, record.status);
  status.dataset.status = record.status;
  section.querySelector("progress").value = record.progress;
  show(section.querySelector(".percent"), `${record.progress}%`);
  show(section.querySelector(".stage"), record.pending_reason || record.stage || "");
  const error = section.querySelector(".error");
  show(error, record.error || "");
  error.hidden = !record.error;
  renditions(section.querySelector(".renditions"), (record.metadata || {}).renditions);
  show(section.querySelector(".metadata"), JSON.stringify(record.metadata || {}, null, 2));
}

function open() {
  if (!token || (!run && !tag)) {
    problem("This page needs #run=RUN_ID&token=… or #tag=TAG&token=… in its address.");
    return;
  }
  const path = run
    ? `/api/runs/${encodeURIComponent(run)}/stream`
    : `/api/runs/stream?tag=${encodeURIComponent(tag)}`;
  const url = `${api}${path}${path.includes("?") ? "&" : "?"}access_token=${encodeURIComponent(token)}`;
  const connection = document.getElementById("connection");
  const source = new EventSource(url);
  source.onopen = () => show(connection, "live");
  source.addEventListener("run", (event) => render(JSON.parse(event.data)));
  source.addEventListener("end", () => {
    source.close(); // finished: no reconnect
    show(connection, "finished");
  });
  source.addEventListener("expired", () => {
    source.close();
    show(connection, "stopped");
    problem("The access token has expired: reload the page from the product to get a new one.");
  });
  source.onerror = () => {
    if (source.readyState === EventSource.CLOSED) {
      show(connection, "stopped");
      problem("The stream was refused: the token is invalid, expired or for something else.");
    } else {
      show(connection, "reconnecting…");
    }
  };
}

open();
