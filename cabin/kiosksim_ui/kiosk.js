// The kiosk simulator's page: pick a TEST card and a service, place the card (the simulator
// signs an assertion and opens a session at the cabin), open the launch URL in a new tab,
// remove the card (the cabin wipes the visit), and watch the signed events the cabin posts.
// Every value from the network is set with textContent, never as HTML.

const $ = (id) => document.getElementById(id);
const POLL_MS = 500;
const STATUS_MS = 2000;
const SEX = { male: "Nam / Male", female: "Nữ / Female", other: "Khác / Other", unknown: "?" };

let citizens = [];
let lastSeq = 0;
let card = null;
let busy = false;

function say(text, error = false) {
  $("message").textContent = text;
  $("message").classList.toggle("error", error);
}

function httpLink(url) {
  try {
    const parsed = new URL(url);
    return parsed.protocol === "http:" || parsed.protocol === "https:";
  } catch {
    return false;
  }
}

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function renderCitizens() {
  const holder = $("cards");
  holder.replaceChildren();
  citizens.forEach((citizen, index) => {
    const label = element("label", "card");
    label.dataset.index = String(index);
    const input = document.createElement("input");
    input.type = "radio";
    input.name = "citizen";
    input.value = String(index);
    input.checked = index === 0;
    label.append(
      input,
      element("span", "stamp", "THỬ NGHIỆM / TEST"),
      element("div", "name", citizen.name),
      element("div", "line", `Số CCCD / ID: ${citizen.cccd}`),
      element("div", "line", `Ngày sinh / Born: ${citizen.birth_date} · ${SEX[citizen.sex] || citizen.sex}`),
      element("div", "line", `Có giá trị đến / Expires: ${citizen.card_expiry || "Không thời hạn / none"}`),
    );
    holder.append(label);
  });
}

function chosen(name) {
  const input = document.querySelector(`input[name="${name}"]:checked`);
  return input ? input.value : null;
}

function renderCard() {
  const placed = card !== null;
  $("place").disabled = placed || busy;
  $("remove").disabled = !placed || busy;
  for (const input of document.querySelectorAll('input[name="citizen"], input[name="service"], input[name="locale"]')) {
    input.disabled = placed;
  }
  $("session").hidden = !placed;
  if (!placed) {
    $("visit-status").textContent = "…";
    return;
  }
  const citizen = citizens[card.citizen];
  $("session-citizen").textContent = citizen ? `${citizen.name} (${card.service}, ${card.locale})` : "";
  $("session-id").textContent = card.session_id;
  $("session-assurance").textContent = card.assurance || "";
  $("session-expires").textContent = card.expires_at || "";
  $("launch-url").textContent = card.launch_url || "";
  const link = $("launch");
  if (card.launch_url && httpLink(card.launch_url)) {
    link.href = card.launch_url;
    link.hidden = false;
  } else {
    link.removeAttribute("href");
    link.hidden = true;
  }
}

function cabinProblem(reply) {
  if (reply && typeof reply === "object") {
    const code = reply.cabin_reply && reply.cabin_reply.error ? reply.cabin_reply.error : reply.error;
    const message = reply.cabin_reply && reply.cabin_reply.message ? reply.cabin_reply.message : reply.message;
    return [code, message].filter(Boolean).join(": ");
  }
  return "";
}

async function call(method, path, body) {
  const options = { method, headers: {} };
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const response = await fetch(path, options);
  let reply = null;
  try {
    reply = await response.json();
  } catch {
    reply = null;
  }
  return [response.status, reply];
}

async function placeCard() {
  const index = Number(chosen("citizen"));
  if (Number.isNaN(index)) {
    say("Chọn một thẻ trước. / Choose a card first.", true);
    return;
  }
  busy = true;
  renderCard();
  say("Đang gửi đến buồng khám… / Sending to the cabin…");
  try {
    const [status, reply] = await call("POST", "/api/card", {
      citizen: index, service: chosen("service"), locale: chosen("locale"),
    });
    if (status === 200 && reply.cabin_status === 201) {
      card = reply.card;
      say(`Buồng khám đã mở phiên (201). / The cabin opened a session (201).`);
    } else {
      const code = reply && reply.cabin_status ? reply.cabin_status : status;
      say(`Buồng khám từ chối (${code}) / Refused (${code}): ${cabinProblem(reply)}`, true);
    }
  } catch (error) {
    say(`Lỗi / Error: ${error}`, true);
  } finally {
    busy = false;
    renderCard();
  }
  refreshStatus();
}

async function removeCard() {
  busy = true;
  renderCard();
  say("Đang rút thẻ… / Removing the card…");
  try {
    const [status, reply] = await call("DELETE", "/api/card");
    if (status === 200 && (reply.cabin_status === 204 || reply.cabin_status === 404)) {
      card = null;
      say(`Đã rút thẻ; buồng khám xóa phiên (${reply.cabin_status}). / Card removed; the cabin wiped the session (${reply.cabin_status}).`);
    } else {
      const code = reply && reply.cabin_status ? reply.cabin_status : status;
      say(`Chưa rút được (${code}), thử lại. / Not removed (${code}), retry: ${cabinProblem(reply)}`, true);
      if (reply && "card" in reply) card = reply.card;
    }
  } catch (error) {
    say(`Lỗi / Error: ${error}`, true);
  } finally {
    busy = false;
    renderCard();
  }
}

function addEvent(event) {
  const row = element("tr", event.verified ? "ok" : "bad");
  row.dataset.type = event.type || "";
  row.dataset.verified = String(event.verified);
  const time = (event.received_at || "").replace(/^.*T/, "").replace(/\.\d+Z$|Z$/, "");
  const data = element("td", "data");
  const shown = event.verified ? event.data : { problem: event.problem, data: event.data };
  data.append(element("code", null, JSON.stringify(shown, null, 1)));
  row.append(
    element("td", null, String(event.seq)),
    element("td", null, time),
    element("td", "sig", event.verified ? "✓" : "✗"),
    element("td", "type", event.type || "?"),
    element("td", null, event.subject || ""),
    data,
  );
  row.querySelector(".sig").title = event.verified ? "HMAC OK" : `HMAC ✗: ${event.problem || ""}`;
  $("log-body").prepend(row);
  $("log-empty").hidden = true;
}

async function poll() {
  try {
    const response = await fetch(`/api/state?after=${lastSeq}`);
    if (response.ok) {
      const state = await response.json();
      for (const event of state.events) {
        addEvent(event);
        lastSeq = Math.max(lastSeq, event.seq);
      }
      if (!busy && JSON.stringify(state.card) !== JSON.stringify(card)) {
        card = state.card;
        renderCard();
      }
    }
  } catch {
    // the simulator restarted or went away: keep polling
  }
  setTimeout(poll, POLL_MS);
}

async function refreshStatus() {
  if (card === null || busy) return;
  try {
    const [status, reply] = await call("GET", "/api/card/status");
    if (status === 200 && reply.cabin_status === 200 && reply.cabin_reply) {
      const visit = reply.cabin_reply;
      $("visit-status").textContent = `${visit.state} (${visit.progress.done}/${visit.progress.total})`;
    } else if (status === 200) {
      $("visit-status").textContent = `${reply.cabin_status} ${cabinProblem(reply)}`;
    }
  } catch {
    // next time
  }
}

async function pollStatus() {
  await refreshStatus();
  setTimeout(pollStatus, STATUS_MS);
}

async function start() {
  $("place").addEventListener("click", placeCard);
  $("remove").addEventListener("click", removeCard);
  const response = await fetch("/api/citizens");
  citizens = (await response.json()).citizens;
  renderCitizens();
  renderCard();
  document.body.dataset.ready = "true";
  poll();
  pollStatus();
}

start();
