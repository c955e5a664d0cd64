"""The admin console's domain: staff accounts, passwords, the organisation, and the oversight views."""
