// Conditional creates in a transaction Bundle, resolved before FhirRouter sees the Bundle.
//
// FhirRouter refuses a transaction that holds a conditional create or update and more than
// 8 entries ("Transaction requires strict isolation but has too many entries"): Medplum's
// server runs such a transaction SERIALIZABLE in Postgres and keeps it short. A visit's bundle
// (Patient, Devices, Encounter, about ten Observations, Provenance, all conditional) is longer,
// and hospital servers in general take it. The peer runs one request at a time, so it can
// resolve each `request.ifNoneExist` itself, isolated, and hand the router a Bundle with no
// conditional entries:
//   - no match:  the entry stays a create, without ifNoneExist;
//   - one match: the entry becomes a read of the match (answered 200 with the existing
//                resource, as a conditional create that matched is), and every reference to
//                its fullUrl in the Bundle becomes a reference to the match; the resource
//                sent is still validated, like any resource sent to the peer;
//   - several:   the whole transaction fails with 412 (multiple matches).
// Two entries with the same condition would both be created, so the Bundle is refused (400).
// Conditional updates and deletes are left to FhirRouter and its 8-entry limit.

import { OperationOutcomeError, badRequest, multipleMatches, parseSearchRequest } from '@medplum/core';

/**
 * @param {object} bundle a transaction Bundle (changed in place)
 * @param {import('./repository.mjs').ValidatingRepository} repo
 * @param {(resource: object) => void} validate
 */
export async function resolveConditionalCreates(bundle, repo, validate) {
  const references = new Map();
  const conditions = new Set();
  for (const [index, entry] of (bundle.entry ?? []).entries()) {
    const request = entry?.request;
    if (request?.method !== 'POST' || !request.ifNoneExist || !entry.resource) {
      continue;
    }
    const resourceType = request.url.replace(/^\/+/, '').split('?')[0];
    const condition = `${resourceType}?${request.ifNoneExist}`;
    if (conditions.has(condition)) {
      throw new OperationOutcomeError(badRequest(`Two entries create ${condition}`, `Bundle.entry[${index}].request.ifNoneExist`));
    }
    conditions.add(condition);

    const search = parseSearchRequest(condition);
    search.count = 2;
    const matches = await repo.searchResources(search);
    if (matches.length > 1) {
      throw new OperationOutcomeError(multipleMatches);
    }
    if (matches.length === 0) {
      delete request.ifNoneExist;
      continue;
    }
    validate(entry.resource);
    const reference = `${matches[0].resourceType}/${matches[0].id}`;
    if (entry.fullUrl) {
      references.set(entry.fullUrl, reference);
    }
    entry.request = { method: 'GET', url: reference };
    delete entry.resource;
  }
  if (references.size > 0) {
    bundle.entry = bundle.entry.map((entry) => replaceReferences(entry, references));
  }
}

function replaceReferences(value, references) {
  if (typeof value === 'string') {
    return references.get(value) ?? value;
  }
  if (Array.isArray(value)) {
    return value.map((item) => replaceReferences(item, references));
  }
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, replaceReferences(item, references)]));
  }
  return value;
}
