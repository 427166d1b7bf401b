// The live waiting queue: one row per resident, most urgent first, then longest waiting.
//
// Rows are kept by ticket id between pushes so that keyboard focus on an Accept button
// survives a queue update. Waiting times tick every second from `waiting_since`.

export const URGENCY = {
  emergency: { rank: 0, en: "Emergency", vi: "Cấp cứu" },
  urgent: { rank: 1, en: "Urgent", vi: "Khẩn" },
  routine: { rank: 2, en: "Routine", vi: "Thường" },
};
const SEX = { male: "M", female: "F", other: "other", unknown: "" };

/** Most urgent first, then longest waiting (the server sends them so; we do not rely on it). */
export function sortTickets(tickets) {
  const rank = (t) => URGENCY[t.triage?.urgency]?.rank ?? 3;
  return [...tickets].sort((a, b) => rank(a) - rank(b) || a.waiting_since - b.waiting_since);
}

/** 75 → "1:15", 3725 → "1:02:05". */
export function formatWait(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${m}:${ss}`;
}

export function urgencyBadge(urgency) {
  const known = URGENCY[urgency] ?? { en: "Unknown", vi: "" };
  const badge = document.createElement("span");
  badge.className = "badge";
  badge.dataset.urgency = URGENCY[urgency] ? urgency : "unknown";
  badge.textContent = known.en;
  if (known.vi) {
    const vi = document.createElement("span");
    vi.className = "vi";
    vi.lang = "vi";
    vi.textContent = known.vi;
    badge.append(vi);
  }
  return badge;
}

/** "78 y · F · vi · bv-a": the short facts of a triage summary. */
export function triageFacts(triage, hospital) {
  const facts = [];
  if (Number.isInteger(triage?.age)) facts.push(`${triage.age} y`);
  if (SEX[triage?.sex]) facts.push(SEX[triage.sex]);
  if (typeof triage?.language === "string") facts.push(triage.language);
  if (typeof hospital === "string" && hospital) facts.push(hospital === "*" ? "any hospital" : hospital);
  return facts.join(" · ");
}

export class QueueView {
  #list;
  #empty;
  #count;
  #onAccept;
  #serverNow;
  #rows = new Map();
  #tickets = [];
  #canAccept = true;

  constructor({ list, empty, count, onAccept, serverNow }) {
    this.#list = list;
    this.#empty = empty;
    this.#count = count;
    this.#onAccept = onAccept;
    this.#serverNow = serverNow;
  }

  ticket(id) {
    return this.#tickets.find((t) => t.ticket === id) ?? null;
  }

  render(tickets) {
    this.#tickets = sortTickets(tickets.filter((t) => typeof t?.ticket === "string"));
    const seen = new Set();
    let previous = null;
    for (const ticket of this.#tickets) {
      seen.add(ticket.ticket);
      let row = this.#rows.get(ticket.ticket);
      if (row === undefined) {
        row = this.#row(ticket);
        this.#rows.set(ticket.ticket, row);
      }
      const wanted = previous === null ? this.#list.firstElementChild : previous.nextElementSibling;
      if (wanted !== row.item) this.#list.insertBefore(row.item, wanted);
      previous = row.item;
    }
    for (const [id, row] of this.#rows) {
      if (!seen.has(id)) {
        row.item.remove();
        this.#rows.delete(id);
      }
    }
    this.#empty.hidden = this.#tickets.length > 0;
    this.#count.textContent = String(this.#tickets.length);
    this.setAcceptEnabled(this.#canAccept);
    this.tick();
  }

  /** Accept only when not in a call (the server would say doctor-busy). */
  setAcceptEnabled(enabled) {
    this.#canAccept = enabled;
    for (const row of this.#rows.values()) {
      row.accept.disabled = !enabled || row.pending;
    }
  }

  /** A refused accept (already taken, gone): let the doctor try another row. */
  acceptFailed(ticketId) {
    const row = this.#rows.get(ticketId);
    if (row !== undefined) {
      row.pending = false;
      row.accept.disabled = !this.#canAccept;
    }
  }

  tick() {
    const now = this.#serverNow();
    for (const ticket of this.#tickets) {
      const row = this.#rows.get(ticket.ticket);
      const seconds = now - ticket.waiting_since;
      row.wait.textContent = formatWait(seconds);
      row.wait.dateTime = `PT${Math.max(0, Math.floor(seconds))}S`;
    }
  }

  #row(ticket) {
    const triage = ticket.triage ?? {};
    const item = document.createElement("li");
    item.className = "ticket";
    item.dataset.urgency = URGENCY[triage.urgency] ? triage.urgency : "unknown";
    const head = document.createElement("div");
    head.className = "ticket-head";
    const wait = document.createElement("time");
    wait.className = "wait";
    wait.title = "Waiting time";
    head.append(urgencyBadge(triage.urgency), wait);
    const summary = document.createElement("p");
    summary.className = "summary";
    summary.id = `summary-${ticket.ticket}`;
    summary.textContent = typeof triage.summary === "string" && triage.summary ? triage.summary : "No summary";
    const facts = document.createElement("p");
    facts.className = "facts";
    facts.textContent = triageFacts(triage, ticket.hospital);
    const flags = document.createElement("ul");
    flags.className = "flags";
    flags.setAttribute("aria-label", "Flags");
    for (const flag of Array.isArray(triage.flags) ? triage.flags : []) {
      const chip = document.createElement("li");
      chip.textContent = String(flag);
      flags.append(chip);
    }
    const accept = document.createElement("button");
    accept.type = "button";
    accept.className = "accept";
    accept.textContent = "Accept";
    const vi = document.createElement("span");
    vi.className = "vi";
    vi.lang = "vi";
    vi.textContent = "Nhận";
    accept.append(vi);
    accept.setAttribute("aria-describedby", summary.id);
    const row = { item, wait, accept, pending: false };
    accept.addEventListener("click", () => {
      row.pending = true;
      accept.disabled = true;
      this.#onAccept(ticket.ticket);
    });
    item.append(head, summary, facts);
    if (flags.childElementCount > 0) item.append(flags);
    item.append(accept);
    return row;
  }
}
