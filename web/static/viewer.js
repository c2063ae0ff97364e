// detectord live viewer: frames and boxes from the viewer's WebSocket, drawn on one canvas per camera.
// Every text that comes from the network is set with textContent or drawn with fillText: never as HTML.
"use strict";

const MAIN_COLOR = "rgb(0, 220, 0)";
const OTHER_COLOR = "rgb(40, 160, 200)";
const cameras = new Map();
const picker = document.getElementById("picker");
const connection = document.getElementById("connection");
let pendingFrame = null;   // the JSON half of a frame; its JPEG is the next binary message

function camera(name) {
  if (cameras.has(name)) return cameras.get(name);
  const node = document.getElementById("camera-template").content.firstElementChild.cloneNode(true);
  node.dataset.camera = name;
  node.querySelector(".name").textContent = name;
  document.getElementById("cameras").appendChild(node);
  const option = document.createElement("option");
  option.value = name;
  option.textContent = name;
  picker.appendChild(option);
  const cam = {
    node, canvas: node.querySelector("canvas"), status: node.querySelector(".status"),
    stats: node.querySelector(".stats"), frames: [], latencies: [], drawing: false, next: null,
  };
  cam.ctx = cam.canvas.getContext("2d");
  cameras.set(name, cam);
  applyPicker();
  return cam;
}

function applyPicker() {
  for (const [name, cam] of cameras) cam.node.hidden = picker.value !== "" && picker.value !== name;
}
picker.addEventListener("change", applyPicker);

function setStatus(cam, status) {
  cam.status.textContent = status;
  cam.status.className = "badge status " + status;
}

function median(values) {
  if (!values.length) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

function showStats(cam, stats) {
  const rows = [];
  const now = performance.now();
  cam.frames = cam.frames.filter((t) => now - t < 5000);
  rows.push(["browser fps", (cam.frames.length / 5).toFixed(1)]);
  const e2e = median(cam.latencies);
  if (e2e !== null) rows.push(["capture → browser p50", `${e2e.toFixed(0)} ms`]);
  if (stats) {
    if (stats.host) rows.push(["host", stats.host]);
    for (const [stage, s] of Object.entries(stats.stages || {})) {
      const usage = [];
      if (s.cpu_percent !== null) usage.push(`cpu ${s.cpu_percent}%`);
      if (s.uss_mb !== null) usage.push(`${s.uss_mb} MB`);
      rows.push([`${stage} fps`, `${s.fps}` + (usage.length ? ` (${usage.join(", ")})` : "")]);
    }
    for (const [stage, p] of Object.entries(stats.latency || {})) {
      if (p) rows.push([`${stage.replaceAll("_", " ")} p50`, `${p.p50_ms} ms`]);
    }
    if (stats.drops) rows.push(["dropped", Object.entries(stats.drops).map(([k, v]) => `${k} ${v}`).join(", ")]);
    if (stats.source && stats.source.status) rows.push(["source", stats.source.status]);
  }
  cam.stats.replaceChildren(...rows.flatMap(([k, v]) => {
    const dt = document.createElement("dt");
    const dd = document.createElement("dd");
    dt.textContent = k;
    dd.textContent = v;
    return [dt, dd];
  }));
}

function label(ctx, text, x, y, color) {
  ctx.font = "12px sans-serif";
  const width = ctx.measureText(text).width + 6;
  const top = Math.max(0, y - 15);
  ctx.fillStyle = color;
  ctx.fillRect(x, top, width, 15);
  ctx.fillStyle = "black";
  ctx.fillText(text, x + 3, top + 12);
}

function draw(cam, frame, bitmap) {
  const [width, height] = frame.size;
  if (cam.canvas.width !== width || cam.canvas.height !== height) {
    cam.canvas.width = width;
    cam.canvas.height = height;
  }
  const ctx = cam.ctx;
  ctx.drawImage(bitmap, 0, 0, width, height);
  bitmap.close();
  const main = frame.main_person;
  frame.detections.forEach((d, index) => {
    if (main && index === main.index) return;  // drawn last, in the main person's colour
    const [x1, y1, x2, y2] = d.box;
    ctx.lineWidth = 1;
    ctx.strokeStyle = OTHER_COLOR;
    ctx.strokeRect(x1, y1, x2 - x1, y2 - y1);
    label(ctx, `${d.label} ${d.score.toFixed(2)}`, x1, y1, OTHER_COLOR);
  });
  if (main) {
    const [x1, y1, x2, y2] = main.box;
    ctx.lineWidth = 3;
    ctx.strokeStyle = MAIN_COLOR;
    ctx.strokeRect(x1, y1, x2 - x1, y2 - y1);
    label(ctx, `main #${main.track_id} ${main.score.toFixed(2)}`, x1, y1, MAIN_COLOR);
  }
  cam.frames.push(performance.now());
  if (frame.ts && frame.ts.capture) {
    cam.latencies.push(Date.now() - frame.ts.capture * 1000);
    if (cam.latencies.length > 50) cam.latencies.shift();
  }
  cam.node.dataset.frameId = String(frame.frame_id);
}

// Decode off the main thread; while one frame decodes, only the newest waiting one is kept.
async function render(cam, frame, blob) {
  if (cam.drawing) { cam.next = [frame, blob]; return; }
  cam.drawing = true;
  try {
    let item = [frame, blob];
    while (item) {
      const bitmap = await createImageBitmap(item[1]);
      draw(cam, item[0], bitmap);
      item = cam.next;
      cam.next = null;
    }
  } catch (err) {
    console.warn("cannot draw a frame", err);
  } finally {
    cam.drawing = false;
  }
}

function handle(message) {
  if (typeof message.data !== "string") {
    const frame = pendingFrame;
    pendingFrame = null;
    if (frame) render(camera(frame.camera), frame, message.data);
    return;
  }
  const msg = JSON.parse(message.data);
  if (msg.type === "hello") {
    for (const [name, info] of Object.entries(msg.cameras)) {
      const cam = camera(name);
      setStatus(cam, info.status);
      showStats(cam, info.stats);
    }
  } else if (msg.type === "status") {
    setStatus(camera(msg.camera), msg.status);
  } else if (msg.type === "stats") {
    showStats(camera(msg.camera), msg.stats);
  } else if (msg.type === "frame") {
    pendingFrame = msg;
  }
}

function connect(delay = 1000) {
  const token = new URLSearchParams(location.search).get("token");
  const scheme = location.protocol === "https:" ? "wss://" : "ws://";
  const socket = new WebSocket(scheme + location.host + "/ws" + (token ? "?token=" + encodeURIComponent(token) : ""));
  socket.binaryType = "blob";
  socket.onopen = () => { connection.textContent = "live"; connection.className = "badge online"; delay = 1000; };
  socket.onmessage = handle;
  socket.onclose = () => {
    connection.textContent = "reconnecting…";
    connection.className = "badge offline";
    pendingFrame = null;
    setTimeout(() => connect(Math.min(delay * 2, 30000)), delay);
  };
}

connect();
