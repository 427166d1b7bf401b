// HTTP handling of the peer: the FHIR REST API under /fhir and a small control API for tests.
//
//   /fhir/...               FhirRouter over a ValidatingRepository; GET /fhir/metadata answers
//                           the CapabilityStatement. Requests run one at a time. Conditional
//                           creates in a transaction are resolved first (transaction.mjs).
//   POST /__control/fail    ?count=N&status=503[&retry_after=S]: the next N FHIR requests get
//                           that status (with Retry-After: S if given) and are not processed
//   POST /__control/slow    ?count=N&ms=M: the next N FHIR requests wait M ms first
//   POST /__control/reset   empties the repository and clears counters and injected faults
//   GET  /__control/stats   {"requests", "statuses", "injected", "pending_failures",
//                            "pending_delays", "profiles_checked",
//                            "resources": {"Patient": 1, ...}}
//
// Control requests are not counted in the stats. One line per request goes to the log:
// method, path (no query: it may hold identifiers), status, milliseconds.

import {
  OperationOutcomeError,
  badRequest,
  contentTooLarge,
  getReferenceString,
  getStatus,
  notFound,
  serverError,
  unsupportedMediaType,
} from '@medplum/core';
import { FhirRouter } from '@medplum/fhir-router';
import { capabilityStatementFor } from './capability.mjs';
import { loadDefinitions } from './definitions.mjs';
import { ValidatingRepository } from './repository.mjs';
import { resolveConditionalCreates } from './transaction.mjs';

const FHIR_BASE = '/fhir';
const CONTROL_BASE = '/__control/';
const FHIR_JSON = 'application/fhir+json; charset=utf-8';
const MAX_BODY_BYTES = 32 * 1024 * 1024;
const ROUTED_METHODS = new Set(['GET', 'POST', 'PUT', 'PATCH', 'DELETE']);
const JSON_MEDIA_TYPES = new Set(['application/fhir+json', 'application/json', 'application/json-patch+json']);
const FORM_MEDIA_TYPE = 'application/x-www-form-urlencoded';

/**
 * Loads the definitions and builds the request handler, over a repository that starts empty or
 * from `state` (a dump that `snapshot` made earlier, e.g. in another process).
 * @param {{ log: (line: string) => void, checkProfiles: boolean, state?: object }} options
 * @returns {{
 *   handle: (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => Promise<void>,
 *   snapshot: () => Promise<{ json: string, resources: number }>,
 * }} `snapshot` dumps the repository as JSON once the requests before it are done
 */
export function createPeer({ log, checkProfiles, state: initialState }) {
  const definitions = loadDefinitions({ checkProfiles });
  const repo = new ValidatingRepository(definitions.validate);
  if (initialState !== undefined) {
    repo.restore(initialState);
    log(`restored ${countResources(repo)} resources`);
  }
  const router = new FhirRouter();
  const capabilityStatement = capabilityStatementFor({
    resourceTypes: definitions.resourceTypes,
    searchParameters: definitions.searchParameters,
    profileUrls: checkProfiles ? [...new Set(definitions.profileUrlsByLoinc.values())] : [],
  });
  definitions.validate(capabilityStatement('http://127.0.0.1/fhir'));

  const resourceTypes = new Set(definitions.resourceTypes);
  const state = newControlState();
  const runAlone = serialiser();

  async function handleFhir(req, res, url) {
    state.requests += 1;
    const body = await readBody(req);
    if (state.failures.remaining > 0) {
      state.failures.remaining -= 1;
      state.injected += 1;
      const { status, retryAfter } = state.failures;
      const headers = retryAfter === undefined ? {} : { 'Retry-After': String(retryAfter) };
      return sendFhir(res, status, injectedOutcome(status), headers);
    }
    if (state.delays.remaining > 0) {
      state.delays.remaining -= 1;
      await new Promise((resolve) => setTimeout(resolve, state.delays.ms));
    }

    const base = `http://${req.headers.host ?? '127.0.0.1'}${FHIR_BASE}`;
    const path = url.pathname.slice(FHIR_BASE.length) || '/';
    if (req.method === 'GET' && (path === '/metadata' || path === '/metadata/')) {
      return sendFhir(res, 200, capabilityStatement(base));
    }
    if (!ROUTED_METHODS.has(req.method)) {
      return sendFhir(res, 405, badRequest(`Method ${req.method} is not supported`), { Allow: [...ROUTED_METHODS].join(', ') });
    }

    const [first] = path.split('/').filter(Boolean);
    if (first && !first.startsWith('$') && !first.startsWith('_') && !resourceTypes.has(first)) {
      return sendFhir(res, 404, { ...notFound, issue: [{ ...notFound.issue[0], diagnostics: `Unknown resource type ${first}` }] });
    }
    const parsed = parseBody(req, body, { formAllowed: req.method === 'POST' && path.endsWith('/_search') });
    if (parsed.outcome) {
      return sendFhir(res, getStatus(parsed.outcome), parsed.outcome);
    }
    const fhirRequest = {
      method: req.method,
      url: path + url.search,
      body: parsed.value,
      params: {},
      query: {},
      headers: req.headers,
      // Without this FhirRouter treats a transaction Bundle as a batch.
      config: { transactions: true },
    };
    const isTransaction = req.method === 'POST' && path === '/' && parsed.value?.resourceType === 'Bundle' && parsed.value.type === 'transaction';
    const [outcome, resource] = await runAlone(async () => {
      if (isTransaction) {
        await resolveConditionalCreates(parsed.value, repo, definitions.validate);
      }
      return router.handleRequest(fhirRequest, repo);
    });
    const status = getStatus(outcome);
    return sendFhir(res, status, resource ?? outcome, resourceHeaders(status, resource, base));
  }

  function handleControl(req, res, url) {
    const action = `${req.method} ${url.pathname.slice(CONTROL_BASE.length)}`;
    const query = url.searchParams;
    switch (action) {
      case 'POST fail': {
        const count = intParam(query, 'count', { min: 0 });
        const status = intParam(query, 'status', { min: 400, max: 599, fallback: 503 });
        const retryAfter = query.has('retry_after') ? intParam(query, 'retry_after', { min: 0 }) : undefined;
        state.failures = { remaining: count, status, retryAfter };
        return sendJson(res, 200, { remaining: count, status, retry_after: retryAfter ?? null });
      }
      case 'POST slow': {
        const count = intParam(query, 'count', { min: 0 });
        const ms = intParam(query, 'ms', { min: 0, max: 600_000 });
        state.delays = { remaining: count, ms };
        return sendJson(res, 200, { remaining: count, ms });
      }
      case 'POST reset':
        return runAlone(async () => {
          repo.clear();
          Object.assign(state, newControlState());
          sendJson(res, 200, { reset: true });
        });
      case 'GET stats':
        return sendJson(res, 200, {
          requests: state.requests,
          statuses: state.statuses,
          injected: state.injected,
          pending_failures: state.failures.remaining,
          pending_delays: state.delays.remaining,
          profiles_checked: checkProfiles,
          resources: repo.countByType(),
        });
      default:
        return sendJson(res, 404, { error: `no control action ${action}` });
    }
  }

  async function handle(req, res) {
    const started = performance.now();
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const isFhir = url.pathname === FHIR_BASE || url.pathname.startsWith(`${FHIR_BASE}/`);
    res.on('finish', () => {
      if (isFhir) {
        state.statuses[res.statusCode] = (state.statuses[res.statusCode] ?? 0) + 1;
      }
      log(`${req.method} ${url.pathname} ${res.statusCode} ${(performance.now() - started).toFixed(1)}ms`);
    });
    try {
      if (isFhir) {
        await handleFhir(req, res, url);
      } else if (url.pathname.startsWith(CONTROL_BASE)) {
        await handleControl(req, res, url);
      } else {
        sendFhir(res, 404, notFound);
      }
    } catch (err) {
      const outcome = err instanceof OperationOutcomeError ? err.outcome : serverError(err);
      if (!(err instanceof OperationOutcomeError)) {
        log(`error: ${err?.stack ?? err}`);
      }
      if (!res.headersSent) {
        sendFhir(res, getStatus(outcome), outcome);
      } else {
        res.destroy();
      }
    }
  }

  function snapshot() {
    return runAlone(async () => ({ json: JSON.stringify(repo.snapshot()), resources: countResources(repo) }));
  }

  return { handle, snapshot };
}

/** @returns {number} how many current resources the repository holds */
function countResources(repo) {
  return Object.values(repo.countByType()).reduce((sum, n) => sum + n, 0);
}

function newControlState() {
  return {
    requests: 0,
    statuses: {},
    injected: 0,
    failures: { remaining: 0, status: 503, retryAfter: undefined },
    delays: { remaining: 0, ms: 0 },
  };
}

/** Runs the functions it is given one after another, in the order they were given. */
function serialiser() {
  let tail = Promise.resolve();
  return (fn) => {
    const run = tail.then(fn, fn);
    tail = run.catch(() => undefined);
    return run;
  };
}

async function readBody(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) {
      throw new OperationOutcomeError(contentTooLarge);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/** @returns {{ value?: unknown, outcome?: object }} the parsed body, or why it cannot be used */
function parseBody(req, body, { formAllowed }) {
  if (body.length === 0) {
    if (req.method === 'POST' || req.method === 'PUT' || req.method === 'PATCH') {
      return { outcome: badRequest('The request has no body') };
    }
    return { value: undefined };
  }
  const mediaType = (req.headers['content-type'] ?? 'application/fhir+json').split(';')[0].trim().toLowerCase();
  if (mediaType === FORM_MEDIA_TYPE && formAllowed) {
    const form = {};
    for (const [name, value] of new URLSearchParams(body.toString('utf8'))) {
      form[name] = name in form ? [form[name], value].flat() : value;
    }
    return { value: form };
  }
  if (!JSON_MEDIA_TYPES.has(mediaType)) {
    return { outcome: { ...unsupportedMediaType, issue: [{ ...unsupportedMediaType.issue[0], diagnostics: `Content-Type ${mediaType}: only JSON is accepted` }] } };
  }
  try {
    return { value: JSON.parse(body.toString('utf8')) };
  } catch (err) {
    return { outcome: badRequest(`The body is not valid JSON: ${err.message}`) };
  }
}

function resourceHeaders(status, resource, base) {
  const versionId = resource?.meta?.versionId;
  if (!resource?.id || !versionId || resource.resourceType === 'Bundle' || resource.resourceType === 'OperationOutcome') {
    return {};
  }
  const headers = { ETag: `W/"${versionId}"` };
  if (resource.meta.lastUpdated) {
    headers['Last-Modified'] = new Date(resource.meta.lastUpdated).toUTCString();
  }
  if (status === 201) {
    headers.Location = `${base}/${getReferenceString(resource)}/_history/${versionId}`;
  }
  return headers;
}

function injectedOutcome(status) {
  return {
    resourceType: 'OperationOutcome',
    issue: [
      {
        severity: 'error',
        code: status === 429 ? 'throttled' : status >= 500 ? 'transient' : 'processing',
        details: { text: `Injected failure (HTTP ${status}) from the test control endpoint` },
      },
    ],
  };
}

function intParam(query, name, { min, max = Number.MAX_SAFE_INTEGER, fallback } = {}) {
  const raw = query.get(name);
  if (raw === null && fallback !== undefined) {
    return fallback;
  }
  const value = Number(raw);
  if (raw === null || raw === '' || !Number.isInteger(value) || value < min || value > max) {
    throw new OperationOutcomeError(badRequest(`Query parameter ${name} must be an integer from ${min} to ${max}`));
  }
  return value;
}

function sendFhir(res, status, resource, headers = {}) {
  send(res, status, FHIR_JSON, resource, headers);
}

function sendJson(res, status, value) {
  send(res, status, 'application/json; charset=utf-8', value, {});
}

function send(res, status, contentType, value, headers) {
  const payload = Buffer.from(JSON.stringify(value));
  res.writeHead(status, { ...headers, 'Content-Type': contentType, 'Content-Length': payload.length });
  res.end(payload);
}
