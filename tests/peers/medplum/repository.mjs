// Medplum's in-memory repository, with validation on every write, transactions that roll back
// and an index for searches by identifier.
//
// MemoryRepository validates nothing, its withTransaction() does not roll back (a transaction
// refused at its third entry would keep the first two), and it answers every search by
// evaluating FHIRPath on every stored resource. This subclass:
//   - validates every resource it is asked to create or update: create, update, patch,
//     conditional create and update, each entry of a batch or transaction (the router sends
//     them all through createResource or conditionalCreate);
//   - during a transaction, notes the prior state of each resource it writes (an undo journal)
//     and puts those back if the transaction throws;
//   - keeps an index of identifier system|value per resource type, and answers a search that
//     is exactly `identifier=system|value` from it (case-insensitive, as MemoryRepository's
//     own token search is). That is the search behind every conditional
//     create the cabin sends; without the index each one costs time in proportion to all the
//     Observations stored, and a drain of a few hundred visits slows to a crawl.
//   - can dump everything it holds as plain JSON (snapshot) and start again from such a dump
//     (restore): current resources and every stored version. The identifier index is not in
//     the dump; restore rebuilds it from the resources. server.mjs --state uses these.
// Callers must not run two requests at once against it (app.mjs serialises them).
//
// The journal and the index read MemoryRepository's `resources` and `history` maps, which are
// private in TypeScript but plain properties at run time. That is tied to the exact version
// pinned in package-lock.json, so the constructor checks the maps are there.

import { OperationOutcomeError, Operator, allOk, badRequest, created, deepClone, multipleMatches } from '@medplum/core';
import { MemoryRepository } from '@medplum/fhir-router';

/** Marks a snapshot() dump; restore() refuses anything else. */
const SNAPSHOT_FORMAT = 'medplum-peer-state/1';

export class ValidatingRepository extends MemoryRepository {
  #validate;
  /** @type {Map<string, { resourceType: string, id: string, resource: object | undefined, versions: object[] | undefined }> | undefined} */
  #journal;
  /** `${resourceType}|${system}|${value}` → ids of the current resources carrying that identifier */
  #idsByIdentifier = new Map();
  /** `${resourceType}/${id}` → the index keys it is filed under */
  #identifierKeysByResource = new Map();

  /** @param {(resource: object) => void} validate throws OperationOutcomeError for a refused resource */
  constructor(validate) {
    super();
    if (!(this.resources instanceof Map) || !(this.history instanceof Map)) {
      throw new Error('MemoryRepository no longer keeps `resources` and `history` maps: rollback and index need updating');
    }
    this.#validate = validate;
  }

  async createResource(resource, options, update = false) {
    this.#validate(resource);
    return this.#store(resource, options, update);
  }

  async conditionalCreate(resource, search, options) {
    // A resend that matches an existing resource is validated too: what a client sends is
    // judged the same way each time.
    this.#validate(resource);
    const matches = await this.searchResources({ ...search, count: 2, sortRules: undefined });
    if (matches.length > 1) {
      throw new OperationOutcomeError(multipleMatches);
    }
    if (matches.length === 1) {
      if (!options?.assignedId && resource.id && resource.id !== matches[0].id) {
        throw new OperationOutcomeError(badRequest('Resource ID did not match resolved ID', `${resource.resourceType}.id`));
      }
      return { resource: matches[0], outcome: allOk };
    }
    return { resource: await this.#store(resource, options, false), outcome: created };
  }

  async deleteResource(resourceType, id, options) {
    this.#note(resourceType, id);
    await super.deleteResource(resourceType, id, options);
    this.#reindex(resourceType, id);
  }

  async expungeResources(resourceType, ids) {
    for (const id of ids) {
      this.#note(resourceType, id);
    }
    await super.expungeResources(resourceType, ids);
    for (const id of ids) {
      this.#reindex(resourceType, id);
    }
  }

  clear() {
    super.clear();
    this.#idsByIdentifier.clear();
    this.#identifierKeysByResource.clear();
  }

  async search(searchRequest, options) {
    const key = identifierSearchKey(searchRequest);
    if (key === undefined) {
      return super.search(searchRequest, options);
    }
    const ids = [...(this.#idsByIdentifier.get(key) ?? [])];
    const offset = searchRequest.offset ?? 0;
    const page = ids.slice(offset, searchRequest.count === undefined ? undefined : offset + searchRequest.count);
    const stored = this.resources.get(searchRequest.resourceType);
    return {
      resourceType: 'Bundle',
      type: 'searchset',
      entry: page.length ? page.map((id) => ({ search: { mode: 'match' }, resource: deepClone(stored.get(id)) })) : undefined,
      total: ids.length,
    };
  }

  async withTransaction(callback) {
    if (this.#journal) {
      return callback(this);
    }
    this.#journal = new Map();
    try {
      return await callback(this);
    } catch (err) {
      this.#undo(this.#journal);
      throw err;
    } finally {
      this.#journal = undefined;
    }
  }

  /**
   * Everything stored, as plain JSON: `resources` (type → id → current version) and `history`
   * (type → id → every version). It shares the stored objects: serialise it before the next
   * write. Not to be called during a transaction.
   */
  snapshot() {
    if (this.#journal) {
      throw new Error('snapshot() during a transaction');
    }
    const dump = (byType) => Object.fromEntries([...byType].map(([resourceType, byId]) => [resourceType, Object.fromEntries(byId)]));
    return { format: SNAPSHOT_FORMAT, resources: dump(this.resources), history: dump(this.history) };
  }

  /** Replaces everything stored with a snapshot() dump and rebuilds the identifier index. */
  restore(dump) {
    if (this.#journal) {
      throw new Error('restore() during a transaction');
    }
    if (dump?.format !== SNAPSHOT_FORMAT || !isObject(dump.resources) || !isObject(dump.history)) {
      throw new Error(`not a peer state dump (format ${SNAPSHOT_FORMAT})`);
    }
    this.clear();
    for (const [byType, dumped] of [
      [this.resources, dump.resources],
      [this.history, dump.history],
    ]) {
      for (const [resourceType, byId] of Object.entries(dumped)) {
        if (!isObject(byId)) {
          throw new Error(`peer state dump: ${resourceType} is not an object of resources by id`);
        }
        byType.set(resourceType, new Map(Object.entries(byId)));
      }
    }
    for (const [resourceType, byId] of this.resources) {
      for (const id of byId.keys()) {
        this.#reindex(resourceType, id);
      }
    }
  }

  /** @returns {Record<string, number>} how many current resources of each type are stored */
  countByType() {
    const counts = {};
    for (const [resourceType, byId] of this.resources) {
      if (byId.size > 0) {
        counts[resourceType] = byId.size;
      }
    }
    return counts;
  }

  async #store(resource, options, update) {
    this.#note(resource.resourceType, resource.id);
    const stored = await super.createResource(resource, options, update);
    this.#note(stored.resourceType, stored.id, { isNew: true });
    this.#reindex(stored.resourceType, stored.id);
    return stored;
  }

  /**
   * Inside a transaction, remembers how a resource was before its first write. A resource whose
   * id is only known after the write (`isNew`) and that was not noted before did not exist.
   */
  #note(resourceType, id, { isNew = false } = {}) {
    const key = `${resourceType}/${id}`;
    if (!this.#journal || !id || this.#journal.has(key)) {
      return;
    }
    this.#journal.set(key, {
      resourceType,
      id,
      resource: isNew ? undefined : this.resources.get(resourceType)?.get(id),
      // Stored versions are never changed in place, so a copy of the list is enough.
      versions: isNew ? undefined : this.history.get(resourceType)?.get(id)?.slice(),
    });
  }

  #undo(journal) {
    for (const { resourceType, id, resource, versions } of journal.values()) {
      restoreEntry(this.resources, resourceType, id, resource);
      restoreEntry(this.history, resourceType, id, versions);
      this.#reindex(resourceType, id);
    }
  }

  /** Files the current version of a resource (or nothing, if it is gone) in the identifier index. */
  #reindex(resourceType, id) {
    const ref = `${resourceType}/${id}`;
    for (const key of this.#identifierKeysByResource.get(ref) ?? []) {
      const ids = this.#idsByIdentifier.get(key);
      ids?.delete(id);
      if (ids?.size === 0) {
        this.#idsByIdentifier.delete(key);
      }
    }
    this.#identifierKeysByResource.delete(ref);

    const current = this.resources.get(resourceType)?.get(id);
    const keys = new Set();
    for (const identifier of Array.isArray(current?.identifier) ? current.identifier : []) {
      if (typeof identifier?.system === 'string' && typeof identifier.value === 'string') {
        keys.add(`${resourceType}|${identifier.system}|${identifier.value}`.toLowerCase());
      }
    }
    for (const key of keys) {
      let ids = this.#idsByIdentifier.get(key);
      if (!ids) {
        ids = new Set();
        this.#idsByIdentifier.set(key, ids);
      }
      ids.add(id);
    }
    if (keys.size > 0) {
      this.#identifierKeysByResource.set(ref, [...keys]);
    }
  }
}

/**
 * The index key for a search that is exactly `identifier=system|value` (one filter, no
 * modifier, no escapes, no alternatives, no _include/_revinclude), else undefined.
 */
function identifierSearchKey(searchRequest) {
  const filters = searchRequest.filters ?? [];
  if (filters.length !== 1 || searchRequest.include || searchRequest.revInclude) {
    return undefined;
  }
  const [{ code, operator, value }] = filters;
  if (code !== 'identifier' || operator !== Operator.EQUALS || typeof value !== 'string' || /[\\,]/.test(value)) {
    return undefined;
  }
  const bar = value.indexOf('|');
  if (bar <= 0 || bar === value.length - 1 || value.indexOf('|', bar + 1) !== -1) {
    return undefined;
  }
  return `${searchRequest.resourceType}|${value}`.toLowerCase();
}

function isObject(value) {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function restoreEntry(byType, resourceType, id, value) {
  let byId = byType.get(resourceType);
  if (value === undefined) {
    byId?.delete(id);
    return;
  }
  if (!byId) {
    byId = new Map();
    byType.set(resourceType, byId);
  }
  byId.set(id, value);
}
