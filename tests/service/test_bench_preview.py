"""``atlas bench preview``: the update it times rebuilds the engine's model and is far smaller."""

from __future__ import annotations

import json

from service.cli import main


def test_context_updates_are_smaller_than_whole_models(capsys):
    assert main(["bench", "preview", "--preset", "apartment", "--uses", "4", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["uses"] == 4 and report["model_version"] >= 1  # a trained model
    # one use and its events against a day of context, the classifier and the codebook
    assert report["update_kb"] * 10 < report["whole_kb"]
