// The zone and motion-mask editor of one camera: polygons drawn on its picture, given back as TOML.
// Points are kept normalised (0..1 of the picture's width and height), as the TOML says them, so they hold
// whatever frame size the daemon analyses at. Nothing is sent anywhere: the user copies the TOML.
"use strict";

const EDIT_ZONE = "rgba(80, 200, 255, 0.95)";
const EDIT_MASK = "rgba(200, 200, 200, 0.95)";
const GRAB_PX = 8;
const NAME_RULE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

class ZoneEditor {
  constructor(cam, node, repaint) {
    this.cam = cam;
    this.node = node;
    this.repaint = repaint;
    this.polygons = [];   // {kind: "zone" | "mask", name, points: [[x, y], …] normalised}
    this.active = -1;
    this.dragging = null;
    this.loaded = false;
    this.name = node.querySelector(".zone-name");
    this.toml = node.querySelector(".toml");
    this.form = node.querySelector(".form");
    node.querySelector(".new-zone").addEventListener("click", () => this.start("zone"));
    node.querySelector(".new-mask").addEventListener("click", () => this.start("mask"));
    node.querySelector(".delete").addEventListener("click", () => this.remove());
    node.querySelector(".copy").addEventListener("click", () => this.copy());
    this.form.addEventListener("change", () => this.update());
    this.name.addEventListener("input", () => this.rename());
    node.addEventListener("toggle", () => { if (node.open) this.load(); this.repaint(); });
    const canvas = cam.canvas;
    canvas.addEventListener("mousedown", (e) => this.down(e));
    canvas.addEventListener("mousemove", (e) => this.move(e));
    window.addEventListener("mouseup", () => { this.dragging = null; });
    canvas.addEventListener("dblclick", (e) => this.erase(e));
  }

  get editing() { return this.node.open; }

  // What the daemon has now (its zones message) is where editing starts.
  load() {
    if (this.loaded) return;
    this.loaded = true;
    const zones = this.cam.scene.zones;
    if (!zones || !zones.size) return;
    const [w, h] = zones.size;
    const norm = (points) => points.map(([x, y]) => [x / w, y / h]);
    for (const [name, points] of Object.entries(zones.polygons || {})) this.polygons.push({ kind: "zone", name, points: norm(points) });
    for (const points of zones.mask || []) this.polygons.push({ kind: "mask", name: "", points: norm(points) });
    this.update();
  }

  start(kind) {
    const name = kind === "zone" ? this.uniqueName(this.name.value.trim() || "zone") : "";
    this.polygons.push({ kind, name, points: [] });
    this.active = this.polygons.length - 1;
    if (kind === "zone") this.name.value = name;
    this.update();
  }

  uniqueName(wanted) {
    const taken = new Set(this.polygons.filter((p) => p.kind === "zone").map((p) => p.name));
    if (!taken.has(wanted)) return wanted;
    let i = 2;
    while (taken.has(`${wanted}${i}`)) i += 1;
    return `${wanted}${i}`;
  }

  rename() {
    const polygon = this.polygons[this.active];
    if (polygon && polygon.kind === "zone" && NAME_RULE.test(this.name.value)) {
      polygon.name = this.uniqueName(this.name.value);
      this.update();
    }
  }

  remove() {
    if (this.active < 0) return;
    this.polygons.splice(this.active, 1);
    this.active = this.polygons.length - 1;
    this.update();
  }

  point(e) {
    const rect = this.cam.canvas.getBoundingClientRect();
    return [Math.min(1, Math.max(0, (e.clientX - rect.left) / rect.width)),
            Math.min(1, Math.max(0, (e.clientY - rect.top) / rect.height))];
  }

  nearest(e) {
    const rect = this.cam.canvas.getBoundingClientRect();
    const [x, y] = this.point(e);
    for (const [p, polygon] of this.polygons.entries()) {
      for (const [i, [px, py]] of polygon.points.entries()) {
        if (Math.hypot((px - x) * rect.width, (py - y) * rect.height) <= GRAB_PX) return [p, i];
      }
    }
    return null;
  }

  down(e) {
    if (!this.editing || e.button !== 0) return;
    const hit = this.nearest(e);
    if (hit) {
      this.dragging = hit;
      this.active = hit[0];
    } else {
      if (this.active < 0) this.start("zone");
      this.polygons[this.active].points.push(this.point(e));
    }
    this.update();
  }

  move(e) {
    if (!this.dragging) return;
    const [p, i] = this.dragging;
    this.polygons[p].points[i] = this.point(e);
    this.update();
  }

  erase(e) {
    if (!this.editing) return;
    const hit = this.nearest(e);
    if (!hit) return;
    this.polygons[hit[0]].points.splice(hit[1], 1);
    this.update();
  }

  update() {
    this.toml.value = this.asToml();
    this.node.dataset.polygons = String(this.polygons.length);
    this.repaint();
  }

  // Polygons of at least three points, as the configuration takes them.
  asToml() {
    const fmt = (points) => "[" + points.map(([x, y]) => `[${x.toFixed(4)}, ${y.toFixed(4)}]`).join(", ") + "]";
    const cameras = this.form.value === "cameras";
    const lines = [];
    const zones = this.polygons.filter((p) => p.kind === "zone" && p.points.length >= 3);
    for (const zone of zones) {
      lines.push(cameras ? "[[cameras.zones]]" : "[[zones]]", `name = "${zone.name}"`, `points = ${fmt(zone.points)}`,
                 "normalized = true", "");
    }
    const masks = this.polygons.filter((p) => p.kind === "mask" && p.points.length >= 3);
    if (masks.length) {
      lines.push(cameras ? "[cameras.motion]" : "[motion]", `mask = [${masks.map((m) => fmt(m.points)).join(", ")}]`,
                 "normalized = true", "");
    }
    if (cameras && lines.length) lines.unshift(`# inside the [[cameras]] table of camera "${this.cam.node.dataset.camera}"`);
    return lines.join("\n");
  }

  async copy() {
    this.toml.select();
    try {
      await navigator.clipboard.writeText(this.toml.value);
    } catch (err) {
      document.execCommand("copy");
    }
  }

  draw(ctx, width, height) {
    if (!this.editing) return;
    for (const [p, polygon] of this.polygons.entries()) {
      const colour = polygon.kind === "zone" ? EDIT_ZONE : EDIT_MASK;
      const points = polygon.points.map(([x, y]) => [x * width, y * height]);
      ctx.beginPath();
      points.forEach(([x, y], i) => { if (i === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y); });
      if (points.length >= 3) ctx.closePath();
      ctx.setLineDash(polygon.kind === "mask" ? [5, 3] : []);
      ctx.lineWidth = p === this.active ? 2 : 1;
      ctx.strokeStyle = colour;
      ctx.stroke();
      ctx.setLineDash([]);
      ctx.fillStyle = colour;
      for (const [x, y] of points) ctx.fillRect(x - 3, y - 3, 6, 6);
      if (polygon.kind === "zone" && points.length) label(ctx, polygon.name, points[0][0], points[0][1] - 2, colour);
    }
  }
}
