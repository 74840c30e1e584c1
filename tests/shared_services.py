"""Addresses of the services this machine runs for the tests (Mosquitto, PostgreSQL).

A module of its own so test files can import the constants by a unique name; several
conftest.py files exist, and `from conftest import ...` picks whichever was imported first.
"""

SHARED_BROKER_URL = "mqtt://127.0.0.1:1883"
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
