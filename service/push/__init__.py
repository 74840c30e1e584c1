"""Pushing label requests to homeowners: MQTT retained state, signed webhooks, ntfy-style push."""
