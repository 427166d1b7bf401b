// The load client of the signaling benchmarks: the same client for our server and for PeerJS.
//
// Started by bench/signaling_*.py. It reads JSON lines on stdin and writes JSON lines on stdout:
//
//   stdin   first line: the job (below); later lines: {"cmd": "close"} (idle jobs)
//   stdout  {"event": "ready", ...}           setup done (pairs in a call / connections open)
//           {"event": "measure-start"}        the measured window opens (after the warm-up)
//           {"event": "measure-end"}          ... and closes
//           {"event": "result", ...}          the numbers; the process exits 0 after it
//           {"event": "failed", "message": s} anything went wrong; exit 1
//
// Jobs:
//   {"mode": "relay", "protocol": "ours" | "peerjs", "url": ..., "pairs": [...] | N,
//    "warmup_s", "duration_s", "window", "setup_batch"}
//       Pair i: side A (the cabin) sends a candidate to B (the doctor), B answers at once with a
//       candidate back, A takes the round trip and sends the next; `window` candidates in flight
//       per pair. For "ours", pairs are [{"cabin": jwt, "doctor": jwt, "hospital": id}]: the
//       doctor signs in and goes available, the cabin signs in and asks for a consultation at
//       that hospital, the doctor accepts, then the loop runs inside the call. For "peerjs",
//       pairs is a count: two peers per pair connect with ids and exchange CANDIDATE messages.
//   {"mode": "accept", "url": ..., "pairs": [...], "concurrency": K, "setup_batch"}
//       Every pair is set up to the point where the cabin is queued; then the doctors accept, K at
//       a time: t0 = the accept is sent, t1 = both the doctor's and the cabin's `call` arrived.
//   {"mode": "idle", "url": ..., "tokens": [jwt, ...], "batch": B}
//       Sign in every token, B at a time, report, then hold the connections until "close".
import { randomBytes } from "node:crypto";
import { createInterface } from "node:readline";
import { performance } from "node:perf_hooks";
import WebSocket from "ws";

const STEP_TIMEOUT_MS = 20000;

function emit(event) {
  process.stdout.write(`${JSON.stringify(event)}\n`);
}

function fail(error) {
  emit({ event: "failed", message: String(error?.stack ?? error) });
  process.exit(1);
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function randomId(bytes = 12) {
  return randomBytes(bytes).toString("base64url");
}

// A realistic trickled ICE candidate (RTCIceCandidateInit, ~150 bytes as JSON). The foundation
// carries the sequence number, zero-padded so every message has the same size.
const CANDIDATE_HEAD = '{"candidate":"candidate:';
const CANDIDATE_TAIL =
  ' 1 udp 2122260223 192.168.1.23 54321 typ host generation 0 ufrag Xy7a network-cost 10","sdpMid":"0","sdpMLineIndex":0}';

function candidateJson(seq) {
  return CANDIDATE_HEAD + String(seq).padStart(10, "0") + CANDIDATE_TAIL;
}

// The sequence number of a relayed candidate, read straight from the frame's bytes ("candidate:"
// occurs only in the candidate line: the keys are quoted); -1 when the frame holds none.
const CANDIDATE_LINE = Buffer.from("candidate:");

function sequenceIn(frame) {
  const at = frame.indexOf(CANDIDATE_LINE);
  if (at < 0) return -1;
  let seq = 0;
  for (let i = at + CANDIDATE_LINE.length, end = i + 10; i < end; i += 1) {
    seq = seq * 10 + frame[i] - 48;
  }
  return seq;
}

function percentile(sorted, q) {
  if (sorted.length === 0) return null;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[index];
}

function summary(samples) {
  const sorted = Float64Array.from(samples).sort();
  return {
    count: sorted.length,
    p50_ms: percentile(sorted, 0.5),
    p99_ms: percentile(sorted, 0.99),
    max_ms: sorted.length ? sorted[sorted.length - 1] : null,
  };
}

// Client options that keep the client's own cost per message low: no compression, no UTF-8
// check of what the server sends, and an all-zero masking key, which ws recognises and skips
// the XOR for (masking protects proxies' caches; this is loopback).
const SOCKET_OPTIONS = {
  perMessageDeflate: false,
  skipUTF8Validation: true,
  generateMask: (mask) => mask.fill(0),
  handshakeTimeout: STEP_TIMEOUT_MS,
};

// One WebSocket with "wait for the next message like this" for the setup steps; the relay
// loop replaces `onFrame` (the raw bytes of each message) with its own handler.
class Socket {
  constructor(url) {
    this.url = url;
    this.waiters = [];
    this.errors = 0;
    this.closed = false;
    this.onFrame = (frame) => this.dispatch(JSON.parse(frame.toString()));
  }

  open() {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(this.url, SOCKET_OPTIONS);
      this.ws = ws;
      ws.on("open", () => resolve(this));
      ws.on("error", (error) => reject(error));
      ws.on("close", () => {
        this.closed = true;
        for (const waiter of this.waiters.splice(0)) {
          clearTimeout(waiter.timer);
          waiter.reject(new Error(`closed while waiting for ${waiter.what}`));
        }
      });
      ws.on("message", (data) => this.onFrame(data));
    });
  }

  send(text) {
    this.ws.send(text);
  }

  dispatch(message) {
    if (message.type === "error" || message.type === "ERROR") this.errors += 1;
    const index = this.waiters.findIndex((waiter) => waiter.match(message));
    if (index >= 0) {
      const [waiter] = this.waiters.splice(index, 1);
      clearTimeout(waiter.timer);
      waiter.resolve(message);
    }
  }

  next(what, match) {
    return new Promise((resolve, reject) => {
      const waiter = { what, match, resolve, reject };
      waiter.timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(waiter), 1);
        reject(new Error(`no ${what} in ${STEP_TIMEOUT_MS} ms from ${this.url}`));
      }, STEP_TIMEOUT_MS);
      this.waiters.push(waiter);
    });
  }

  close() {
    if (!this.closed) this.ws.terminate();
  }
}

// -- our protocol --------------------------------------------------------------------------

function refused(message) {
  return message.type === "error";
}

async function signIn(url, token) {
  const socket = await new Socket(url).open();
  const welcome = socket.next("welcome", (m) => m.type === "welcome" || refused(m));
  socket.send(JSON.stringify({ type: "hello", v: 1, token, client: "bench-loadclient" }));
  const reply = await welcome;
  if (reply.type !== "welcome") {
    throw new Error(`sign-in refused: ${reply.code} ${reply.detail ?? ""}`);
  }
  return socket;
}

async function request(socket, message, replyType) {
  const id = randomId(6);
  const reply = socket.next(replyType, (m) => m.ref === id && (m.type === replyType || refused(m)));
  socket.send(JSON.stringify({ ...message, id }));
  const answer = await reply;
  if (answer.type !== replyType) {
    throw new Error(`${message.type} refused: ${answer.code} ${answer.detail ?? ""}`);
  }
  return answer;
}

// Doctor signed in and available, cabin signed in and queued at the pair's hospital.
async function queuedPair(url, pair) {
  const doctor = await signIn(url, pair.doctor);
  await request(doctor, { type: "presence", status: "available" }, "presence");
  const cabin = await signIn(url, pair.cabin);
  const queued = await request(
    cabin,
    { type: "consult-request", triage: { urgency: "routine", hospital: pair.hospital } },
    "queued",
  );
  return { doctor, cabin, ticket: queued.ticket };
}

// The doctor accepts; resolves with the call id and t1 - t0 in ms.
async function accept(pair) {
  const cabinCall = pair.cabin.next("call", (m) => m.type === "call");
  const id = randomId(6);
  const doctorCall = pair.doctor.next(
    "call",
    (m) => m.ref === id && (m.type === "call" || refused(m)),
  );
  const t0 = performance.now();
  pair.doctor.send(JSON.stringify({ type: "accept", ticket: pair.ticket, id }));
  const [mine, theirs] = await Promise.all([doctorCall, cabinCall]);
  const elapsed = performance.now() - t0;
  if (mine.type !== "call") throw new Error(`accept refused: ${mine.code} ${mine.detail ?? ""}`);
  if (theirs.call !== mine.call) throw new Error("the cabin got another call");
  return { call: mine.call, ms: elapsed };
}

async function inBatches(items, size, work) {
  const out = [];
  for (let start = 0; start < items.length; start += size) {
    out.push(...(await Promise.all(items.slice(start, start + size).map(work))));
  }
  return out;
}

// -- the relay loop (both protocols) -------------------------------------------------------

// A pair as the loop sees it: `a` and `b` sockets, and how to frame a candidate each way.
function oursLink(pair, call) {
  const head = `{"type":"candidate","call":"${call}","candidate":`;
  return { a: pair.cabin, b: pair.doctor, toB: (c) => `${head}${c}}`, toA: (c) => `${head}${c}}` };
}

function peerjsLink(a, aId, b, bId) {
  return {
    a,
    b,
    toB: (c) => `{"type":"CANDIDATE","dst":"${bId}","payload":{"candidate":${c}}}`,
    toA: (c) => `{"type":"CANDIDATE","dst":"${aId}","payload":{"candidate":${c}}}`,
  };
}

async function relayLoop(links, { warmup_s: warmupS, duration_s: durationS, window }) {
  const rtts = [];
  let measuring = false;
  let stopping = false;
  let relayed = 0;
  let unexpected = 0;
  let bytesToB = 0;
  let bytesToA = 0;
  for (const link of links) {
    const sent = new Map();
    let seq = 0;
    const sendNext = () => {
      seq += 1;
      sent.set(seq, performance.now());
      link.a.send(link.toB(candidateJson(seq)));
    };
    const other = (socket, frame) => {
      unexpected += 1;
      socket.dispatch(JSON.parse(frame.toString())); // counts errors
    };
    link.b.onFrame = (frame) => {
      const number = sequenceIn(frame);
      if (number < 0) {
        other(link.b, frame);
        return;
      }
      if (measuring) relayed += 1;
      // answer at once with a candidate carrying the same sequence number
      link.b.send(link.toA(candidateJson(number)));
    };
    link.a.onFrame = (frame) => {
      const now = performance.now();
      const number = sequenceIn(frame);
      if (number < 0) {
        other(link.a, frame);
        return;
      }
      const started = sent.get(number);
      sent.delete(number);
      if (measuring) {
        relayed += 1;
        if (started !== undefined) rtts.push(now - started);
      }
      if (!stopping) sendNext();
    };
    bytesToB = link.toB(candidateJson(0)).length;
    bytesToA = link.toA(candidateJson(0)).length;
    link.start = () => {
      for (let i = 0; i < window; i += 1) sendNext();
    };
  }
  for (const link of links) link.start();
  await sleep(warmupS * 1000);
  measuring = true;
  emit({ event: "measure-start" });
  const t0 = performance.now();
  await sleep(durationS * 1000);
  measuring = false;
  const seconds = (performance.now() - t0) / 1000;
  emit({ event: "measure-end" });
  stopping = true;
  const closedSockets = links.reduce((n, l) => n + (l.a.closed ? 1 : 0) + (l.b.closed ? 1 : 0), 0);
  const errors = links.reduce((n, l) => n + l.a.errors + l.b.errors, 0);
  return {
    pairs: links.length,
    window,
    seconds,
    relayed,
    messages_per_s: relayed / seconds,
    rtt: summary(rtts),
    unexpected,
    errors,
    closed: closedSockets,
    candidate_bytes: candidateJson(0).length,
    frame_bytes: { a_to_server: bytesToB, b_to_server: bytesToA },
  };
}

async function relayOurs(job) {
  const t0 = performance.now();
  const pairs = await inBatches(job.pairs, job.setup_batch, (pair) => queuedPair(job.url, pair));
  const accepted = await inBatches(pairs, job.setup_batch, (pair) => accept(pair));
  const links = pairs.map((pair, i) => oursLink(pair, accepted[i].call));
  emit({ event: "ready", setup_s: (performance.now() - t0) / 1000 });
  return { links, close: () => pairs.forEach((p) => (p.cabin.close(), p.doctor.close())) };
}

async function relayPeerjs(job) {
  const t0 = performance.now();
  const run = randomId(4);
  const ids = Array.from({ length: job.pairs }, (_, i) => [
    `a${run}${i}-${randomId(6)}`,
    `b${run}${i}-${randomId(6)}`,
  ]);
  const sockets = await inBatches(ids, job.setup_batch, async ([aId, bId]) => {
    const [a, b] = await Promise.all([openPeer(job.url, aId), openPeer(job.url, bId)]);
    return { a, b, aId, bId };
  });
  const links = sockets.map((s) => peerjsLink(s.a, s.aId, s.b, s.bId));
  emit({ event: "ready", setup_s: (performance.now() - t0) / 1000 });
  return { links, close: () => sockets.forEach((s) => (s.a.close(), s.b.close())) };
}

// A PeerJS peer: connect with an id and wait for the server's OPEN.
function openPeer(url, id) {
  const socket = new Socket(`${url}?key=peerjs&id=${id}&token=${randomId(8)}`);
  const opened = socket.next(
    "OPEN",
    (m) => m.type === "OPEN" || m.type === "ERROR" || m.type === "ID-TAKEN",
  );
  return socket.open().then(async () => {
    const first = await opened;
    if (first.type !== "OPEN") throw new Error(`peerjs refused ${id}: ${JSON.stringify(first)}`);
    return socket;
  });
}

async function relay(job) {
  const setup = job.protocol === "ours" ? await relayOurs(job) : await relayPeerjs(job);
  const result = await relayLoop(setup.links, job);
  emit({ event: "result", protocol: job.protocol, ...result });
  setup.close();
}

// -- accept latency ------------------------------------------------------------------------

async function acceptLatency(job) {
  const t0 = performance.now();
  const pairs = await inBatches(job.pairs, job.setup_batch, (pair) => queuedPair(job.url, pair));
  emit({ event: "ready", setup_s: (performance.now() - t0) / 1000 });
  await sleep(500); // let the queue pushes of the setup go out
  const timings = await inBatches(pairs, job.concurrency, (pair) => accept(pair));
  const errors = pairs.reduce((n, p) => n + p.cabin.errors + p.doctor.errors, 0);
  emit({
    event: "result",
    concurrency: job.concurrency,
    accept: summary(timings.map((t) => t.ms)),
    errors,
  });
  for (const pair of pairs) {
    pair.cabin.close();
    pair.doctor.close();
  }
}

// -- idle connections ----------------------------------------------------------------------

async function idle(job, commands) {
  const t0 = performance.now();
  let failed = 0;
  const sockets = await inBatches(job.tokens, job.batch, (token) =>
    signIn(job.url, token).catch(() => {
      failed += 1;
      return null;
    }),
  );
  const open = sockets.filter((s) => s !== null);
  emit({ event: "ready", connected: open.length, failed, setup_s: (performance.now() - t0) / 1000 });
  for await (const line of commands) {
    if (JSON.parse(line).cmd === "close") break;
  }
  const still = open.filter((s) => !s.closed).length;
  for (const socket of open) socket.close();
  emit({ event: "result", connected: open.length, still_open: still });
}

// -- main ----------------------------------------------------------------------------------

async function main() {
  const input = createInterface({ input: process.stdin, crlfDelay: Infinity });
  const lines = input[Symbol.asyncIterator]();
  const first = await lines.next();
  if (first.done) throw new Error("no job on stdin");
  const job = JSON.parse(first.value);
  const commands = { [Symbol.asyncIterator]: () => lines };
  if (job.mode === "relay") await relay(job);
  else if (job.mode === "accept") await acceptLatency(job);
  else if (job.mode === "idle") await idle(job, commands);
  else throw new Error(`unknown mode ${job.mode}`);
  process.exit(0);
}

main().catch(fail);
