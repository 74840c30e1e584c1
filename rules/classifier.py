"""The week-one classifier: a decision list of physical rules that abstains rather than guesses.

Before a home has any label, the only knowledge is physics and habit: appliances fill through
solenoids in multi-fill cycles, showers mix hot and cold for minutes, toilets refill cold and shut
slowly. :class:`RuleClassifier` applies the rules of :mod:`rules.table` with the thresholds of a
:class:`~rules.config.RuleConfig`, and every decision names the rules that fired and why.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rules.conditions import CONDITIONS, Context, build_context
from rules.config import RuleConfig
from rules.table import RULES, Rule
from rules.view import UseView


@dataclass(frozen=True)
class RuleDecision:
    """The rules' verdict on one use.

    Attributes
    ----------
    category : str or None
        The category, or None for "unknown" (no rule fired, the winning rule's precision is below
        ``min_precision``, or it only narrowed to several categories).
    confidence : float
        The winning rule's measured precision (0.0 when nothing fired).
    fired : tuple of str
        Names of every rule whose conditions all held, winner first.
    explanation : str
        The winning rule's conditions with the measured values, or why it abstained.
    candidates : tuple of str
        The categories the winning rule narrowed the use to (one when decided; e.g. both faucet
        categories for a short draw in a home with a kitchen and a bathroom).
    """

    category: str | None
    confidence: float
    fired: tuple[str, ...]
    explanation: str
    candidates: tuple[str, ...] = ()


class RuleClassifier:
    """Classify water uses into fixture categories with named, explainable rules.

    Parameters
    ----------
    config : RuleConfig, default=RuleConfig()
        Thresholds and the categories present in the home
        (:meth:`RuleConfig.from_home_spec` builds it from a home spec).
    rules : sequence of Rule, default=rules.table.RULES
        The decision list; the first rule that fires decides.

    Examples
    --------
    >>> RuleClassifier().classify([])
    []
    """

    def __init__(self, config: RuleConfig | None = None, rules: Sequence[Rule] = RULES) -> None:
        self.config = config or RuleConfig()
        self.rules = tuple(rules)

    def classify(
        self,
        uses: Sequence[UseView],
        only: Sequence[int] | None = None,
        *,
        context: Context | None = None,
    ) -> list[RuleDecision]:
        """One decision per use, in the order given (or per index of ``only``).

        ``uses`` should be all the uses of one home over the period of interest: appliance
        rules look at the neighbouring fills, so a use classified alone loses that context.
        ``only`` decides just those uses, in that context: the same decisions for a fraction
        of the time when a few new uses need one. ``context``: the home's context when it is
        kept elsewhere (:class:`rules.context_index.ContextIndex`); ``uses`` then need only
        hold the uses to decide.
        """
        if context is None:
            context = build_context(uses, self.config)
        chosen = uses if only is None else [uses[i] for i in only]
        return [self._decide(view, context) for view in chosen]

    def _active(self, rule: Rule) -> tuple[str, ...] | None:
        """The categories of ``rule`` present in the home, or None when the rule is off."""
        if rule.name in self.config.disabled_rules:
            return None
        present = tuple(c for c in rule.categories if self.config.has(c))
        return present or None

    def _decide(self, view: UseView, context: Context) -> RuleDecision:
        fired: list[tuple[Rule, tuple[str, ...], list[str]]] = []
        for rule in self.rules:
            categories = self._active(rule)
            if categories is None:
                continue
            checks = [CONDITIONS[name](view, context, self.config) for name in rule.conditions]
            if all(ok for ok, _ in checks):
                fired.append((rule, categories, [text for _, text in checks]))
        if not fired:
            return RuleDecision(None, 0.0, (), f"no rule fired: {_describe(view)}")
        rule, categories, texts = fired[0]
        names = tuple(r.name for r, _, _ in fired)
        because = f"{rule.name}: " + "; ".join(texts)
        if rule.precision < self.config.min_precision:
            return RuleDecision(
                None,
                rule.precision,
                names,
                f"unknown: {because}; but this rule's measured precision {rule.precision:.2f} "
                f"is below min_precision {self.config.min_precision:.2f}",
                categories,
            )
        if len(categories) > 1:
            return RuleDecision(
                None,
                rule.precision,
                names,
                f"unknown between {' and '.join(categories)}: {because}",
                categories,
            )
        return RuleDecision(
            categories[0],
            rule.precision,
            names,
            f"{categories[0]}: {because} ({rule.reason})",
            categories,
        )


def _describe(view: UseView) -> str:
    """A neutral account of a use for the "no rule fired" explanation."""
    parts = [f"lines {'+'.join(view.use.lines)}", f"status {view.use.status}"]
    if view.duration_s is not None:
        parts.append(f"duration {view.duration_s:.0f} s")
    if view.close_rise_s is not None:
        parts.append(f"close rise {view.close_rise_s:.3f} s")
    return ", ".join(parts)
