"""Week-one rule-based classifier: fixture categories from physics and habit, no labels needed.

``RuleClassifier(RuleConfig.from_home_spec(spec)).classify(build_views(uses, features))``
returns one :class:`RuleDecision` per use; see ``docs/rules.md``.
"""

from rules.classifier import RuleClassifier, RuleDecision
from rules.config import RuleConfig
from rules.table import RULES, Rule
from rules.view import UseView, build_views

__all__ = [
    "RULES",
    "Rule",
    "RuleClassifier",
    "RuleConfig",
    "RuleDecision",
    "UseView",
    "build_views",
]
