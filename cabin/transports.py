"""How the cabin reaches each hospital: a directory sink or a FHIR server (with SMART auth).

``file:///dir`` base URLs give the NDJSON directory sink (the demo needs no server);
``http(s)://`` base URLs give the aiohttp FHIR client, with SMART Backend Services tokens when
the hospital is configured for them and its own CA bundle when it has one.
"""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import AsyncIterator, Sequence

import aiohttp

from fhir.client import FhirClient
from fhir.config import HospitalConfig
from fhir.sink import DirectorySink
from fhir.smart import TokenSource
from fhir.transport import BundleTransport


@contextlib.asynccontextmanager
async def open_transports(
    hospitals: Sequence[HospitalConfig],
) -> AsyncIterator[dict[str, BundleTransport]]:
    """One transport per hospital, sharing one HTTP session closed on exit."""
    async with aiohttp.ClientSession() as session:
        transports: dict[str, BundleTransport] = {}
        for hospital in hospitals:
            transports[hospital.id] = transport_for(hospital, session)
        yield transports


def transport_for(hospital: HospitalConfig, session: aiohttp.ClientSession) -> BundleTransport:
    if hospital.base_url.startswith("file:"):
        return DirectorySink.from_url(hospital.base_url, hospital_id=hospital.id)
    return client_for(hospital, session)


def client_for(hospital: HospitalConfig, session: aiohttp.ClientSession) -> FhirClient:
    """The FHIR client for an ``http(s)://`` hospital."""
    context = None
    if hospital.ca_file is not None:
        context = ssl.create_default_context(cafile=str(hospital.ca_file))
    tokens = None
    if hospital.smart is not None:
        tokens = TokenSource(
            hospital.smart, session=session, verify_tls=context or hospital.verify_tls
        )
    return FhirClient(
        hospital.base_url,
        session=session,
        token_source=tokens,
        verify_tls=hospital.verify_tls,
        ssl_context=context,
        timeout=hospital.timeout,
    )
