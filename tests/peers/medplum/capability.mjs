// The peer's CapabilityStatement (GET /fhir/metadata): FHIR 4.0.1, JSON, transaction and batch.
//
// Built once from the indexed definitions and the routes FhirRouter serves; checked against
// base R4 at start-up, like any resource the peer stores.

import { MEDPLUM_VERSION } from '@medplum/core';

// What FhirRouter answers for every resource type (see its constructor).
const TYPE_INTERACTIONS = Object.freeze([
  'read',
  'vread',
  'update',
  'patch',
  'delete',
  'history-instance',
  'create',
  'search-type',
]);

/**
 * @param {{ resourceTypes: string[], searchParameters: object[], profileUrls: string[] }} definitions
 * @returns {(baseUrl: string) => object} the statement for a base URL
 */
export function capabilityStatementFor({ resourceTypes, searchParameters, profileUrls }) {
  const paramsByType = new Map(resourceTypes.map((type) => [type, []]));
  for (const param of searchParameters) {
    for (const base of param.base ?? []) {
      paramsByType.get(base)?.push({ name: param.code, definition: param.url, type: param.type });
    }
  }
  const resources = resourceTypes.map((type) => ({
    type,
    profile: `http://hl7.org/fhir/StructureDefinition/${type}`,
    ...(type === 'Observation' ? { supportedProfile: profileUrls } : {}),
    interaction: TYPE_INTERACTIONS.map((code) => ({ code })),
    versioning: 'versioned',
    readHistory: true,
    updateCreate: true,
    conditionalCreate: true,
    conditionalUpdate: true,
    conditionalDelete: 'single',
    ...(paramsByType.get(type).length ? { searchParam: paramsByType.get(type) } : {}),
  }));
  const date = new Date().toISOString();

  return (baseUrl) => ({
    resourceType: 'CapabilityStatement',
    status: 'active',
    date,
    publisher: 'telehealth cabin test suite',
    kind: 'instance',
    software: { name: 'Medplum FHIR router test peer', version: MEDPLUM_VERSION },
    implementation: {
      description: 'In-memory FHIR R4 server for integration tests; validates base R4 and the HL7 vital-signs profiles',
      url: baseUrl,
    },
    fhirVersion: '4.0.1',
    format: ['json', 'application/fhir+json'],
    patchFormat: ['application/json-patch+json'],
    rest: [
      {
        mode: 'server',
        resource: resources,
        interaction: [{ code: 'transaction' }, { code: 'batch' }, { code: 'search-system' }],
      },
    ],
  });
}
