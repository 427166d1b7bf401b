// The live vitals panel and the pleth waveform, fed by the call's "vitals" data channel.
//
// Messages follow cabin/schemas/vitals-channel/. Everything shown comes from the network, so
// it is written with textContent only, and enumerations (kind, color, state) are checked
// against the lists below before they reach an attribute.

const KINDS = [
  { kind: "spo2", en: "SpO₂", vi: "SpO₂" },
  { kind: "pulse", en: "Pulse", vi: "Mạch" },
  { kind: "blood-pressure", en: "Blood pressure", vi: "Huyết áp" },
  { kind: "temperature", en: "Temperature", vi: "Nhiệt độ" },
  { kind: "weight", en: "Weight", vi: "Cân nặng" },
  { kind: "height", en: "Height", vi: "Chiều cao" },
  { kind: "bmi", en: "BMI", vi: "BMI" },
];
const COLORS = new Set(["green", "yellow", "orange", "red", "grey"]);
const UNITS = { "mm[Hg]": "mmHg", Cel: "°C", "/min": "/min", "%": "%", kg: "kg", cm: "cm", "kg/m2": "kg/m²" };
const REMEASURE_STATES = {
  requested: "Asked — waiting for the resident",
  started: "Re-measuring…",
  done: "Re-measured",
  declined: "The resident declined",
  unavailable: "Not possible at this cabin",
};
export const FRAMING = {
  ok: "Well framed",
  "too-far": "Too far",
  "too-close": "Too close",
  "off-centre": "Off centre",
  "no-face": "No face",
};

export function isKind(kind) {
  return KINDS.some((k) => k.kind === kind);
}

export function labelOf(kind) {
  return KINDS.find((k) => k.kind === kind)?.en ?? kind;
}

function el(tag, { className, text, attrs } = {}) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  for (const [name, value] of Object.entries(attrs ?? {})) node.setAttribute(name, value);
  return node;
}

function formatNumber(value) {
  return Number.isFinite(value) ? String(value) : "—";
}

/** "152/95", "97", or "—": the value as the cabin wrote it. */
export function formatValue(kind, value) {
  if (value === null || value === undefined) return "—";
  if (typeof value === "number") return formatNumber(value);
  if (typeof value === "object" && kind === "blood-pressure") {
    const text = `${formatNumber(value.systolic)}/${formatNumber(value.diastolic)}`;
    return typeof value.mean === "number" ? `${text} (${formatNumber(value.mean)})` : text;
  }
  return "—";
}

function formatTime(iso) {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? "" : date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
}

/** One row per vital: latest value, interpretation colour and text, and "ask to re-measure". */
export class VitalsPanel {
  #rows = new Map();
  #onRemeasure;

  constructor(list, { onRemeasure }) {
    this.#onRemeasure = onRemeasure;
    for (const { kind, en, vi } of KINDS) {
      const row = el("li", { className: "vital", attrs: { "data-kind": kind, "data-color": "none" } });
      const name = el("span", { className: "vital-name" });
      name.append(el("span", { text: en }));
      if (vi !== en) name.append(el("span", { className: "vi", text: vi, attrs: { lang: "vi" } }));
      const reading = el("span", { className: "vital-reading" });
      const value = el("span", { className: "vital-value", text: "—" });
      const unit = el("span", { className: "vital-unit" });
      reading.append(value, unit);
      const detail = el("span", { className: "vital-detail" });
      const band = el("span", { className: "vital-band" });
      const meta = el("span", { className: "vital-meta" });
      const status = el("span", { className: "remeasure-status", attrs: { role: "status" } });
      detail.append(band, meta, status);
      const button = el("button", {
        className: "remeasure",
        text: "Re-measure",
        attrs: { type: "button", "aria-label": `Ask to re-measure ${en.toLowerCase()}`, disabled: "" },
      });
      button.addEventListener("click", () => this.#onRemeasure(kind));
      row.append(name, reading, button, detail);
      list.append(row);
      this.#rows.set(kind, { row, value, unit, band, meta, button, status });
    }
  }

  reset() {
    for (const parts of this.#rows.values()) {
      parts.row.dataset.color = "none";
      parts.row.dataset.status = "";
      parts.value.textContent = "—";
      parts.unit.textContent = "";
      parts.band.textContent = "";
      parts.meta.textContent = "";
      parts.status.textContent = "";
    }
  }

  /** Enable or disable the re-measure buttons (only while the channel is open). */
  setInteractive(enabled) {
    for (const { button } of this.#rows.values()) button.disabled = !enabled;
  }

  measurement(message) {
    const parts = this.#rows.get(message.kind);
    if (parts === undefined) return;
    parts.value.textContent = formatValue(message.kind, message.value);
    parts.unit.textContent = typeof message.unit === "string" ? (UNITS[message.unit] ?? message.unit) : "";
    parts.row.dataset.color = COLORS.has(message.color) ? message.color : "none";
    parts.row.dataset.status = ["valid", "questionable", "failed"].includes(message.status) ? message.status : "";
    const band = [message.band, message.text].filter((s) => typeof s === "string" && s.length > 0);
    parts.band.textContent = band.join(" — ");
    parts.band.title = parts.band.textContent;
    const notes = [];
    if (message.status === "questionable") notes.push("questionable");
    if (message.status === "failed") notes.push("failed");
    if (typeof message.time === "string") notes.push(formatTime(message.time));
    parts.meta.textContent = notes.filter(Boolean).join(" · ");
    parts.status.textContent = "";
  }

  /** The live numbers the pulse oximeter reports with the waveform. */
  live(kind, value) {
    const parts = this.#rows.get(kind);
    if (parts === undefined || typeof value !== "number" || !Number.isFinite(value)) return;
    if (parts.row.dataset.color === "none") {
      parts.value.textContent = formatNumber(Math.round(value));
      parts.unit.textContent = kind === "spo2" ? "%" : "/min";
      parts.meta.textContent = "live";
    }
  }

  remeasureStatus(kind, state) {
    const parts = this.#rows.get(kind);
    if (parts === undefined) return;
    parts.status.textContent = REMEASURE_STATES[state] ?? "";
  }
}

/** A scrolling pleth trace: slices are played out at their own rate, a little behind real time. */
export class PlethScope {
  #canvas;
  #ctx;
  #samples = []; // [cabin time s, value]
  #offset = null; // local clock − cabin clock
  #lastPush = -Infinity;
  #windowS;
  #delayS;
  #frame = null;
  #range = null;

  constructor(canvas, { windowS = 5, delayS = 0.4 } = {}) {
    this.#canvas = canvas;
    this.#ctx = canvas.getContext("2d");
    this.#windowS = windowS;
    this.#delayS = delayS;
  }

  push(message) {
    const rate = message.rate_hz;
    const t0 = message.t0;
    if (!(rate > 0) || !Number.isFinite(t0) || !Array.isArray(message.samples)) return;
    const samples = message.samples.filter((v) => Number.isFinite(v));
    samples.forEach((v, i) => this.#samples.push([t0 + i / rate, v]));
    const end = t0 + samples.length / rate;
    const now = performance.now() / 1000;
    // (re)synchronise when the stream starts, or after a gap or a jump of the cabin's clock
    if (this.#offset === null || Math.abs(now - this.#offset - end) > 2) {
      this.#offset = now - end + this.#delayS;
      this.#samples = this.#samples.filter(([t]) => t >= t0);
      this.#range = null;
    }
    this.#lastPush = now;
    const oldest = end - this.#windowS - 2;
    while (this.#samples.length > 0 && this.#samples[0][0] < oldest) this.#samples.shift();
  }

  reset() {
    this.#samples = [];
    this.#offset = null;
    this.#lastPush = -Infinity;
    this.#range = null;
  }

  start() {
    if (this.#frame === null) {
      const loop = () => {
        this.#draw();
        this.#frame = requestAnimationFrame(loop);
      };
      this.#frame = requestAnimationFrame(loop);
    }
  }

  stop() {
    if (this.#frame !== null) cancelAnimationFrame(this.#frame);
    this.#frame = null;
    this.#draw();
  }

  #draw() {
    const canvas = this.#canvas;
    const ratio = window.devicePixelRatio || 1;
    const width = Math.max(1, Math.round(canvas.clientWidth * ratio));
    const height = Math.max(1, Math.round(canvas.clientHeight * ratio));
    if (canvas.width !== width || canvas.height !== height) {
      canvas.width = width;
      canvas.height = height;
    }
    const ctx = this.#ctx;
    ctx.clearRect(0, 0, width, height);
    ctx.strokeStyle = "rgba(0, 120, 80, 0.12)";
    ctx.lineWidth = 1;
    for (let s = 1; s < this.#windowS; s += 1) {
      const x = Math.round((s / this.#windowS) * width) + 0.5;
      ctx.beginPath();
      ctx.moveTo(x, 0);
      ctx.lineTo(x, height);
      ctx.stroke();
    }
    const now = performance.now() / 1000;
    if (this.#offset === null || now - this.#lastPush > 3) {
      ctx.fillStyle = "#6b7280";
      ctx.font = `${13 * ratio}px system-ui, sans-serif`;
      ctx.textAlign = "center";
      ctx.fillText("No pleth signal", width / 2, height / 2);
      return;
    }
    const right = now - this.#offset;
    const left = right - this.#windowS;
    const visible = this.#samples.filter(([t]) => t >= left && t <= right);
    if (visible.length < 2) return;
    let lo = Infinity;
    let hi = -Infinity;
    for (const [, v] of visible) {
      lo = Math.min(lo, v);
      hi = Math.max(hi, v);
    }
    // ease the vertical scale so the trace does not jump with every beat
    if (this.#range === null) this.#range = [lo, hi];
    this.#range = [this.#range[0] + (lo - this.#range[0]) * 0.1, this.#range[1] + (hi - this.#range[1]) * 0.1];
    const [min, max] = this.#range;
    const span = Math.max(max - min, 1e-6);
    const pad = height * 0.1;
    ctx.strokeStyle = "#047857";
    ctx.lineWidth = 2 * ratio;
    ctx.lineJoin = "round";
    ctx.beginPath();
    visible.forEach(([t, v], i) => {
      const x = ((t - left) / this.#windowS) * width;
      const y = height - pad - ((v - min) / span) * (height - 2 * pad);
      if (i === 0) ctx.moveTo(x, y);
      else ctx.lineTo(x, y);
    });
    ctx.stroke();
  }
}
