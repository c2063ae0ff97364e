// detectord live viewer: frames and boxes from the viewer's WebSocket, drawn on one canvas per camera, with
// each camera's occupancy, person count, zones and events.
// Every text that comes from the network is set with textContent or drawn with fillText: never as HTML.
"use strict";

const MAIN_COLOR = "rgb(0, 220, 0)";
const OTHER_COLOR = "rgb(40, 160, 200)";
const ZONE_COLOR = "rgba(255, 200, 0, 0.9)";
const ZONE_FILL = "rgba(255, 200, 0, 0.12)";
const ZONE_OCCUPIED_FILL = "rgba(255, 120, 0, 0.3)";
const MAX_EVENTS = 20;
const THUMB_WIDTH = 96;
const THUMB_HEIGHT = 72;
const cameras = new Map();
const picker = document.getElementById("picker");
const showMotion = document.getElementById("show-motion");
const MOTION_COLOR = "rgba(255, 60, 200, 0.9)";
const MASK_FILL = "rgba(120, 120, 120, 0.45)";
const REGION_COLOR = "rgba(60, 220, 255, 0.9)";
const connection = document.getElementById("connection");
let pending = null;   // a frame's or an event's JSON whose JPEG is the next binary message

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
    occupancy: node.querySelector(".occupancy"), count: node.querySelector(".count"),
    events: node.querySelector(".events"), scene: {}, inView: null, idle: node.querySelector(".idle"),
  };
  cam.ctx = cam.canvas.getContext("2d");
  cam.editor = new ZoneEditor(cam, node.querySelector(".editor"), () => paint(cam));
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

function showScene(cam, scene) {
  cam.scene = scene || {};
  const occupied = cam.scene.occupancy;
  cam.occupancy.textContent = occupied === true ? "occupied" : occupied === false ? "vacant" : "no data";
  cam.occupancy.className = "badge occupancy" + (occupied === true ? " occupied" : occupied === false ? " vacant" : "");
  const parts = [];
  if (typeof cam.scene.count === "number") {
    const people = `${cam.scene.count} ${cam.scene.count === 1 ? "person" : "people"}`;
    // the count is of events going on (a person stays counted until unseen for end_after_s); in view are
    // the person boxes of the frame on the canvas
    parts.push(cam.inView === null || cam.inView === cam.scene.count ? people : `${people} (${cam.inView} in view)`);
  }
  for (const [zone, count] of Object.entries(cam.scene.zone_counts || {})) parts.push(`${zone}: ${count}`);
  cam.count.textContent = parts.join(" · ");
}

function clock(epoch) {
  return new Date(epoch * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

// The size boxes are given in (the frame the model saw); the pictures may be larger (the camera's own).
function detectSize(cam, bitmap) {
  if (cam.frame) return cam.frame.size;
  if (cam.scene.zones && cam.scene.zones.size) return cam.scene.zones.size;
  return [bitmap.width, bitmap.height];
}

// The person, not the whole frame: the snapshot cropped around snapshot_box (with a margin), drawn into
// the thumbnail's canvas; an older publisher's event without the box shows the whole frame. The box is in
// detection pixels; the snapshot may be the camera's full frame.
async function thumbnail(cam, canvas, blob, box) {
  const bitmap = await createImageBitmap(blob);
  let [x, y, w, h] = [0, 0, bitmap.width, bitmap.height];
  if (box) {
    const [dw, dh] = detectSize(cam, bitmap);
    const [sx, sy] = [bitmap.width / dw, bitmap.height / dh];
    const [x1, y1, x2, y2] = [box[0] * sx, box[1] * sy, box[2] * sx, box[3] * sy];
    const margin = 0.25 * Math.max(x2 - x1, y2 - y1);
    x = Math.max(0, x1 - margin);
    y = Math.max(0, y1 - margin);
    w = Math.min(bitmap.width, x2 + margin) - x;
    h = Math.min(bitmap.height, y2 + margin) - y;
  }
  const scale = Math.min(THUMB_HEIGHT / h, THUMB_WIDTH / w);
  canvas.width = Math.max(1, Math.round(w * scale));
  canvas.height = Math.max(1, Math.round(h * scale));
  canvas.getContext("2d").drawImage(bitmap, x, y, w, h, 0, 0, canvas.width, canvas.height);
  canvas.dataset.crop = box ? "person" : "frame";
  bitmap.close();
}

// One line per event, newest first; a later message of the same event replaces its line. The thumbnail
// links to the whole snapshot.
function showEvent(cam, event, blob) {
  let item = cam.events.querySelector(`li[data-id="${CSS.escape(event.id)}"]`);
  if (!item) {
    item = document.createElement("li");
    item.dataset.id = event.id;
    const link = document.createElement("a");
    link.className = "snapshot";
    link.target = "_blank";
    link.rel = "noopener";
    link.append(document.createElement("canvas"));
    item.append(link, document.createElement("span"), document.createElement("span"));
    item.children[1].className = "when";
    item.children[2].className = "zones";
    const later = [...cam.events.children].find((other) => Number(other.dataset.start) < event.start_time);
    cam.events.insertBefore(item, later || null);
    while (cam.events.children.length > MAX_EVENTS) {
      const last = cam.events.lastElementChild;
      if (last.children[0].href) URL.revokeObjectURL(last.children[0].href);
      last.remove();
    }
  }
  item.dataset.start = String(event.start_time);
  item.dataset.type = event.type;
  item.classList.toggle("ongoing", event.type !== "end");
  const [link, when, zones] = item.children;
  if (blob) {
    if (link.href) URL.revokeObjectURL(link.href);
    link.href = URL.createObjectURL(blob);
    link.title = `${event.label} ${event.top_score.toFixed(2)}: the whole snapshot`;
    thumbnail(cam, link.firstElementChild, blob, event.snapshot_box).catch((err) => console.warn("thumbnail", err));
  }
  const span = event.end_time ? `${clock(event.start_time)}–${clock(event.end_time)}` : clock(event.start_time);
  when.textContent = `${span} ${event.label} ${event.top_score.toFixed(2)}`;
  zones.textContent = event.entered_zones.length ? `zones: ${event.entered_zones.join(", ")}` : "";
}

function drawZones(cam, width, height) {
  const zones = cam.scene.zones;
  if (!zones || !zones.polygons) return;
  const [zw, zh] = zones.size;
  const ctx = cam.ctx;
  for (const [name, points] of Object.entries(zones.polygons)) {
    ctx.beginPath();
    points.forEach(([x, y], i) => {
      const px = (x * width) / zw;
      const py = (y * height) / zh;
      if (i === 0) ctx.moveTo(px, py); else ctx.lineTo(px, py);
    });
    ctx.closePath();
    const occupied = (cam.scene.zone_occupancy || {})[name] === true;
    ctx.fillStyle = occupied ? ZONE_OCCUPIED_FILL : ZONE_FILL;
    ctx.fill();
    ctx.lineWidth = 1;
    ctx.strokeStyle = ZONE_COLOR;
    ctx.stroke();
    const [x, y] = points[0];
    label(ctx, name, (x * width) / zw, (y * height) / zh + 15, ZONE_COLOR);
  }
}

// The motion mask (greyed: motion there is ignored), where this frame moved (dashed), and where the model
// looked when it looked at regions only (solid).
function drawMotion(cam, frame, width, height) {
  const ctx = cam.ctx;
  const zones = cam.scene.zones;
  if (zones && zones.mask) {
    const [zw, zh] = zones.size;
    for (const polygon of zones.mask) {
      ctx.beginPath();
      polygon.forEach(([x, y], i) => {
        if (i === 0) ctx.moveTo((x * width) / zw, (y * height) / zh); else ctx.lineTo((x * width) / zw, (y * height) / zh);
      });
      ctx.closePath();
      ctx.fillStyle = MASK_FILL;
      ctx.fill();
    }
  }
  ctx.setLineDash([4, 3]);
  ctx.lineWidth = 1;
  ctx.strokeStyle = MOTION_COLOR;
  for (const [x1, y1, x2, y2] of frame.motion || []) ctx.strokeRect(x1, y1, x2 - x1, y2 - y1);
  ctx.setLineDash([]);
  ctx.strokeStyle = REGION_COLOR;
  for (const [x1, y1, x2, y2] of (frame.inference && frame.inference.regions) || []) {
    ctx.strokeRect(x1, y1, x2 - x1, y2 - y1);
  }
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

// The frame, its zones, motion and boxes, and the zone editor's polygons; again whenever the editor changes.
// The canvas takes the picture's own size (the camera's, with publish.frame_size); what is drawn over it is
// in detection pixels (frame.size), scaled onto it.
function paint(cam) {
  const { frame, bitmap } = cam;
  if (!frame) return;
  const [width, height] = frame.size;
  if (cam.canvas.width !== bitmap.width || cam.canvas.height !== bitmap.height) {
    cam.canvas.width = bitmap.width;
    cam.canvas.height = bitmap.height;
  }
  const ctx = cam.ctx;
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  ctx.drawImage(bitmap, 0, 0);
  ctx.setTransform(bitmap.width / width, 0, 0, bitmap.height / height, 0, 0);
  drawZones(cam, width, height);
  if (showMotion.checked) drawMotion(cam, frame, width, height);
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
  cam.editor.draw(ctx, width, height);
  ctx.setTransform(1, 0, 0, 1, 0, 0);
}

function draw(cam, frame, bitmap) {
  if (cam.bitmap) cam.bitmap.close();
  cam.frame = frame;
  cam.bitmap = bitmap;
  paint(cam);
  // an older publisher says nothing of inference: the model ran
  const resting = Boolean(frame.inference && !frame.inference.ran);
  cam.idle.hidden = !resting;
  cam.node.dataset.inference = frame.inference ? frame.inference.reason : "";
  const inView = frame.detections.filter((d) => d.label === "person").length;
  if (inView !== cam.inView) {
    cam.inView = inView;
    showScene(cam, cam.scene);
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
    const waiting = pending;
    pending = null;
    if (waiting && waiting.type === "frame") render(camera(waiting.camera), waiting, message.data);
    if (waiting && waiting.type === "event") showEvent(camera(waiting.camera), waiting.event, message.data);
    return;
  }
  const msg = JSON.parse(message.data);
  if (msg.type === "hello") {
    for (const cam of cameras.values()) cam.node.title = "";
    for (const [name, info] of Object.entries(msg.cameras)) {
      const cam = camera(name);
      setStatus(cam, info.status);
      showStats(cam, info.stats);
      showScene(cam, info.scene);
    }
  } else if (msg.type === "status") {
    setStatus(camera(msg.camera), msg.status);
  } else if (msg.type === "stats") {
    showStats(camera(msg.camera), msg.stats);
  } else if (msg.type === "frame") {
    pending = msg;
  } else if (msg.type === "scene") {
    showScene(camera(msg.camera), msg.scene);
  } else if (msg.type === "event") {
    if (msg.snapshot) pending = msg;
    else showEvent(camera(msg.camera), msg.event, null);
  }
}

function connect(delay = 1000) {
  const token = new URLSearchParams(location.search).get("token");
  const scheme = location.protocol === "https:" ? "wss://" : "ws://";
  const socket = new WebSocket(scheme + location.host + "/ws" + (token ? "?token=" + encodeURIComponent(token) : ""));
  socket.binaryType = "blob";
  socket.onopen = () => {
    connection.textContent = "live";
    connection.className = "badge online";
    document.body.classList.remove("stale");
    delay = 1000;
  };
  socket.onmessage = handle;
  socket.onclose = () => {
    // What the page shows was true when the connection was; greyed until the server says it again (hello).
    connection.textContent = "viewer disconnected: reconnecting…";
    connection.className = "badge offline";
    document.body.classList.add("stale");
    for (const cam of cameras.values()) cam.node.title = "not current: the viewer's connection is down";
    pending = null;
    setTimeout(() => connect(Math.min(delay * 2, 30000)), delay);
  };
}

connect();
