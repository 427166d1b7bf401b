// A real FHIR R4 server for the test suite: Medplum's FhirRouter over an in-memory repository.
//
//   node server.mjs [PORT] [--no-profiles]
//
// PORT (or MEDPLUM_PEER_PORT): 0, the default, picks a free port. --no-profiles (or
// MEDPLUM_PEER_PROFILES=off) checks base R4 only, not the vital-signs profiles: for throughput
// benchmarks, where profile checks would make the peer the bottleneck (definitions.mjs).
//
// Listens on 127.0.0.1 only. Prints exactly one line on stdout once it accepts requests,
// "listening PORT", and nothing else there; logs go to stderr. SIGTERM or SIGINT stops it:
// no new connections, in-flight requests finish (at most 5 s), exit code 0.

import { createServer } from 'node:http';
import { WebSocket } from 'ws';

// @medplum/core needs a global WebSocket when it loads, and Node 20 has none: set it before
// anything imports Medplum (hence the dynamic import below).
globalThis.WebSocket ??= WebSocket;

const HOST = '127.0.0.1';
const STOP_GRACE_MS = 5000;

const log = (line) => process.stderr.write(`${new Date().toISOString()} ${line}\n`);

function parseArguments(args) {
  const flags = args.filter((arg) => arg.startsWith('--'));
  const positional = args.filter((arg) => !arg.startsWith('--'));
  const unknown = flags.filter((flag) => flag !== '--no-profiles');
  const raw = positional[0] ?? process.env.MEDPLUM_PEER_PORT ?? '0';
  const port = Number(raw);
  if (unknown.length > 0 || positional.length > 1 || !Number.isInteger(port) || port < 0 || port > 65535) {
    log(`usage: node server.mjs [PORT] [--no-profiles]; got: ${args.join(' ')}`);
    process.exit(2);
  }
  const checkProfiles = !flags.includes('--no-profiles') && process.env.MEDPLUM_PEER_PROFILES !== 'off';
  return { port, checkProfiles };
}

const { port, checkProfiles } = parseArguments(process.argv.slice(2));
const started = performance.now();
const { createPeer } = await import('./app.mjs');
const handle = createPeer({ log, checkProfiles });
const server = createServer((req, res) => {
  handle(req, res).catch((err) => {
    log(`error: ${err?.stack ?? err}`);
    res.destroy();
  });
});

server.on('error', (err) => {
  log(`cannot listen on ${HOST}:${port}: ${err.message}`);
  process.exit(1);
});

server.listen(port, HOST, () => {
  const actual = server.address().port;
  const profiles = checkProfiles ? 'base R4 and vital-signs profiles' : 'base R4 only';
  log(`ready in ${(performance.now() - started).toFixed(0)}ms on http://${HOST}:${actual}/fhir (validating ${profiles})`);
  process.stdout.write(`listening ${actual}\n`);
});

let stopping = false;
function stop(signal) {
  if (stopping) {
    return;
  }
  stopping = true;
  log(`${signal}: stopping`);
  server.close(() => {
    log('stopped');
    process.exit(0);
  });
  server.closeIdleConnections();
  setTimeout(() => {
    log(`requests still running after ${STOP_GRACE_MS}ms: closing their connections`);
    server.closeAllConnections();
  }, STOP_GRACE_MS).unref();
}

process.on('SIGTERM', () => stop('SIGTERM'));
process.on('SIGINT', () => stop('SIGINT'));
