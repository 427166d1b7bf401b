// The console's end of a call: an RTCPeerConnection that ANSWERS the cabin's offers.
//
// The cabin is the offerer (docs/signaling.md). We answer, trickle our candidates through
// signaling, and apply every later offer on the same call: an ICE-restart offer renegotiates
// the same peer connection; an offer from a new cabin peer connection (aiortc has no ICE
// restart, so the cabin rebuilds its peer connection to recover) carries a new DTLS
// fingerprint and gets a fresh peer connection of ours. The old one keeps playing until the
// new one is connected (make-before-break, like the cabin), then it is closed.
//
// Events:
//   "remote-stream"  detail MediaStream     the resident's audio and video
//   "channel"        detail RTCDataChannel  the cabin's "vitals" channel
//   "state"          detail connectionState new | connecting | connected | disconnected | failed | closed

export const VITALS_CHANNEL = "vitals";

export class CallPeer extends EventTarget {
  #callId;
  #iceServers;
  #localStream;
  #send;
  #pc = null;
  #retiring = new Set();
  #pending = [];
  #remoteFingerprint = null;
  #busy = Promise.resolve();
  #lossBase = null;

  /**
   * @param {object} options
   * @param {string} options.callId  the call these messages belong to
   * @param {RTCIceServer[]} options.iceServers  from welcome.ice_servers
   * @param {MediaStream|null} options.localStream  the doctor's camera/mic, or null (receive only)
   * @param {(message: object) => void} options.send  sends a signaling message
   */
  constructor({ callId, iceServers, localStream, send }) {
    super();
    this.#callId = callId;
    this.#iceServers = iceServers;
    this.#localStream = localStream;
    this.#send = send;
  }

  get callId() {
    return this.#callId;
  }

  get connectionState() {
    return this.#pc === null ? "new" : this.#pc.connectionState;
  }

  /** Apply an offer from the cabin (the first one, a restart, or one from a new peer). */
  acceptOffer(sdp) {
    // offers are applied one at a time, in the order they arrived
    this.#busy = this.#busy.then(() => this.#acceptOffer(sdp)).catch((error) => {
      console.error("offer could not be applied", error);
      this.dispatchEvent(new CustomEvent("error", { detail: error }));
    });
    return this.#busy;
  }

  /** A candidate relayed from the cabin (null = end of candidates). */
  addCandidate(candidate) {
    this.#busy = this.#busy.then(() => this.#addCandidate(candidate));
    return this.#busy;
  }

  /** New ICE servers (fresh TURN credentials) for this call's next gathering. */
  setIceServers(iceServers) {
    this.#iceServers = iceServers;
    if (this.#pc !== null) {
      try {
        this.#pc.setConfiguration({ ...this.#pc.getConfiguration(), iceServers });
      } catch (error) {
        console.warn("could not update ICE servers", error);
      }
    }
  }

  /** Numbers for the quality line: RTT, packet loss, fps and resolution of the resident's video. */
  async quality() {
    const pc = this.#pc;
    if (pc === null) {
      return null;
    }
    const report = await pc.getStats();
    let pair = null;
    let video = null;
    let received = 0;
    let lost = 0;
    report.forEach((stat) => {
      if (stat.type === "transport" && stat.selectedCandidatePairId) {
        pair = report.get(stat.selectedCandidatePairId) ?? pair;
      } else if (stat.type === "candidate-pair" && stat.nominated && stat.state === "succeeded" && pair === null) {
        pair = stat;
      } else if (stat.type === "inbound-rtp") {
        received += stat.packetsReceived ?? 0;
        lost += Math.max(0, stat.packetsLost ?? 0);
        if (stat.kind === "video") {
          video = stat;
        }
      }
    });
    // loss over the last interval, not since the start of the call
    const base = this.#lossBase ?? { received: 0, lost: 0 };
    this.#lossBase = { received, lost };
    const dReceived = received - base.received;
    const dLost = lost - base.lost;
    return {
      rttMs: pair?.currentRoundTripTime == null ? null : pair.currentRoundTripTime * 1000,
      loss: dReceived + dLost > 0 ? dLost / (dReceived + dLost) : null,
      fps: video?.framesPerSecond ?? null,
      width: video?.frameWidth ?? null,
      height: video?.frameHeight ?? null,
      framesDecoded: video?.framesDecoded ?? 0,
    };
  }

  close() {
    for (const old of this.#retiring) old.close();
    this.#retiring.clear();
    if (this.#pc !== null) {
      this.#pc.close();
      this.#pc = null;
    }
    this.#pending = [];
  }

  async #acceptOffer(sdp) {
    const fingerprint = fingerprintOf(sdp);
    const replace = this.#pc !== null && this.#remoteFingerprint !== null && fingerprint !== this.#remoteFingerprint;
    if (replace || this.#pc === null || this.#pc.signalingState === "closed") {
      this.#replacePeerConnection();
    }
    try {
      await this.#answer(sdp);
    } catch (error) {
      // an offer the old connection cannot take (e.g. changed m-lines): start afresh once
      if (this.#pc.remoteDescription === null) {
        throw error;
      }
      console.warn("renegotiation failed; replacing the peer connection", error);
      this.#replacePeerConnection();
      await this.#answer(sdp);
    }
    this.#remoteFingerprint = fingerprint;
  }

  async #answer(sdp) {
    const pc = this.#pc;
    await pc.setRemoteDescription({ type: "offer", sdp });
    this.#attachLocalMedia(pc);
    await pc.setLocalDescription(await pc.createAnswer());
    this.#send({ type: "answer", call: this.#callId, sdp: pc.localDescription.sdp });
    const pending = this.#pending;
    this.#pending = [];
    for (const candidate of pending) {
      await this.#addCandidate(candidate);
    }
  }

  #attachLocalMedia(pc) {
    const tracks = this.#localStream === null ? [] : this.#localStream.getTracks();
    for (const track of tracks) {
      if (!pc.getSenders().some((sender) => sender.track === track)) {
        pc.addTrack(track, this.#localStream); // re-uses the transceiver the offer created
      }
    }
    for (const transceiver of pc.getTransceivers()) {
      if (transceiver.sender.track === null && transceiver.direction !== "inactive") {
        transceiver.direction = "recvonly"; // no camera or microphone: receive only
      }
    }
  }

  async #addCandidate(candidate) {
    const pc = this.#pc;
    if (pc === null || pc.remoteDescription === null) {
      this.#pending.push(candidate);
      return;
    }
    try {
      await pc.addIceCandidate(candidate === null ? null : candidate);
    } catch (error) {
      // a late candidate of a replaced connection, or one for a finished generation
      console.debug("candidate ignored", error);
    }
  }

  #replacePeerConnection() {
    const old = this.#pc;
    if (old !== null && old.connectionState === "connected") {
      this.#retiring.add(old); // keeps playing until the new one is up (at most 15 s)
      setTimeout(() => this.#retire(old), 15_000);
    } else if (old !== null) {
      old.close();
    }
    this.#remoteFingerprint = null;
    this.#lossBase = null;
    const pc = new RTCPeerConnection({ iceServers: this.#iceServers, bundlePolicy: "max-bundle" });
    this.#pc = pc;
    const remote = new MediaStream();
    const showRemote = () => this.dispatchEvent(new CustomEvent("remote-stream", { detail: remote }));
    pc.addEventListener("icecandidate", (event) => {
      if (pc !== this.#pc) {
        return;
      }
      const candidate = event.candidate && event.candidate.candidate ? event.candidate.toJSON() : null;
      this.#send({ type: "candidate", call: this.#callId, candidate });
    });
    pc.addEventListener("track", (event) => {
      for (const stale of remote.getTracks().filter((t) => t.kind === event.track.kind)) {
        remote.removeTrack(stale);
      }
      remote.addTrack(event.track);
      if (pc === this.#pc && this.#retiring.size === 0) {
        showRemote();
      }
    });
    pc.addEventListener("datachannel", (event) => {
      if (pc === this.#pc && event.channel.label === VITALS_CHANNEL) {
        this.dispatchEvent(new CustomEvent("channel", { detail: event.channel }));
      }
    });
    pc.addEventListener("connectionstatechange", () => {
      if (pc !== this.#pc) {
        return;
      }
      if (pc.connectionState === "connected") {
        for (const retiring of [...this.#retiring]) this.#retire(retiring);
        showRemote();
      }
      this.dispatchEvent(new CustomEvent("state", { detail: pc.connectionState }));
    });
  }

  #retire(pc) {
    if (this.#retiring.delete(pc)) {
      pc.close();
    }
  }
}

/** The DTLS fingerprint of an SDP (the first one; the cabin uses one certificate). */
export function fingerprintOf(sdp) {
  const match = /^a=fingerprint:(.+)$/m.exec(sdp);
  return match === null ? null : match[1].trim().toLowerCase();
}
