// EdgeUpdater fleet console: reads the operator API with the token typed in, refreshes every 5 s.
"use strict";

const tokenInput = document.getElementById("token");
const statusText = document.getElementById("status");
// A link may carry the token in the fragment (never sent to the server): #token=...
if (location.hash.startsWith("#token=")) {
  sessionStorage.setItem("edgeupdater-token", decodeURIComponent(location.hash.slice(7)));
  history.replaceState(null, "", location.pathname);
}
let token = sessionStorage.getItem("edgeupdater-token") || "";
tokenInput.value = token;

async function api(method, path) {
  const response = await fetch(path, { method, headers: { Authorization: "Bearer " + token } });
  if (!response.ok) {
    let reason = response.status + " " + response.statusText;
    try { const body = await response.json(); reason = body.message || body.reason || reason; } catch { /* not JSON */ }
    throw new Error(reason);
  }
  return response.status === 204 ? null : response.json();
}

function cell(row, text, className) {
  const td = document.createElement("td");
  td.textContent = text ?? "";
  if (className) td.className = className;
  row.appendChild(td);
  return td;
}

function badge(row, text) {
  const td = document.createElement("td");
  const span = document.createElement("span");
  span.className = "state " + text;
  span.textContent = text;
  td.appendChild(span);
  row.appendChild(td);
}

function when(iso) {
  return iso ? new Date(iso).toLocaleString() : "";
}

function fill(tableId, items, render) {
  const body = document.querySelector("#" + tableId + " tbody");
  body.replaceChildren();
  for (const item of items) {
    const row = document.createElement("tr");
    render(row, item);
    body.appendChild(row);
  }
}

function action(row, rollout, name, allowed) {
  const button = document.createElement("button");
  button.textContent = name;
  button.disabled = !allowed;
  button.addEventListener("click", async () => {
    if (name === "abort" && !confirm("Abort rollout " + rollout.id + "?")) return;
    try { await api("POST", "/v1/rollouts/" + encodeURIComponent(rollout.id) + "/" + name); await refresh(); }
    catch (e) { alert(name + " failed: " + e.message); }
  });
  row.lastChild.appendChild(button);
}

async function refresh() {
  if (!token) return;
  try {
    const [rollouts, devices, releases] = await Promise.all([
      api("GET", "/v1/rollouts"), api("GET", "/v1/devices"), api("GET", "/v1/releases")]);
    fill("rollouts", rollouts, (row, r) => {
      cell(row, r.id, "hash");
      cell(row, r.name + " " + r.version);
      cell(row, r.group);
      cell(row, (r.currentPhase + 1) + "/" + r.phases.length + " (" + r.phases[r.currentPhase] + "%)");
      badge(row, r.state);
      const progress = cell(row, "");
      const bar = document.createElement("progress");
      bar.max = Math.max(r.groupSize, 1);
      bar.value = r.succeeded;
      progress.appendChild(bar);
      progress.append(" " + r.succeeded + " ok, " + r.failed + " failed, " + r.inProgress + " in progress of " + r.groupSize);
      if (r.pauseReason) progress.title = r.pauseReason;
      cell(row, "");
      action(row, r, "pause", r.state === "running");
      action(row, r, "resume", r.state === "paused");
      action(row, r, "abort", r.state === "running" || r.state === "paused");
    });
    document.getElementById("device-count").textContent =
      "(" + devices.filter(d => d.online).length + " online of " + devices.length + ")";
    fill("devices", devices, (row, d) => {
      cell(row, d.deviceId);
      cell(row, d.group);
      cell(row, d.hardware);
      cell(row, (d.targets || []).map(t => t.name + " " + (t.version || "?")).join(", "));
      badge(row, d.state);
      badge(row, d.online ? "online" : "offline");
      cell(row, when(d.lastSeen));
      cell(row, d.lastError, "error");
    });
    fill("releases", releases, (row, r) => {
      cell(row, r.name);
      cell(row, r.version);
      cell(row, r.targetKind);
      cell(row, r.imageSha256.slice(0, 12), "hash");
      cell(row, (r.imageSize / 1048576).toFixed(1) + " MiB");
      cell(row, r.manifestSha256.slice(0, 12), "hash");
      cell(row, when(r.publishedAt));
    });
    statusText.textContent = "updated " + new Date().toLocaleTimeString();
  } catch (e) {
    statusText.textContent = "error: " + e.message;
  }
}

document.getElementById("login").addEventListener("submit", event => {
  event.preventDefault();
  token = tokenInput.value.trim();
  sessionStorage.setItem("edgeupdater-token", token);
  refresh();
});

refresh();
setInterval(refresh, 5000);
