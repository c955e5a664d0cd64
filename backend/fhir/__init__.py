"""The FHIR R4 REST API's domain: clients and tokens, scopes, resource mapping, search and writes."""
