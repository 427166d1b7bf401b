// The signaling protocol (docs/signaling.md) over one WebSocket, for the doctor console.
//
// One Signaling object is one signed-in session. The single-use sign-in token is sent once;
// every welcome brings a fresh resume token, kept in sessionStorage so that a dropped
// connection, or a reload of the page, takes the same session back with hello{resume}
// instead of re-using the token (which the server would refuse as replayed).
//
// Events:
//   "state"   detail {state, reason?}   connecting | online | reconnecting | signed-out
//   "message" detail <server message>  every message the server sends, welcome included

const RESUME_KEY = "doctor-console.resume";
const PROTOCOL_VERSION = 1;
const CLIENT_NAME = "doctor-console/1";
// after these errors the session is gone: sign in again (never retried)
const SESSION_GONE = new Set([
  "auth-failed",
  "resume-failed",
  "replaced",
  "too-many-connections",
  "too-many-errors",
  "unsupported-version",
  "auth-timeout",
]);
const BACKOFF_MS = [250, 500, 1000, 2000, 4000];

export class Signaling extends EventTarget {
  #url;
  #storage;
  #ws = null;
  #state = "signed-out";
  #graceMs = 60_000;
  #droppedAt = null;
  #attempt = 0;
  #retryTimer = null;
  #fatal = null;
  #leaving = false;
  #nextId = 1;

  constructor(url, { storage = window.sessionStorage } = {}) {
    super();
    this.#url = url;
    this.#storage = storage;
  }

  get state() {
    return this.#state;
  }

  /** Whether this tab holds a session that a reload can resume. */
  get canResume() {
    return Boolean(this.#storage.getItem(RESUME_KEY));
  }

  /** Sign in with a token (single use: it is never stored, and never sent twice). */
  signIn(token) {
    this.#storage.removeItem(RESUME_KEY);
    this.#leaving = false;
    this.#open({ type: "hello", v: PROTOCOL_VERSION, token, client: CLIENT_NAME });
  }

  /** Take back the session this tab held (after a reload). */
  resume() {
    const resume = this.#storage.getItem(RESUME_KEY);
    if (!resume) {
      this.#setState("signed-out", "nothing to resume");
      return;
    }
    this.#leaving = false;
    this.#open({ type: "hello", v: PROTOCOL_VERSION, resume, client: CLIENT_NAME });
  }

  /** Send a message; returns its id, or null when not connected (nothing is queued). */
  send(message) {
    if (this.#ws === null || this.#ws.readyState !== WebSocket.OPEN || this.#state !== "online") {
      return null;
    }
    const id = message.id ?? `c${this.#nextId++}`;
    this.#ws.send(JSON.stringify({ ...message, id }));
    return id;
  }

  /** Leave for good: bye (the server ends the session at once) and forget the resume token. */
  signOut() {
    this.#leaving = true;
    this.#storage.removeItem(RESUME_KEY);
    clearTimeout(this.#retryTimer);
    if (this.#ws !== null && this.#ws.readyState === WebSocket.OPEN) {
      this.#ws.send(JSON.stringify({ type: "bye" }));
      this.#ws.close(1000);
    }
    this.#ws = null;
    this.#setState("signed-out", "signed out");
  }

  #open(hello) {
    clearTimeout(this.#retryTimer);
    this.#fatal = null;
    if (this.#state !== "reconnecting") {
      this.#setState("connecting");
    }
    let ws;
    try {
      ws = new WebSocket(this.#url);
    } catch (error) {
      this.#setState("signed-out", `cannot open ${this.#url}: ${error.message}`);
      return;
    }
    this.#ws = ws;
    ws.addEventListener("open", () => ws.send(JSON.stringify(hello)));
    ws.addEventListener("message", (event) => this.#onMessage(ws, event));
    ws.addEventListener("close", (event) => this.#onClose(ws, event));
  }

  #onMessage(ws, event) {
    if (ws !== this.#ws) {
      return;
    }
    let message;
    try {
      message = JSON.parse(event.data);
    } catch {
      return;
    }
    if (message === null || typeof message !== "object" || typeof message.type !== "string") {
      return;
    }
    if (message.type === "welcome") {
      if (typeof message.resume === "string") {
        this.#storage.setItem(RESUME_KEY, message.resume);
      }
      if (typeof message.grace_s === "number") {
        this.#graceMs = message.grace_s * 1000;
      }
      this.#attempt = 0;
      this.#droppedAt = null;
      this.#setState("online");
    } else if (message.type === "error" && message.fatal) {
      this.#fatal = message;
    }
    this.dispatchEvent(new CustomEvent("message", { detail: message }));
  }

  #onClose(ws, event) {
    if (ws !== this.#ws) {
      return;
    }
    this.#ws = null;
    if (this.#leaving) {
      return;
    }
    const fatal = this.#fatal;
    if (fatal !== null && SESSION_GONE.has(fatal.code)) {
      this.#storage.removeItem(RESUME_KEY);
      this.#setState("signed-out", fatal.detail ? `${fatal.message} (${fatal.detail})` : fatal.message);
      return;
    }
    if (!this.canResume) {
      this.#setState("signed-out", `connection closed (${event.code})`);
      return;
    }
    // a drop, a slow-consumer cut, or a node shutting down: resume within the grace window
    this.#droppedAt ??= Date.now();
    if (Date.now() - this.#droppedAt > this.#graceMs) {
      this.#storage.removeItem(RESUME_KEY);
      this.#setState("signed-out", "the connection could not be restored in time");
      return;
    }
    this.#setState("reconnecting");
    const delay = fatal?.code === "shutting-down" ? 0 : BACKOFF_MS[Math.min(this.#attempt, BACKOFF_MS.length - 1)];
    this.#attempt += 1;
    this.#retryTimer = setTimeout(() => this.resume(), delay);
  }

  #setState(state, reason = undefined) {
    if (state === this.#state && reason === undefined) {
      return;
    }
    this.#state = state;
    this.dispatchEvent(new CustomEvent("state", { detail: { state, reason } }));
  }
}
