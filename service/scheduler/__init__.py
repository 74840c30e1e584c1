"""The one scheduler of a deployment: APScheduler 3.11 on the service database, with a leader."""
