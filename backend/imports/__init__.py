"""Bulk import of hospital files (patients, visits, exclusion lists): streaming readers, column matching,
row validation and a dry-run plan as pure functions; jobs that run the dry run, the confirm and the
reconciliation through the shared long-work mechanism and the same verbs as the HL7 listener."""
