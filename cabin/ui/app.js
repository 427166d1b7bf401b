// The resident's screen for a whole visit: consent, each measurement, the results, the call
// with a doctor, SOS, and the goodbye. The cabin service drives it over /ui/ws (one `screen`
// message says what to show; `progress`, `pleth`, `results`, `warning`, `speak` and the call's
// messages fill it in); the page sends back what the resident chose. The service owns the
// camera and the microphone: the call's media arrive over a local receive-only WebRTC leg.
// Vietnamese first; every text from the network is set with textContent, never as HTML.

const $ = (id) => document.getElementById(id);
let language = "vi";
let last = {};           // the latest message of each kind, re-rendered on a language switch
let socket = null;

const SCREEN_SECTIONS = {
  idle: "idle-screen", consent: "consent-screen", step: "step-screen", "step-failed": "failed-screen",
  "urgent-offer": "urgent-screen", sos: "sos-screen", results: "results-screen",
  queue: "call-screen", call: "call-screen", "call-ended": "call-screen",
  completed: "goodbye-screen", "consent-declined": "goodbye-screen", withdrawn: "goodbye-screen",
  expired: "goodbye-screen",
};
const TITLES = {
  idle: ["Trạm y tế", "Health cabin"], step: ["Đo chỉ số sức khỏe", "Health measurements"], consent: ["Đồng ý sử dụng dữ liệu", "Your consent"],
  "step-failed": ["Chưa đo được", "Not measured yet"], "urgent-offer": ["Cần chú ý", "Attention"],
  sos: ["Cấp cứu", "Emergency"], results: ["Kết quả", "Results"],
  queue: ["Tư vấn với bác sĩ", "Talk to a doctor"], call: ["Tư vấn với bác sĩ", "Talk to a doctor"],
  "call-ended": ["Tư vấn với bác sĩ", "Talk to a doctor"], completed: ["Cảm ơn", "Thank you"],
  "consent-declined": ["Cảm ơn", "Thank you"], withdrawn: ["Cảm ơn", "Thank you"],
  expired: ["Cảm ơn", "Thank you"],
};
const STEPS = {
  temperature: {
    name: ["nhiệt độ", "temperature"],
    title: ["Đo nhiệt độ", "Temperature"],
    guide: ["Đứng yên trước máy đo, nhìn thẳng vào cảm biến trên trán.",
            "Stand still in front of the sensor and face it; it reads your forehead."],
  },
  weight: {
    name: ["cân nặng", "weight"],
    title: ["Đo cân nặng", "Weight"],
    guide: ["Bước lên cân, đứng yên ở giữa, hai tay buông thõng.",
            "Step onto the scale and stand still in the middle, arms by your sides."],
  },
  height: {
    name: ["chiều cao", "height"],
    title: ["Đo chiều cao", "Height"],
    guide: ["Đứng thẳng dưới cảm biến, lưng thẳng, mắt nhìn về phía trước.",
            "Stand up straight under the sensor and look straight ahead."],
  },
  spo2: {
    name: ["nồng độ oxy trong máu", "blood oxygen"],
    title: ["Đo nồng độ oxy trong máu (SpO2)", "Blood oxygen (SpO2)"],
    guide: ["Đặt ngón trỏ vào kẹp đo, móng tay hướng lên, để tay yên trên bàn.",
            "Put your index finger in the clip, nail up, and rest your hand on the table."],
  },
  "blood-pressure": {
    name: ["huyết áp", "blood pressure"],
    title: ["Đo huyết áp", "Blood pressure"],
    guide: ["Ngồi tựa lưng, quấn vòng bít trên bắp tay trần, đặt tay lên bàn ngang tim.",
            "Sit back, wrap the cuff on your bare upper arm, rest the arm on the table at heart level."],
  },
};
const GOODBYE = {
  completed: [["Cảm ơn ông/bà!", "Thank you!"],
              ["Lượt khám đã xong. Xin nhớ lấy thẻ CCCD tại ki-ốt.", "The visit is finished. Please take your ID card from the kiosk."]],
  "consent-declined": [["Cảm ơn ông/bà.", "Thank you."],
                       ["Không có dữ liệu nào được ghi lại. Xin nhớ lấy thẻ CCCD.", "Nothing was recorded. Please take your ID card."]],
  withdrawn: [["Đã dừng lượt khám.", "The visit has been stopped."],
              ["Sự đồng ý đã được rút lại; dữ liệu chưa gửi đã bị xóa. Xin nhớ lấy thẻ CCCD.", "Your consent is withdrawn; data not yet sent is deleted. Please take your ID card."]],
  expired: [["Lượt khám đã kết thúc.", "The visit has ended."],
            ["Lượt khám đã hết thời gian. Xin mời đặt lại thẻ CCCD nếu ông/bà muốn khám tiếp.", "The visit timed out. Place your ID card again to start a new one."]],
};
const STILL_PHASES = new Set(["measuring", "hold-still", "inflating", "deflating", "rest", "settling"]);
const ACTIVE_CALL = ["connecting", "queued", "no-doctor", "in-call", "reconnecting"];

const pick = (pair) => (language === "vi" ? pair[0] : pair[1]);
const text = (message, vi = "vi", en = "en") => (message ? String((language === "vi" ? message[vi] : message[en]) ?? "") : "");

function say(element, message) {
  if (!message) return;
  element.textContent = text(message);
}

function send(message) {
  if (socket && socket.readyState === 1) socket.send(JSON.stringify(message));
}

// -- which screen ------------------------------------------------------------------------------

let callDismissed = false;   // the standalone call screen was closed with "Done"

function currentScreen() {
  return last.screen ? last.screen.screen : "idle";
}

function showScreen() {
  const message = last.screen || { screen: "idle" };
  let screen = SCREEN_SECTIONS[message.screen] ? message.screen : "idle";
  const consult = last.consult ? last.consult.state : "idle";
  // no visit: the welcome, unless the standalone call to a doctor is under way (or just ended)
  const standaloneCall = screen === "idle" && consult !== "idle" && !callDismissed;
  const section = standaloneCall ? "call-screen" : SCREEN_SECTIONS[screen];
  for (const node of document.querySelectorAll("#screens > .screen")) node.hidden = node.id !== section;
  document.body.dataset.screen = standaloneCall ? "call" : screen;

  $("title").textContent = pick(TITLES[standaloneCall ? "call" : screen] || TITLES.idle);
  $("withdraw").hidden = !["step", "step-failed", "urgent-offer", "results", "queue", "call-ended"].includes(screen);
  if ($("withdraw").hidden) $("withdraw-confirm").hidden = true;

  // the call screen's buttons: the standalone flow as before; in a visit the runner calls
  const active = ACTIVE_CALL.includes(consult);
  const inVisitCall = ["queue", "call", "call-ended"].includes(screen);
  $("hangup").hidden = !active;
  $("call").hidden = active || (inVisitCall && !(screen === "call-ended" && message.consult));
  $("call-done").hidden = active || !(screen === "call-ended" || (standaloneCall && consult === "ended"));
  if (screen === "queue" && consult === "idle") {  // before the consultation's first news
    $("state-text").textContent = pick(["Đang gọi bác sĩ…", "Calling a doctor…"]);
  }
  if (inVisitCall && screen === "call-ended" && message.consult) {
    $("call").textContent = pick(["Gọi lại bác sĩ", "Call the doctor again"]);
  } else {
    $("call").textContent = pick(["Gọi bác sĩ", "Call a doctor"]);
  }
}

function renderScreen(message, fresh) {
  const before = last.screen;
  last.screen = message;
  const changed = !before || before.screen !== message.screen || before.step !== message.step;
  if (fresh && changed) {
    $("warning").hidden = true;
    stopWarning();
    if (message.screen === "consent") resetConsent();
    if (message.screen === "step") resetStep();
  }
  const step = STEPS[message.step];
  switch (message.screen) {
    case "consent":
      renderConsentText();
      break;
    case "step":
      if (step) {
        $("step-title").textContent = pick(step.title);
        $("step-guide").textContent = pick(step.guide);
        $("step-img").src = `/ui/img/${message.step}.svg`;
      }
      $("pleth").hidden = message.step !== "spo2";
      if (last.progress && last.progress.step === message.step) renderProgress(last.progress);
      break;
    case "step-failed":
      $("failed-title").textContent = step
        ? pick([`Chưa đo được ${step.name[0]}`, `Your ${step.name[1]} was not measured`])
        : pick(TITLES["step-failed"]);
      $("failed-reason").textContent = message.reason ? text(message.reason) : "";
      $("retake").hidden = !message.retake;
      break;
    case "urgent-offer": {
      const finding = message.finding;
      $("finding").textContent = finding ? text(finding) : "";
      $("finding").className = `finding color-${safeColor(finding && finding.color)}`;
      $("urgent-number").textContent = message.emergency_number || "115";
      break;
    }
    case "sos":
      $("sos-number").textContent = message.emergency_number || "115";
      $("sos-consult").hidden = !message.consult;
      break;
    case "results":
      $("talk").hidden = !message.consult;
      break;
    default:
      if (GOODBYE[message.screen]) {
        const [title, body] = GOODBYE[message.screen];
        $("goodbye-title").textContent = pick(title);
        $("goodbye-text").textContent = pick(body);
      }
  }
  showScreen();
}

// -- consent -----------------------------------------------------------------------------------

function resetConsent() {
  for (const choice of document.querySelectorAll(".choice")) choice.setAttribute("aria-checked", "false");
  $("consent-hint").hidden = true;
}

function renderConsentText() {
  const message = last["consent-text"];
  if (!message) return;
  const lines = text(message).split("\n");
  $("consent-title").textContent = lines[0] || "";
  $("consent-body").textContent = lines.slice(1).join("\n");
  const hospital = String(message.hospital || pick(["bệnh viện", "the hospital"]));
  $("choice-hospital").textContent = pick([`Gửi kết quả đến ${hospital}`, `Send my results to ${hospital}`]);
}

for (const choice of document.querySelectorAll(".choice")) {
  choice.onclick = () => {
    choice.setAttribute("aria-checked", choice.getAttribute("aria-checked") === "true" ? "false" : "true");
    $("consent-hint").hidden = true;
  };
}
$("agree").onclick = () => {
  const chosen = {};
  for (const choice of document.querySelectorAll(".choice")) {
    chosen[choice.dataset.purpose] = choice.getAttribute("aria-checked") === "true";
  }
  if (!Object.values(chosen).some(Boolean)) { $("consent-hint").hidden = false; return; }
  send({ type: "consent", measuring: chosen.measuring, hospital: chosen.hospital,
         video_consultation: chosen.video_consultation });
};
$("decline").onclick = () => send({ type: "refuse-consent" });

// -- a measuring step --------------------------------------------------------------------------

let pleth = [];
const PLETH_KEEP = 300;

function resetStep() {
  delete last.progress;
  pleth = [];
  $("step-instruction").textContent = "";
  $("still").hidden = true;
  $("live").hidden = true;
  $("step-bar").hidden = true;
  $("step-countdown").hidden = true;
  drawPleth();
}

function renderProgress(message) {
  const screen = last.screen;
  if (!screen || screen.screen !== "step" || (message.step && message.step !== screen.step)) return;
  $("step-instruction").textContent = text(message);
  $("still").hidden = !STILL_PHASES.has(message.phase);
  const live = message.live;
  $("live").hidden = live === null || live === undefined || live === "";
  $("live-value").textContent = live == null ? "" : String(live);
  $("live-unit").textContent = message.unit ? String(message.unit) : "";
  const fraction = typeof message.fraction === "number" ? Math.max(0, Math.min(1, message.fraction)) : null;
  $("step-bar").hidden = fraction === null;
  if (fraction !== null) {
    $("step-bar-fill").style.width = `${Math.round(fraction * 100)}%`;
    $("step-bar").setAttribute("aria-valuenow", String(Math.round(fraction * 100)));
  }
  const left = typeof message.seconds_left === "number" ? Math.max(0, Math.ceil(message.seconds_left)) : null;
  $("step-countdown").hidden = left === null;
  if (left !== null) $("step-countdown").textContent = pick([`Còn ${left} giây`, `${left} s left`]);
}

function drawPleth() {
  const canvas = $("pleth");
  const g = canvas.getContext("2d");
  g.fillStyle = "#fff";
  g.fillRect(0, 0, canvas.width, canvas.height);
  g.strokeStyle = "#ccc";
  g.lineWidth = 2;
  g.strokeRect(1, 1, canvas.width - 2, canvas.height - 2);
  if (pleth.length < 2) return;
  const low = Math.min(...pleth), high = Math.max(...pleth);
  const span = high - low || 1;
  g.strokeStyle = "#0b4f9c";
  g.lineWidth = 5;
  g.beginPath();
  pleth.forEach((value, i) => {
    const x = (i / (PLETH_KEEP - 1)) * canvas.width;
    const y = canvas.height - 12 - ((value - low) / span) * (canvas.height - 24);
    if (i === 0) g.moveTo(x, y); else g.lineTo(x, y);
  });
  g.stroke();
}

function renderPleth(message) {
  const samples = Array.isArray(message.samples) ? message.samples.filter((s) => Number.isFinite(s)) : [];
  pleth = pleth.concat(samples).slice(-PLETH_KEEP);
  drawPleth();
}

// -- results -----------------------------------------------------------------------------------

const COLORS = new Set(["green", "yellow", "orange", "red", "grey"]);
const safeColor = (color) => (COLORS.has(color) ? color : "grey");
const STATUS = {
  questionable: ["Cần đo lại để chắc chắn", "Worth measuring again"],
  failed: ["Chưa đo được", "Not measured"],
};

function renderResults(message) {
  const list = $("results-list");
  list.replaceChildren();
  for (const item of Array.isArray(message.items) ? message.items : []) {
    const li = document.createElement("li");
    li.className = `result color-${safeColor(item.color)}`;
    li.dataset.kind = String(item.kind || "");
    li.dataset.color = safeColor(item.color);
    const band = document.createElement("span");
    band.className = "band";
    band.setAttribute("aria-hidden", "true");
    const label = document.createElement("span");
    label.className = "result-label";
    label.textContent = text(item, "label_vi", "label_en");
    const value = document.createElement("span");
    value.className = "result-value";
    value.textContent = item.value == null || item.value === "" ? "—" : String(item.value);
    if (item.unit) {
      const unit = document.createElement("span");
      unit.className = "result-unit";
      unit.textContent = ` ${item.unit}`;
      value.append(unit);
    }
    const sentence = document.createElement("p");
    sentence.className = "result-sentence";
    sentence.textContent = text(item);
    li.append(band, label, value, sentence);
    if (STATUS[item.status]) {
      const status = document.createElement("p");
      status.className = "result-status";
      status.textContent = pick(STATUS[item.status]);
      li.append(status);
    }
    list.append(li);
  }
  const url = typeof message.receipt_url === "string" ? message.receipt_url : "";
  const local = url.startsWith("/") && !url.startsWith("//");
  $("receipt").hidden = !local;
  if (local) $("receipt").setAttribute("href", url); else $("receipt").removeAttribute("href");
}

$("talk").onclick = () => send({ type: "call-doctor" });
$("done").onclick = () => send({ type: "results-seen" });

// -- the inactivity warning --------------------------------------------------------------------

let warningDeadline = 0;
let warningTimer = null;

function stopWarning() {
  if (warningTimer) clearInterval(warningTimer);
  warningTimer = null;
}

function paintWarning() {
  const left = Math.max(0, Math.ceil((warningDeadline - Date.now()) / 1000));
  $("warning-count").textContent = String(left);
  const k = last.warning ? Number(last.warning.extensions_left) : 0;
  $("warning-extensions").hidden = !(k >= 0);
  $("warning-extensions").textContent = pick([`Còn ${k} lần gia hạn.`, `${k} extensions left.`]);
}

function renderWarning(message) {
  warningDeadline = Date.now() + Math.max(0, Number(message.seconds_left) || 0) * 1000;
  $("warning").hidden = false;
  paintWarning();
  stopWarning();
  warningTimer = setInterval(paintWarning, 250);
  $("extend").focus();
}

function hideWarning() {
  $("warning").hidden = true;
  stopWarning();
  delete last.warning;
}

$("extend").onclick = () => send({ type: "extend" });

// -- voice prompts -----------------------------------------------------------------------------

let voice = null;

function speak(message) {
  const id = String(message.prompt || "");
  if (!/^[a-z0-9-]+$/.test(id)) return;
  if (voice) voice.pause();
  voice = new Audio(`/ui/voice/${language}/${id}.wav`);
  voice.play().catch(() => {});
}

// -- the call (unchanged behaviour) ------------------------------------------------------------

function renderCall(message) {
  switch (message.type) {
    case "consult": {
      say($("state-text"), message);
      document.body.dataset.state = message.state;
      if (ACTIVE_CALL.includes(message.state)) callDismissed = false;
      if (message.state === "ended") $("remeasure").hidden = true;
      showScreen();
      break;
    }
    case "note": {
      $("note").hidden = false;
      $("note-text").textContent = message.text;
      $("note-advice").textContent = language === "vi" ? message.advice_vi : message.advice_en;
      $("note-emergency").hidden = !message.emergency_number;
      if (message.emergency_number) {
        $("note-emergency").textContent = (language === "vi" ? "Số cấp cứu: " : "Emergency number: ") + message.emergency_number;
      }
      break;
    }
    case "remeasure": {
      const names = {
        "blood-pressure": ["huyết áp", "blood pressure"], "spo2": ["nồng độ oxy", "blood oxygen"],
        "pulse": ["nhịp tim", "pulse"], "temperature": ["nhiệt độ", "temperature"],
        "weight": ["cân nặng", "weight"], "height": ["chiều cao", "height"], "bmi": ["BMI", "BMI"],
      };
      const [vi, en] = names[message.kind] || [message.kind, message.kind];
      $("remeasure").hidden = false;
      $("remeasure").textContent = language === "vi"
        ? `Bác sĩ đề nghị ông/bà đo lại ${vi}.` : `The doctor asks you to measure your ${en} again.`;
      break;
    }
    case "framing": {
      $("framing-text").hidden = message.state === "ok";
      say($("framing-text"), message);
      break;
    }
    case "quality": {
      const label = { "720p30": "HD", "480p30": "SD", "480p15": "SD", "audio-only": language === "vi" ? "Chỉ âm thanh" : "Audio only" };
      $("quality").textContent = label[message.level] || "";
      break;
    }
  }
}

$("call").onclick = () => send({ type: "call-doctor" });
$("idle-call").onclick = () => send({ type: "call-doctor" });
$("hangup").onclick = () => send({ type: "hang-up" });
$("call-done").onclick = () => {
  if (currentScreen() === "call-ended") { send({ type: "results-seen" }); return; }
  callDismissed = true;   // the standalone call: back to the welcome
  $("note").hidden = true;
  showScreen();
};

// -- one message -------------------------------------------------------------------------------

function render(message) {
  if (!message || typeof message !== "object") return;
  switch (message.type) {
    case "screen": renderScreen(message, true); break;
    case "consent-text": last["consent-text"] = message; renderConsentText(); break;
    case "progress": last.progress = message; renderProgress(message); break;
    case "pleth": renderPleth(message); break;
    case "results": last.results = message; renderResults(message); break;
    case "speak": speak(message); break;
    case "warning": last.warning = message; renderWarning(message); break;
    case "warning-hide": hideWarning(); break;
    case "consult": case "note": case "remeasure": case "framing": case "quality":
      last[message.type] = message;
      renderCall(message);
      break;
  }
}

function translateStatic() {
  document.documentElement.lang = language;
  for (const node of document.querySelectorAll("[data-vi]")) node.textContent = node.dataset[language];
  $("language").textContent = language === "vi" ? "English" : "Tiếng Việt";
  $("language").setAttribute("aria-label", $("language").textContent);
  if (last.screen) renderScreen(last.screen, false);
  if (last["consent-text"]) renderConsentText();
  if (last.progress) renderProgress(last.progress);
  if (last.results) renderResults(last.results);
  if (last.warning && !$("warning").hidden) paintWarning();
  for (const type of ["consult", "note", "remeasure", "framing", "quality"]) {
    if (last[type]) renderCall(last[type]);
  }
  showScreen();
}

$("language").onclick = () => { language = language === "vi" ? "en" : "vi"; translateStatic(); };

// -- SOS, withdrawal, touches ------------------------------------------------------------------

$("sos").onclick = () => send({ type: "sos" });
$("urgent-sos").onclick = () => send({ type: "sos" });
$("urgent-continue").onclick = () => send({ type: "overlay-closed" });
$("sos-back").onclick = () => send({ type: "overlay-closed" });
$("retake").onclick = () => send({ type: "retake" });
$("skip").onclick = () => send({ type: "skip" });
$("withdraw").onclick = () => { $("withdraw-confirm").hidden = false; $("withdraw-no").focus(); };
$("withdraw-no").onclick = () => { $("withdraw-confirm").hidden = true; };
$("withdraw-yes").onclick = () => { $("withdraw-confirm").hidden = true; send({ type: "withdraw" }); };

let lastTouch = 0;
document.addEventListener("pointerdown", () => {
  const now = Date.now();
  if (now - lastTouch < 1000) return;
  lastTouch = now;
  send({ type: "touch" });
}, { capture: true });

// -- connections -------------------------------------------------------------------------------

function connectEvents() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  socket = new WebSocket(`${scheme}://${location.host}/ui/ws`);
  socket.onmessage = (event) => {
    let message;
    try { message = JSON.parse(event.data); } catch { return; }
    render(message);
  };
  socket.onclose = () => setTimeout(connectEvents, 1000);
}

async function connectMedia() {
  const pc = new RTCPeerConnection();
  const order = [pc.addTransceiver("video", { direction: "recvonly" }),
                 pc.addTransceiver("audio", { direction: "recvonly" }),
                 pc.addTransceiver("video", { direction: "recvonly" })];
  const targets = [$("doctor-video"), $("doctor-audio"), $("self-view")];
  pc.ontrack = (event) => {
    const index = order.indexOf(event.transceiver);
    if (index >= 0) targets[index].srcObject = new MediaStream([event.track]);
  };
  pc.onconnectionstatechange = () => {
    if (["failed", "closed"].includes(pc.connectionState)) setTimeout(connectMedia, 2000);
  };
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise((resolve) => {
    if (pc.iceGatheringState === "complete") return resolve();
    pc.onicegatheringstatechange = () => pc.iceGatheringState === "complete" && resolve();
    setTimeout(resolve, 2000);
  });
  let reply;
  try {
    reply = await fetch("/ui/rtc", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ sdp: pc.localDescription.sdp }),
    });
  } catch { reply = null; }
  if (!reply || !reply.ok) { pc.onconnectionstatechange = null; pc.close(); setTimeout(connectMedia, 2000); return; }
  await pc.setRemoteDescription(await reply.json());
  window.localLeg = pc;  // for tests and diagnostics (getStats)
}

resetStep();
showScreen();
connectEvents();
connectMedia();
