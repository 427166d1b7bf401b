// The resident's call screen. The cabin service owns the camera and the microphone: this page
// only receives (the doctor's video and audio, and a self-view) over a local WebRTC leg, and
// shows what the service says over /ui/ws. Vietnamese first; every text from the network is
// set with textContent, never as HTML.

const $ = (id) => document.getElementById(id);
let language = "vi";
let last = {};           // the latest message of each kind, re-rendered on a language switch

function say(element, message) {
  if (!message) return;
  element.textContent = language === "vi" ? message.vi : message.en;
}

function translateStatic() {
  document.documentElement.lang = language;
  for (const node of document.querySelectorAll("[data-vi]")) {
    node.textContent = node.dataset[language];
  }
  $("language").textContent = language === "vi" ? "English" : "Tiếng Việt";
  $("language").setAttribute("aria-label", $("language").textContent);
  for (const message of Object.values(last)) render(message, false);
}

function render(message, remember = true) {
  if (remember) last[message.type] = message;
  switch (message.type) {
    case "consult": {
      say($("state-text"), message);
      const active = ["connecting", "queued", "no-doctor", "in-call", "reconnecting"].includes(message.state);
      $("call").hidden = active;
      $("hangup").hidden = !active;
      document.body.dataset.state = message.state;
      if (message.state === "ended") $("remeasure").hidden = true;
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

function connectEvents() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${location.host}/ui/ws`);
  socket.onmessage = (event) => render(JSON.parse(event.data));
  socket.onclose = () => setTimeout(connectEvents, 1000);
  $("call").onclick = () => socket.readyState === 1 && socket.send(JSON.stringify({ type: "call-doctor" }));
  $("hangup").onclick = () => socket.readyState === 1 && socket.send(JSON.stringify({ type: "hang-up" }));
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
  const reply = await fetch("/ui/rtc", {
    method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ sdp: pc.localDescription.sdp }),
  });
  if (!reply.ok) { setTimeout(connectMedia, 2000); return; }
  await pc.setRemoteDescription(await reply.json());
  window.localLeg = pc;  // for tests and diagnostics (getStats)
}

$("language").onclick = () => { language = language === "vi" ? "en" : "vi"; translateStatic(); };
connectEvents();
connectMedia();
