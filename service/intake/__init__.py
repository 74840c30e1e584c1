"""Intake: validate incoming event payloads, store them idempotently, pair them into uses.

``pipeline`` is the shared path (the MQTT intake and ``atlas ingest`` both run it); ``mqtt``
wraps it with a persistent, manually acknowledged MQTT session.
"""
