"""Hospital data in: HL7 v2 ADT over MLLP today; FHIR writes and file imports end in the same verbs."""
