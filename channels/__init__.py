"""Channel adapters: turn provider payloads into `Inbound` and render `Outbound` for each channel."""
