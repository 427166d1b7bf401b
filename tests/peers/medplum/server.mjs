// A real FHIR R4 server for the test suite: Medplum's FhirRouter over an in-memory repository.
//
//   node server.mjs [PORT] [--no-profiles] [--state FILE]
//
// PORT (or MEDPLUM_PEER_PORT): 0, the default, picks a free port. --no-profiles (or
// MEDPLUM_PEER_PROFILES=off) checks base R4 only, not the vital-signs profiles: for throughput
// benchmarks, where profile checks would make the peer the bottleneck (definitions.mjs).
//
// --state FILE keeps the repository across a stop and a start: every stored resource and
// version is loaded from FILE at start (a missing FILE is an empty repository; one that cannot
// be read or parsed stops the start, exit code 1) and written back when SIGTERM or SIGINT stops
// the peer, after the last request: to a temporary file beside it, fsynced, then renamed over
// FILE, so FILE is always a whole dump. Nothing is written before that: a peer that is killed
// (SIGKILL, a crash) loses what it stored since it started. POST /__control/reset empties the
// repository, and so the next dump too.
//
// Listens on 127.0.0.1 only. Prints exactly one line on stdout once it accepts requests,
// "listening PORT", and nothing else there; logs go to stderr. SIGTERM or SIGINT stops it:
// no new connections, in-flight requests finish (at most 5 s), the state is saved, exit code
// 0 (1 if the state could not be saved).

import { constants } from 'node:fs';
import { access, open, readFile, rename, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import { dirname } from 'node:path';
import { WebSocket } from 'ws';

// @medplum/core needs a global WebSocket when it loads, and Node 20 has none: set it before
// anything imports Medplum (hence the dynamic import below).
globalThis.WebSocket ??= WebSocket;

const HOST = '127.0.0.1';
const STOP_GRACE_MS = 5000;

const log = (line) => process.stderr.write(`${new Date().toISOString()} ${line}\n`);

function parseArguments(args) {
  const usage = 'usage: node server.mjs [PORT] [--no-profiles] [--state FILE]';
  const positional = [];
  let checkProfiles = process.env.MEDPLUM_PEER_PROFILES !== 'off';
  let statePath;
  for (let i = 0; i < args.length; i += 1) {
    if (args[i] === '--no-profiles') {
      checkProfiles = false;
    } else if (args[i] === '--state' && i + 1 < args.length && args[i + 1] !== '' && !args[i + 1].startsWith('--')) {
      statePath = args[++i];
    } else if (args[i].startsWith('--')) {
      log(`${usage}; got: ${args.join(' ')}`);
      process.exit(2);
    } else {
      positional.push(args[i]);
    }
  }
  const raw = positional[0] ?? process.env.MEDPLUM_PEER_PORT ?? '0';
  const port = Number(raw);
  if (positional.length > 1 || !Number.isInteger(port) || port < 0 || port > 65535) {
    log(`${usage}; got: ${args.join(' ')}`);
    process.exit(2);
  }
  return { port, checkProfiles, statePath };
}

/** The dump in `path`, or undefined if there is no such file; exits (1) if it cannot be used. */
async function loadState(path) {
  try {
    // Fail now, not at the stop, if the dump could never be written.
    await access(dirname(path), constants.W_OK);
    return JSON.parse(await readFile(path, 'utf8'));
  } catch (err) {
    if (err?.code === 'ENOENT' && err.path === path) {
      return undefined;
    }
    log(`cannot use the state file ${path}: ${err?.message ?? err}`);
    process.exit(1);
  }
}

/** Writes `json` to `path` whole or not at all: a temporary file, fsync, rename, fsync the directory. */
async function saveState(path, json) {
  const temporary = `${path}.${process.pid}.tmp`;
  try {
    const file = await open(temporary, 'w', 0o600);
    try {
      await file.writeFile(json);
      await file.sync();
    } finally {
      await file.close();
    }
    await rename(temporary, path);
  } catch (err) {
    await rm(temporary, { force: true });
    throw err;
  }
  const directory = await open(dirname(path), 'r');
  try {
    await directory.sync();
  } finally {
    await directory.close();
  }
}

const { port, checkProfiles, statePath } = parseArguments(process.argv.slice(2));
const started = performance.now();
const state = statePath === undefined ? undefined : await loadState(statePath);
const { createPeer } = await import('./app.mjs');
let peer;
try {
  peer = createPeer({ log, checkProfiles, state });
} catch (err) {
  log(`cannot start: ${err?.stack ?? err}`);
  process.exit(1);
}
const server = createServer((req, res) => {
  peer.handle(req, res).catch((err) => {
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
  server.close(async () => {
    if (statePath !== undefined) {
      try {
        const { json, resources } = await peer.snapshot();
        await saveState(statePath, json);
        log(`saved ${resources} resources to ${statePath}`);
      } catch (err) {
        log(`cannot save the state to ${statePath}: ${err?.stack ?? err}`);
        process.exit(1);
      }
    }
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
