"""What messages to patients carry: signed links, and patients' media."""
