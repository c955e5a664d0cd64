"""Dialogue engine: the channel-agnostic message model, flows, turn handling and conversation state."""
