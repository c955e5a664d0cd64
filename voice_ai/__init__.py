"""Voice: TTS, ASR, audio codecs, VAD, the call-session machine and telephony gateways."""
