// The doctor console: sign-in, presence, the live queue, the call, live vitals, the note.
//
// Served by the signaling node at /console/ (no build step). Speaks docs/signaling.md over
// ./signaling.js, answers the cabin's offers with ./call.js, and shows the cabin's vitals
// channel (cabin/schemas/vitals-channel/) with ./vitals.js. Text from the network is only
// ever written with textContent.

import { CallPeer } from "./call.js";
import { QueueView, URGENCY, triageFacts } from "./queue.js";
import { Signaling } from "./signaling.js";
import { FRAMING, PlethScope, VitalsPanel, isKind } from "./vitals.js";

const $ = (id) => document.getElementById(id);

const DISPOSITIONS = {
  "no-action": "No action",
  "see-gp": "See a GP",
  "see-specialist": "See a specialist",
  "emergency-now": "Emergency now",
};
const CAMERA_TEXT = {
  checking: "Checking camera…",
  ok: "",
  "audio-only": "No camera found: the resident will hear you but not see you.",
  denied: "No camera or microphone: permission denied. You can still take calls — the resident will not see or hear you.",
  missing: "No camera or microphone found. You can still take calls — the resident will not see or hear you.",
  unsupported: "This browser cannot use a camera here (it needs https). You can still take calls, receive only.",
};
const STATUS_TEXT = {
  "signed-out": "Not signed in",
  connecting: "Connecting…",
  online: "Online",
  reconnecting: "Reconnecting to the service…",
};
const MAX_CHANNEL_MESSAGE = 64 * 1024;
const SEX = { male: "male", female: "female", other: "other", unknown: "" };

class DoctorConsole {
  constructor() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    this.signaling = new Signaling(`${scheme}//${location.host}/ws`);
    this.welcome = null;
    this.iceServers = [];
    this.iceTimer = null;
    this.clockOffset = 0; // server clock − local clock, seconds
    this.pings = new Map();
    this.localStream = null;
    this.mediaRequested = false;
    this.call = null; // {id, triage, peer, channel, statsTimer}
    this.pendingAccept = null; // {ticket, triage, id}
    this.lastNoteId = null;
    this.bannerTimer = null;
    this.toastTimer = null;

    this.queue = new QueueView({
      list: $("queue"),
      empty: $("queue-empty"),
      count: $("queue-count"),
      onAccept: (ticket) => this.accept(ticket),
      serverNow: () => this.serverNow(),
    });
    this.vitals = new VitalsPanel($("vitals"), { onRemeasure: (kind) => this.remeasure(kind) });
    this.scope = new PlethScope($("pleth"));
    this.bind();
    setInterval(() => this.queue.tick(), 1000);
  }

  serverNow() {
    return Date.now() / 1000 + this.clockOffset;
  }

  // -- wiring -------------------------------------------------------------------------------

  bind() {
    this.signaling.addEventListener("state", (event) => this.onSignalingState(event.detail));
    this.signaling.addEventListener("message", (event) => this.onMessage(event.detail));
    $("sign-in-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const token = $("token").value.trim();
      $("token").value = "";
      if (token) {
        $("sign-in-error").textContent = "";
        this.signaling.signIn(token);
      }
    });
    $("sign-out").addEventListener("click", () => {
      this.dropCall();
      this.signaling.signOut();
    });
    for (const radio of document.querySelectorAll('input[name="presence"]')) {
      radio.addEventListener("change", () => {
        if (radio.checked) this.signaling.send({ type: "presence", status: radio.value });
      });
    }
    $("hang-up").addEventListener("click", () => this.hangUp());
    $("mute").addEventListener("click", () => this.toggleTrack("audio", $("mute")));
    $("camera").addEventListener("click", () => this.toggleTrack("video", $("camera")));
    $("retry-camera").addEventListener("click", () => this.acquireMedia());
    for (const button of document.querySelectorAll("[data-disposition]")) {
      button.addEventListener("click", () => this.sendNote(button.dataset.disposition, button));
    }
    $("remote-video").addEventListener("loadeddata", () => {
      if (this.call !== null) $("stage-message").hidden = true;
    });
  }

  start() {
    const params = new URLSearchParams(location.search);
    const token = params.get("token");
    if (token) {
      // development sign-in link: use the token once and take it out of the address bar
      params.delete("token");
      const query = params.toString();
      history.replaceState(null, "", `${location.pathname}${query ? `?${query}` : ""}${location.hash}`);
      this.signaling.signIn(token);
    } else if (this.signaling.canResume) {
      this.signaling.resume();
    } else {
      this.showSignIn();
    }
  }

  // -- signaling ----------------------------------------------------------------------------

  onSignalingState({ state, reason }) {
    const status = $("service-status");
    status.dataset.state = state;
    status.textContent = STATUS_TEXT[state] ?? state;
    if (state === "signed-out") {
      this.dropCall();
      this.welcome = null;
      clearTimeout(this.iceTimer);
      this.showSignIn(reason);
    } else if (state === "reconnecting" && this.call !== null) {
      this.banner("service", "Your connection to the service dropped — reconnecting. Media keeps flowing if it can.");
    } else if (state === "online" && $("call-banner").dataset.kind === "service") {
      this.hideBanner();
    }
  }

  onMessage(message) {
    switch (message.type) {
      case "welcome":
        this.onWelcome(message);
        break;
      case "queue":
        this.onQueue(message);
        break;
      case "presence":
        this.showPresence(message.status);
        break;
      case "call":
        this.onCall(message);
        break;
      case "offer":
        if (this.call?.id === message.call) this.call.peer.acceptOffer(message.sdp);
        break;
      case "candidate":
        if (this.call?.id === message.call) this.call.peer.addCandidate(message.candidate);
        break;
      case "call-ended":
        if (this.call?.id === message.call) this.endCall(message.by, message.reason);
        break;
      case "peer-reconnecting":
        if (this.call?.id === message.call) {
          const grace = Number.isFinite(message.grace_s) ? ` (up to ${Math.round(message.grace_s)} s)` : "";
          this.banner("reconnecting", `The resident's connection dropped — reconnecting${grace}…`, "Đang kết nối lại");
        }
        break;
      case "peer-back":
        if (this.call?.id === message.call) {
          this.banner("back", "The resident is back.", "Đã kết nối lại");
          this.bannerTimer = setTimeout(() => this.hideBanner("back"), 4000);
        }
        break;
      case "ice-servers":
        this.onIceServers(message);
        break;
      case "pong":
        this.onPong(message);
        break;
      case "error":
        this.onError(message);
        break;
      default:
        break;
    }
  }

  onWelcome(message) {
    this.welcome = message;
    $("sign-in").hidden = true;
    $("workspace").hidden = false;
    $("presence").hidden = false;
    $("sign-out").hidden = false;
    const hospitals = Array.isArray(message.hospitals) ? message.hospitals.join(", ") : "";
    $("who").textContent = `${message.subject}${hospitals ? ` · ${hospitals}` : ""}`;
    this.showPresence(message.presence);
    this.onIceServers(message);
    this.syncClock();
    if (!this.mediaRequested) this.acquireMedia();
    const call = message.call;
    if (call && typeof call.call === "string") {
      if (this.call?.id !== call.call) {
        this.dropCall();
        this.startCall(call.call, call.triage ?? null);
      }
    } else if (this.call !== null) {
      this.endCall("server", "ended-while-away");
    }
    if (message.resumed) this.signaling.send({ type: "queue-get" });
  }

  onQueue(message) {
    this.queue.render(Array.isArray(message.tickets) ? message.tickets : []);
    const d = message.doctors ?? {};
    $("doctors-online").textContent = `Doctors: ${d.available ?? 0} available · ${d.busy ?? 0} busy · ${d.away ?? 0} away`;
  }

  showPresence(status) {
    for (const radio of document.querySelectorAll('input[name="presence"]')) {
      radio.checked = radio.value === status;
    }
  }

  onIceServers(message) {
    if (Array.isArray(message.ice_servers)) {
      this.iceServers = message.ice_servers;
      this.call?.peer.setIceServers(this.iceServers);
    }
    clearTimeout(this.iceTimer);
    const expires = message.ice_expires_at;
    if (typeof expires === "number") {
      // refresh well before the TURN credentials expire: half-way, at most 10 minutes before
      const lifetime = expires - this.serverNow();
      const delay = Math.max(1, lifetime - Math.min(600, lifetime / 2));
      this.iceTimer = setTimeout(() => this.refreshIce(), delay * 1000);
    }
  }

  refreshIce() {
    if (this.signaling.send({ type: "ice-refresh" }) === null) {
      this.iceTimer = setTimeout(() => this.refreshIce(), 2000);
    }
  }

  syncClock() {
    const id = this.signaling.send({ type: "ping" });
    if (id !== null) this.pings.set(id, Date.now());
  }

  onPong(message) {
    const sent = this.pings.get(message.ref);
    if (sent === undefined || typeof message.time !== "number") return;
    this.pings.delete(message.ref);
    const received = Date.now();
    this.clockOffset = message.time - (sent + received) / 2000;
    this.queue.tick();
  }

  onError(message) {
    if (this.pendingAccept !== null && message.ref === this.pendingAccept.id) {
      this.queue.acceptFailed(this.pendingAccept.ticket);
      this.pendingAccept = null;
    }
    if (["peer-unavailable", "not-in-call"].includes(message.code) || message.fatal) {
      return; // relays while the other side reconnects; fatal ones end in the state event
    }
    this.toast(typeof message.message === "string" ? message.message : "The service refused that.");
  }

  // -- queue and accept ---------------------------------------------------------------------

  accept(ticket) {
    const triage = this.queue.ticket(ticket)?.triage ?? null;
    const id = this.signaling.send({ type: "accept", ticket });
    if (id === null) {
      this.queue.acceptFailed(ticket);
      this.toast("Not connected to the service; try again in a moment.");
      return;
    }
    this.pendingAccept = { ticket, triage, id };
  }

  onCall(message) {
    if (message.role !== "doctor") return;
    const triage = message.triage ?? (this.pendingAccept?.id === message.ref ? this.pendingAccept.triage : null);
    this.pendingAccept = null;
    this.dropCall();
    this.startCall(message.call, triage);
  }

  // -- the call -----------------------------------------------------------------------------

  startCall(callId, triage) {
    this.hideBanner();
    const peer = new CallPeer({
      callId,
      iceServers: this.iceServers,
      localStream: this.localStream,
      send: (message) => this.signaling.send(message),
    });
    const call = { id: callId, triage, peer, channel: null, statsTimer: null };
    this.call = call;
    peer.addEventListener("remote-stream", (event) => {
      const video = $("remote-video");
      if (video.srcObject !== event.detail) video.srcObject = event.detail;
      video.play().catch(() => {});
    });
    peer.addEventListener("channel", (event) => this.attachChannel(call, event.detail));
    peer.addEventListener("state", (event) => this.onMediaState(call, event.detail));
    call.statsTimer = setInterval(() => this.showQuality(call), 1000);

    const panel = $("call-panel");
    panel.dataset.call = "connecting";
    $("call-title").firstChild.textContent = "Call with the resident ";
    $("call-title").querySelector(".vi").textContent = "Đang khám";
    $("stage-message").hidden = false;
    $("stage-message").textContent = "Connecting to the resident…";
    $("hang-up").hidden = false;
    this.setMediaButtons(true);
    this.queue.setAcceptEnabled(false);
    $("presence-note").hidden = false; // the service shows the doctor busy during a call
    this.resetResident(triage);
    $("resident-panel").dataset.active = "true";
    this.scope.reset();
    this.scope.start();
    $("call-title").focus();
  }

  attachChannel(call, channel) {
    call.channel = channel;
    const opened = () => {
      if (call.channel === channel && this.call === call) this.setChannelOpen(true);
    };
    channel.addEventListener("open", opened);
    channel.addEventListener("close", () => {
      if (call.channel === channel) this.setChannelOpen(false);
    });
    channel.addEventListener("message", (event) => {
      if (this.call === call) this.onVitalsMessage(event.data);
    });
    if (channel.readyState === "open") opened();
  }

  setChannelOpen(open) {
    this.vitals.setInteractive(open);
    $("note-text").disabled = !open;
    for (const button of document.querySelectorAll("[data-disposition]")) button.disabled = !open;
  }

  onMediaState(call, state) {
    if (this.call !== call) return;
    const panel = $("call-panel");
    if (state === "connected") {
      panel.dataset.call = "live";
      if (["media"].includes($("call-banner").dataset.kind)) this.hideBanner();
    } else if (state === "disconnected" || state === "failed") {
      panel.dataset.call = "interrupted";
      if ($("call-banner").hidden) {
        this.banner("media", "The video connection is interrupted — waiting for it to recover…", "Mất kết nối hình ảnh");
      }
    }
  }

  async showQuality(call) {
    if (this.call !== call) return;
    let q;
    try {
      q = await call.peer.quality();
    } catch {
      return;
    }
    if (q === null || this.call !== call) return;
    $("q-rtt").textContent = q.rttMs === null ? "—" : `${Math.round(q.rttMs)} ms`;
    $("q-loss").textContent = q.loss === null ? "—" : `${(q.loss * 100).toFixed(1)} %`;
    $("q-fps").textContent = q.fps === null ? "—" : `${Math.round(q.fps)} fps`;
    $("q-res").textContent = q.width && q.height ? `${q.width}×${q.height}` : "—";
    let level = "good";
    if ((q.rttMs ?? 0) > 400 || (q.loss ?? 0) > 0.08 || (q.fps !== null && q.fps < 10)) level = "poor";
    else if ((q.rttMs ?? 0) > 150 || (q.loss ?? 0) > 0.02 || (q.fps !== null && q.fps < 20)) level = "fair";
    $("quality").dataset.level = q.fps === null && q.rttMs === null ? "none" : level;
  }

  hangUp() {
    if (this.call === null) return;
    if (this.signaling.send({ type: "hangup", call: this.call.id }) === null) {
      this.toast("Not connected to the service; the call ends when the connection is back.");
    }
  }

  /** The call is over (told by the server): show who ended it, keep the last readings. */
  endCall(by, reason) {
    if (this.call === null) return;
    this.dropCall();
    let text;
    let vi = "Cuộc gọi đã kết thúc";
    if (by === "cabin") {
      text = "The resident ended the call.";
      vi = "Người dân đã kết thúc cuộc gọi";
    } else if (by === "doctor") {
      text = "You ended the call.";
    } else if (reason === "peer-lost") {
      text = "The resident's connection was lost; the call has ended.";
    } else {
      text = "The call has ended.";
    }
    this.banner("ended", text, vi);
    $("call-panel").dataset.call = "ended";
    $("stage-message").textContent = "Call ended. Accept the next resident from the queue.";
  }

  /** Close the media and reset the call view (no banner). */
  dropCall() {
    const call = this.call;
    if (call === null) return;
    this.call = null;
    clearInterval(call.statsTimer);
    call.peer.close();
    this.scope.stop();
    this.setChannelOpen(false);
    const video = $("remote-video");
    video.srcObject = null;
    $("call-panel").dataset.call = "idle";
    $("call-title").firstChild.textContent = "No call ";
    $("call-title").querySelector(".vi").textContent = "Chưa có cuộc gọi";
    $("stage-message").hidden = false;
    $("stage-message").textContent = "Accept a resident from the queue to start a call.";
    $("hang-up").hidden = true;
    $("presence-note").hidden = true;
    $("framing").hidden = true;
    $("resident-panel").dataset.active = "false";
    for (const id of ["q-rtt", "q-loss", "q-fps", "q-res", "q-level"]) $(id).textContent = "—";
    $("quality").dataset.level = "none";
    this.queue.setAcceptEnabled(true);
  }

  // -- the doctor's camera and microphone ---------------------------------------------------

  async acquireMedia() {
    this.mediaRequested = true;
    this.setCameraState("checking");
    if (!navigator.mediaDevices?.getUserMedia) {
      this.setCameraState("unsupported");
      return;
    }
    const video = { width: { ideal: 1280 }, height: { ideal: 720 }, frameRate: { ideal: 30 } };
    const audio = { echoCancellation: true, noiseSuppression: true, autoGainControl: true };
    let stream = null;
    let state = "ok";
    try {
      stream = await navigator.mediaDevices.getUserMedia({ video, audio });
    } catch (error) {
      if (error.name === "NotAllowedError" || error.name === "SecurityError") {
        state = "denied";
      } else {
        try {
          stream = await navigator.mediaDevices.getUserMedia({ audio });
          state = "audio-only";
        } catch {
          state = "missing";
        }
      }
    }
    for (const track of this.localStream?.getTracks() ?? []) track.stop();
    this.localStream = stream;
    $("self-view").srcObject = stream;
    this.setCameraState(state);
    this.setMediaButtons(this.call !== null);
  }

  setCameraState(state) {
    const node = $("camera-state");
    node.dataset.state = state;
    node.textContent = CAMERA_TEXT[state] ?? "";
    node.hidden = state === "ok";
    $("self-view").hidden = this.localStream === null || this.localStream.getVideoTracks().length === 0;
    $("retry-camera").hidden = state === "ok" || state === "checking";
  }

  setMediaButtons(inCall) {
    const has = (kind) => (this.localStream?.getTracks() ?? []).some((t) => t.kind === kind);
    $("mute").disabled = !(inCall && has("audio"));
    $("camera").disabled = !(inCall && has("video"));
  }

  toggleTrack(kind, button) {
    const off = button.getAttribute("aria-pressed") !== "true";
    for (const track of this.localStream?.getTracks() ?? []) {
      if (track.kind === kind) track.enabled = !off;
    }
    button.setAttribute("aria-pressed", String(off));
  }

  // -- the vitals channel -------------------------------------------------------------------

  onVitalsMessage(data) {
    if (typeof data !== "string" || data.length > MAX_CHANNEL_MESSAGE) return;
    let message;
    try {
      message = JSON.parse(data);
    } catch {
      return;
    }
    if (message === null || typeof message !== "object") return;
    switch (message.type) {
      case "hello":
        this.showResident(message);
        break;
      case "measurement":
        if (isKind(message.kind)) this.vitals.measurement(message);
        break;
      case "pleth":
        this.scope.push(message);
        this.vitals.live("spo2", message.spo2);
        this.vitals.live("pulse", message.pulse);
        break;
      case "remeasure-status":
        if (isKind(message.kind)) this.vitals.remeasureStatus(message.kind, message.state);
        break;
      case "framing":
        if (Object.hasOwn(FRAMING, message.state)) {
          const framing = $("framing");
          framing.hidden = false;
          framing.dataset.state = message.state;
          framing.textContent = `Framing: ${FRAMING[message.state]}`;
        }
        break;
      case "quality":
        if (typeof message.level === "string") $("q-level").textContent = message.level;
        break;
      case "note-ack":
        if (message.id === this.lastNoteId) {
          $("note-status").textContent = "Shown to the resident and kept with the visit ✓";
        }
        break;
      default:
        break;
    }
  }

  sendVitals(message) {
    const channel = this.call?.channel;
    if (!channel || channel.readyState !== "open") {
      this.toast("The vitals channel is not open.");
      return false;
    }
    channel.send(JSON.stringify(message));
    return true;
  }

  remeasure(kind) {
    if (this.sendVitals({ type: "remeasure", kind })) {
      this.vitals.remeasureStatus(kind, "requested");
    }
  }

  sendNote(disposition, button) {
    if (!Object.hasOwn(DISPOSITIONS, disposition)) return;
    const id = crypto.randomUUID();
    const note = {
      type: "note",
      id,
      text: $("note-text").value.trim().slice(0, 4000),
      disposition,
    };
    if (this.welcome?.subject) note.doctor = String(this.welcome.subject).slice(0, 200);
    if (!this.sendVitals(note)) return;
    this.lastNoteId = id;
    for (const other of document.querySelectorAll("[data-disposition]")) {
      other.setAttribute("aria-pressed", String(other === button));
    }
    $("note-status").textContent = `Sent: ${DISPOSITIONS[disposition]} — waiting for the cabin…`;
  }

  // -- the resident -------------------------------------------------------------------------

  resetResident(triage) {
    $("resident-name").firstChild.textContent = "Resident ";
    $("resident-facts").textContent = triageFacts(triage ?? {}, null);
    const summary = $("resident-triage");
    summary.replaceChildren();
    if (triage && URGENCY[triage.urgency]) {
      const badge = document.createElement("span");
      badge.className = "badge";
      badge.dataset.urgency = triage.urgency;
      badge.textContent = URGENCY[triage.urgency].en;
      summary.append(badge, " ");
    }
    if (typeof triage?.summary === "string") summary.append(triage.summary);
    this.vitals.reset();
    $("note-text").value = "";
    $("note-status").textContent = "";
    for (const button of document.querySelectorAll("[data-disposition]")) button.removeAttribute("aria-pressed");
    this.lastNoteId = null;
  }

  showResident(hello) {
    const resident = hello.resident;
    if (resident === null || typeof resident !== "object") return;
    if (typeof resident.name === "string" && resident.name) {
      $("resident-name").firstChild.textContent = `${resident.name} `;
    }
    const facts = [];
    if (Number.isInteger(resident.age)) facts.push(`${resident.age} years`);
    if (SEX[resident.sex]) facts.push(SEX[resident.sex]);
    if (typeof resident.id_masked === "string") facts.push(`ID ${resident.id_masked}`);
    if (typeof resident.assurance === "string") facts.push(`identity: ${resident.assurance}`);
    if (typeof hello.language === "string") facts.push(hello.language);
    if (typeof hello.cabin?.site === "string") facts.push(hello.cabin.site);
    $("resident-facts").textContent = facts.join(" · ");
  }

  // -- small UI pieces ----------------------------------------------------------------------

  showSignIn(reason) {
    $("workspace").hidden = true;
    $("presence").hidden = true;
    $("sign-out").hidden = true;
    $("who").textContent = "";
    $("sign-in").hidden = false;
    $("sign-in-error").textContent = reason && reason !== "signed out" ? `Signed out: ${reason}` : "";
    $("token").focus();
  }

  banner(kind, text, vi = "") {
    clearTimeout(this.bannerTimer);
    const node = $("call-banner");
    node.dataset.kind = kind;
    node.replaceChildren(text);
    if (vi) {
      const span = document.createElement("span");
      span.className = "vi";
      span.lang = "vi";
      span.textContent = vi;
      node.append(" ", span);
    }
    node.hidden = false;
  }

  hideBanner(kind = null) {
    const node = $("call-banner");
    if (kind !== null && node.dataset.kind !== kind) return;
    node.hidden = true;
    node.dataset.kind = "";
    node.replaceChildren();
  }

  toast(text, role = "alert") {
    const node = $("toast");
    node.setAttribute("role", role);
    node.textContent = text;
    node.hidden = false;
    clearTimeout(this.toastTimer);
    this.toastTimer = setTimeout(() => {
      node.hidden = true;
    }, 6000);
  }
}

new DoctorConsole().start();
