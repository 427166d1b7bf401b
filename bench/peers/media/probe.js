// The media benchmark's probe, added to every page it opens (Playwright add_init_script).
//
// - Keeps every RTCPeerConnection the page makes (window.__bench.peers) for getStats().
// - watchPattern(id): on every frame the <video id> presents (requestVideoFrameCallback), draws
//   it to a canvas and reads the test pattern's code band (cabin/media/pattern.py: 32 cells,
//   each bit over its complement; row 0 the frame counter, row 2 the capture time in ms mod
//   2^32); the latency is (Date.now() - stamp) mod 2^32.
// - watchBright(id): the first presented frame brighter than the black filler after arm().
// - Accept timing: the click on an "Accept" button, then the first getStats() of the newest
//   peer connection with framesDecoded > 0 (polled every 5 ms), and its first presented frame.
(() => {
  const TWO32 = 4294967296;
  const Native = window.RTCPeerConnection;
  const peers = [];
  if (Native) {
    window.RTCPeerConnection = class extends Native {
      constructor(...args) {
        super(...args);
        peers.push(this);
      }
    };
  }

  const bench = {
    peers,
    frames: [], // [latency ms, counter, width, height]
    unreadable: 0,
    acceptAt: null,
    decodedAt: null,
    presentedAt: null,
    brightAt: null,
    armed: false,

    take() {
      const out = { frames: this.frames, unreadable: this.unreadable };
      this.frames = [];
      this.unreadable = 0;
      return out;
    },

    arm() {
      this.acceptAt = this.decodedAt = this.presentedAt = this.brightAt = null;
      this.armed = true;
    },

    timings() {
      return {
        acceptAt: this.acceptAt,
        decodedAt: this.decodedAt,
        presentedAt: this.presentedAt,
        brightAt: this.brightAt,
      };
    },

    watchPattern(id) {
      const video = document.getElementById(id);
      const width = 640;
      const height = 360;
      const canvas = document.createElement("canvas");
      canvas.width = width;
      canvas.height = height;
      const g = canvas.getContext("2d", { willReadFrequently: true });
      const band = Math.ceil((5 * height) / 24) + 1;
      const onFrame = () => {
        const now = Date.now();
        video.requestVideoFrameCallback(onFrame);
        if (this.armed && this.acceptAt !== null && this.presentedAt === null) {
          this.presentedAt = now;
        }
        g.drawImage(video, 0, 0, width, height);
        const data = g.getImageData(0, 0, width, band).data;
        const stamp = readValue(data, width, height, 2);
        const counter = readValue(data, width, height, 0);
        if (stamp === null || counter === null) {
          this.unreadable += 1;
          return;
        }
        const latency = (((now % TWO32) - stamp) % TWO32 + TWO32) % TWO32;
        this.frames.push([latency, counter, video.videoWidth, video.videoHeight]);
      };
      video.requestVideoFrameCallback(onFrame);
    },

    watchBright(id) {
      const video = document.getElementById(id);
      const canvas = document.createElement("canvas");
      canvas.width = 32;
      canvas.height = 18;
      const g = canvas.getContext("2d", { willReadFrequently: true });
      const onFrame = () => {
        const now = Date.now();
        video.requestVideoFrameCallback(onFrame);
        if (!this.armed || this.brightAt !== null) return;
        g.drawImage(video, 0, 0, 32, 18);
        const data = g.getImageData(0, 0, 32, 18).data;
        let sum = 0;
        for (let i = 0; i < data.length; i += 4) sum += data[i] + data[i + 1] + data[i + 2];
        if (sum / (data.length / 4) / 3 > 20) this.brightAt = now;
      };
      video.requestVideoFrameCallback(onFrame);
    },

    async pollDecoded() {
      const deadline = Date.now() + 15000;
      while (this.decodedAt === null && Date.now() < deadline) {
        const live = peers.filter((pc) => pc.connectionState !== "closed");
        const pc = live[live.length - 1];
        if (pc) {
          let frames = 0;
          (await pc.getStats()).forEach((s) => {
            if (s.type === "inbound-rtp" && s.kind === "video") frames += s.framesDecoded || 0;
          });
          if (frames > 0) {
            this.decodedAt = Date.now();
            return;
          }
        }
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    },
  };

  // cellMean per pattern.py: the central half of cell i in band row r
  function cellMean(data, w, h, i, row) {
    const x0 = Math.round(((2 + i + 0.25) * w) / 36);
    const x1 = Math.max(Math.round(((2 + i + 0.75) * w) / 36), x0 + 1);
    const y0 = Math.round(((1 + row + 0.25) * h) / 24);
    const y1 = Math.max(Math.round(((1 + row + 0.75) * h) / 24), y0 + 1);
    let sum = 0;
    for (let y = y0; y < y1; y++) {
      for (let x = x0; x < x1; x++) {
        const k = (y * w + x) * 4;
        sum += data[k] + data[k + 1] + data[k + 2];
      }
    }
    return sum / ((x1 - x0) * (y1 - y0) * 3);
  }

  function readValue(data, w, h, row) {
    let value = 0;
    for (let i = 0; i < 32; i++) {
      const upper = cellMean(data, w, h, i, row);
      const lower = cellMean(data, w, h, i, row + 1);
      if (Math.abs(upper - lower) < 64) return null;
      value = value * 2 + (upper > lower ? 1 : 0);
    }
    return value;
  }

  document.addEventListener(
    "click",
    (event) => {
      const button = event.target instanceof Element ? event.target.closest("button") : null;
      if (bench.armed && button && button.classList.contains("accept")) {
        bench.acceptAt = Date.now();
        bench.pollDecoded();
      }
    },
    true,
  );
  window.__bench = bench;
})();
