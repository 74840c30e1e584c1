"""``atlas ingest``: load a simulator run file through the intake's validation and pairing path."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from atlas.events import EVENT_TOPIC
from atlas.homespec import is_valid_id
from service.intake.messages import InboundMessage
from service.intake.pipeline import BatchOutcome, IngestPipeline

BATCH = 200


def file_messages(path: Path) -> Iterator[InboundMessage]:
    """One message per line, as the gateway would have published it (ground truth removed).

    The topic is rebuilt from the payload's ids; a line too broken to name them gets a
    ``file:NAME:LINE`` topic so its dead letter says where it came from.
    """
    now = datetime.now(UTC)
    with Path(path).open("rb") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            topic, payload = f"file:{Path(path).name}:{lineno}", line.rstrip(b"\r\n")
            try:
                data = json.loads(line)
            except ValueError:
                data = None
            if isinstance(data, dict):
                data.pop("truth", None)
                payload = json.dumps(data).encode()
                home, sensor = data.get("home_id"), data.get("sensor_id")
                if all(isinstance(x, str) and is_valid_id(x) for x in (home, sensor)):
                    topic = EVENT_TOPIC.format(home_id=home, sensor_id=sensor)
            yield InboundMessage(topic=topic, payload=payload, received_at=now)


def ingest_file(pipeline: IngestPipeline, path: Path) -> BatchOutcome:
    """Store and pair every event of ``path``; the file is complete, so pairing ends final."""
    total = BatchOutcome()
    batch: list[InboundMessage] = []
    homes: set[str] = set()

    def flush() -> None:
        outcome = pipeline.process(batch)
        total.stored |= outcome.stored
        total.duplicates += outcome.duplicates
        total.dead += outcome.dead
        homes.update(outcome.homes)
        pipeline.pair(outcome.homes)
        batch.clear()

    for msg in file_messages(path):
        batch.append(msg)
        if len(batch) >= BATCH:
            flush()
    if batch:
        flush()
    pipeline.pair(homes, final=True)
    total.homes = homes
    return total
