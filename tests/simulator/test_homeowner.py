"""simulator.homeowner: configured error rates, similar-fixture confusions, determinism."""

import pytest

from simulator.homeowner import NOT_SURE, Homeowner

CHOICES = ["bath1-toilet/fill", "bath2-toilet/fill", "kitchen-sink/hot", "hose/cold", NOT_SURE]
N = 4000


def _truth(n: int) -> dict:
    return {
        "valve": "bath1-toilet/fill",
        "fixture": "bath1-toilet",
        "category": "toilet",
        "use_id": f"u{n:06d}",
    }


def _answers(owner: Homeowner):
    return [owner.answer(_truth(n), CHOICES) for n in range(N)]


def test_error_rates_match_configuration():
    owner = Homeowner(p_no_answer=0.3, p_late=0.4, p_wrong=0.2, p_not_sure=0.1, seed=1)
    answers = _answers(owner)
    answered = [a for a in answers if a.answered]
    assert len(answered) / N == pytest.approx(0.7, abs=0.03)
    late = [a for a in answered if a.delay_s > owner.prompt_delay_s]
    assert len(late) / len(answered) == pytest.approx(0.4, abs=0.03)
    unsure = [a for a in answered if a.choice == NOT_SURE]
    assert len(unsure) / len(answered) == pytest.approx(0.1, abs=0.02)
    wrong = [a for a in answered if a.choice != NOT_SURE and not a.correct]
    assert len(wrong) / (len(answered) - len(unsure)) == pytest.approx(0.2, abs=0.03)


def test_wrong_answers_pick_the_similar_fixture():
    owner = Homeowner(p_no_answer=0.0, p_wrong=0.5, p_not_sure=0.0, seed=2)
    wrong = {a.choice for a in _answers(owner) if not a.correct}
    assert wrong == {"bath2-toilet/fill"}


def test_categories_decide_similarity_when_given():
    owner = Homeowner(p_no_answer=0.0, p_wrong=1.0, p_not_sure=0.0, seed=2)
    categories = {"bath1-toilet": "toilet", "powder": "toilet", "kitchen-sink": "kitchen_faucet"}
    truth = {"valve": "bath1-toilet/fill", "fixture": "bath1-toilet", "use_id": "u1"}
    answer = owner.answer(
        truth, ["bath1-toilet/fill", "powder/fill", "kitchen-sink/hot"], categories
    )
    assert answer.choice == "powder/fill"


def test_perfect_homeowner_is_always_right_and_prompt():
    owner = Homeowner(p_no_answer=0.0, p_late=0.0, p_wrong=0.0, p_not_sure=0.0)
    answers = _answers(owner)
    assert all(a.correct and a.delay_s <= owner.prompt_delay_s for a in answers)


def test_fixture_level_choices_use_the_fixture_truth():
    owner = Homeowner(p_no_answer=0.0, p_wrong=0.0, p_not_sure=0.0)
    answer = owner.answer(_truth(1), ["bath1-toilet", "bath2-toilet"])
    assert answer.choice == "bath1-toilet" and answer.correct


def test_answers_do_not_depend_on_request_order():
    owner = Homeowner(seed=5)
    forward = [owner.answer(_truth(n), CHOICES) for n in range(50)]
    backward = [owner.answer(_truth(n), CHOICES) for n in reversed(range(50))]
    assert forward == backward[::-1]
    assert _answers(Homeowner(seed=6))[:50] != forward


def test_probabilities_are_checked():
    with pytest.raises(ValueError, match=r"p_wrong=1\.5"):
        Homeowner(p_wrong=1.5)
