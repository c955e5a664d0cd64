"""What the API says about itself: the CapabilityStatement (/metadata) and SMART's discovery document
(/.well-known/smart-configuration), both stating only what is implemented."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from backend.fhir.clients import ALGORITHMS
from backend.fhir.params import SUPPORTED
from backend.fhir.scopes import RESOURCE_TYPES
from backend.fhir.wire import instant

FHIR_VERSION = "4.0.1"
WRITABLE = ("Patient", "Encounter")
SEARCH_TYPES = {
    "_id": "token",
    "identifier": "token",
    "patient": "reference",
    "subject": "reference",
    "date": "date",
    "status": "token",
    "_lastUpdated": "date",
}


def _resource(resource_type: str) -> dict[str, Any]:
    interactions = ["read", "search-type"] + (["create", "update"] if resource_type in WRITABLE else [])
    entry: dict[str, Any] = {
        "type": resource_type,
        "interaction": [{"code": code} for code in interactions],
        "searchParam": [
            {"name": name, "type": SEARCH_TYPES[name]} for name in sorted(SUPPORTED[resource_type])
        ],
    }
    if resource_type in WRITABLE:
        entry.update(
            versioning="versioned-update",
            readHistory=False,
            updateCreate=False,
            conditionalCreate=True,
            conditionalUpdate=True,
            conditionalDelete="not-supported",
        )
    return entry


def capability_statement(base_url: str, published: datetime) -> dict[str, Any]:
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": instant(published),
        "kind": "instance",
        "software": {"name": "CareLoop"},
        "implementation": {"description": "CareLoop FHIR R4 API", "url": base_url},
        "fhirVersion": FHIR_VERSION,
        "format": ["application/fhir+json", "json"],
        "rest": [
            {
                "mode": "server",
                "documentation": "Patient and Encounter writes apply the same rules as HL7 ADT: an Encounter "
                "with status finished is a discharge and starts follow-up planning. Absent elements are left "
                "as stored (as with HL7 v2), not erased.",
                "security": {
                    "service": [
                        {
                            "coding": [
                                {
                                    "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                                    "code": "SMART-on-FHIR",
                                }
                            ]
                        }
                    ],
                    "description": "SMART Backend Services (client credentials, private_key_jwt signed "
                    "RS384 or ES384), or a per-client API key in X-API-Key.",
                    "extension": [
                        {
                            "url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
                            "extension": [{"url": "token", "valueUri": f"{base_url}/auth/token"}],
                        }
                    ],
                },
                "resource": [_resource(resource_type) for resource_type in RESOURCE_TYPES],
            }
        ],
    }


def smart_configuration(base_url: str) -> dict[str, Any]:
    return {
        "token_endpoint": f"{base_url}/auth/token",
        "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": list(ALGORITHMS),
        "grant_types_supported": ["client_credentials"],
        "scopes_supported": [f"system/{t}.{'cruds' if t in WRITABLE else 'rs'}" for t in RESOURCE_TYPES],
        "capabilities": ["client-confidential-asymmetric", "permission-v2"],
    }
