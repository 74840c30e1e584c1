"""Home Assistant MQTT discovery: each home's display level and accuracy per level as sensors.

Config topics ``<prefix>/sensor/<object_id>/config`` (retained) point at the home's retained
state topic with a ``value_template``; an availability topic says whether the service is up
(the runtime's MQTT will message sets it offline). Re-published when ``<prefix>/status`` says
``online`` (Home Assistant restarted and forgot the entities).
"""

from __future__ import annotations

from service.storage.classifications import model_version_name

MANUFACTURER = "Atlas"
MODEL = "HydroSense-style pressure sensing"
LEVELS = ("category", "fixture", "valve")


def discovery_messages(
    prefix: str, topic_base: str, home_id: str, home_name: str, sw_version: str
) -> list[tuple[str, dict]]:
    """``(config topic, payload)`` for the sensors of one home."""
    state_topic = f"{topic_base}/homes/{home_id}/state"
    device = {
        "identifiers": [f"atlas-{home_id}"],
        "name": f"Atlas {home_name}",
        "manufacturer": MANUFACTURER,
        "model": MODEL,
        "sw_version": sw_version,
    }
    common = {
        "state_topic": state_topic,
        "availability_topic": availability_topic(topic_base),
        "device": device,
    }
    obj = f"atlas_{home_id}".replace("-", "_")
    out = [
        (
            f"{prefix}/sensor/{obj}_level/config",
            {
                "name": "Display level",
                "unique_id": f"{obj}_level",
                "value_template": "{{ value_json.level }}",
                "icon": "mdi:water-check",
                **common,
            },
        )
    ]
    for level in LEVELS:
        out.append(
            (
                f"{prefix}/sensor/{obj}_accuracy_{level}/config",
                {
                    "name": f"Accuracy ({level})",
                    "unique_id": f"{obj}_accuracy_{level}",
                    "value_template": (
                        f"{{{{ (value_json.accuracy.{level}.estimate * 100) | round(1) }}}}"
                    ),
                    "unit_of_measurement": "%",
                    "state_class": "measurement",
                    **common,
                },
            )
        )
    return out


def availability_topic(topic_base: str) -> str:
    return f"{topic_base}/service/availability"


def state_message(home_id: str, status: dict) -> dict:
    """The retained per-home state the sensors read (``status`` from the daily update)."""
    return {
        "home_id": home_id,
        "level": status["level"],
        "phase": status["phase"],
        "calibration_day": status["calibration_day"],
        "model_version": status.get("model_version", model_version_name(0)),
        "accuracy": status.get("accuracy", {}),
    }
