"""Prometheus metrics of the running service (the API mounts ``/metrics``).

Module-level objects in prometheus-client's default registry, the library's documented pattern:
every part of the process (intake wrapper, pipeline, push, answers) increments the same series
and one ``make_asgi_app()`` exposes them.
"""

from __future__ import annotations

from prometheus_client import REGISTRY, Counter, Gauge, Histogram

from service.gcpauses import GcPauseCollector

EVENTS_IN = Counter("atlas_events_in_total", "Events received from the broker and committed")
EVENT_DUPLICATES = Counter(
    "atlas_event_duplicates_total",
    "Events whose id was already stored for their home (a redelivery, or a repeated id)",
)
DEAD_LETTERS = Counter("atlas_dead_letters_total", "Messages refused and kept as dead letters")
INTAKE_REFUSED = Counter(
    "atlas_intake_refused_total",
    "Event messages dropped before the queue, by reason (qos0: published at QoS 0)",
    ["reason"],
)
INTAKE_QUEUE_FULL = Counter(
    "atlas_intake_queue_full_total",
    "Times the MQTT network thread waited for room in the full intake queue (back-pressure)",
)
USES_CLASSIFIED = Counter("atlas_uses_classified_total", "Water uses classified")
CLASSIFICATION_SECONDS = Histogram(
    "atlas_classification_seconds",
    "Time to load, classify and store one home's new uses",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
#: Two stages of a classification's latency (docs/service.md), so that ``atlas bench latency`` and a
#: dashboard see where the time goes without a profiler: the intake (broker -> commit, what a
#: message's acknowledgement waits for) and the provisional path (commit -> rows published).
STAGE_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.015,
    0.02,
    0.03,
    0.04,
    0.05,
    0.075,
    0.1,
    0.15,
    0.2,
    0.3,
    0.5,
    1.0,
    2.5,
    5.0,
)
INTAKE_COMMIT_DELAY = Histogram(
    "atlas_intake_commit_delay_seconds",
    "From the receipt of an event's message to the commit of its batch",
    buckets=STAGE_BUCKETS,
)
PROVISIONAL_DELAY = Histogram(
    "atlas_provisional_delay_seconds",
    "From the commit of a use's last event to its provisional classification published (a use "
    "that pairing completes only with a later event waits for it too)",
    buckets=STAGE_BUCKETS,
)
PROVISIONAL_DROPPED = Counter(
    "atlas_provisional_events_dropped_total",
    "Events given no provisional classification: the provisional process fell behind",
)
REQUESTS_SENT = Counter("atlas_label_requests_sent_total", "Label requests pushed to homeowners")
REQUESTS_ANSWERED = Counter(
    "atlas_label_requests_answered_total", "Label-request answers recorded", ["channel"]
)
REQUESTS_EXPIRED = Counter("atlas_label_requests_expired_total", "Label requests that expired")
ALERTS_RAISED = Counter("atlas_alerts_raised_total", "Leak and anomaly alerts stored", ["kind"])
ALERTS_PUSHED = Counter("atlas_alerts_pushed_total", "Alerts every configured channel accepted")
PUSH_ATTEMPTS = Counter(
    "atlas_push_attempts_total",
    "Webhook or ntfy push attempts by outcome (ok, http_error, timeout, error)",
    ["channel", "outcome"],
)
MQTT_LINK_FAILURES = Counter(
    "atlas_mqtt_link_failures_total",
    "Runtime MQTT messages (answers, HA status) whose handling raised; acknowledged all the same",
)
SCHEDULER_LEADER = Gauge("atlas_scheduler_leader", "1 while this process runs the scheduler")
JOBS_RUN = Counter("atlas_jobs_total", "Scheduler jobs run", ["kind", "outcome"])
#: Collector pauses of ``atlas serve`` and of its provisional process (service.gcpauses)
GC_PAUSES = GcPauseCollector()
REGISTRY.register(GC_PAUSES)
