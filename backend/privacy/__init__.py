"""A patient's data rights (export, correction, anonymisation, erasure), legal holds, retention of data
by kind, the record's access report and break-glass access. Procedures: docs/privacy.md."""
