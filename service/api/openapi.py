"""The home spec's cross-field rules, stated in the OpenAPI schema of ``POST/PUT /v1/homes``.

The body model (``atlas.homespec.HomeSpecModel``) checks them in validators, which pydantic
cannot put in a JSON schema, so a body the schema allows (``"runs": {}``, no sensors) would be
refused with 422. They are stated here as JSON Schema, exactly: a fixture needs a pipe run on
every line its valves use (its handle's default valves, or each listed valve's ``lines``, else
the default lines of its name, else cold), and a home a sensor on every line. What JSON Schema
cannot say (ids unique across a list) is in the descriptions.
"""

from __future__ import annotations

from typing import Any

from atlas.domain import DEFAULT_VALVES, Handle, Line

#: A valve that names no lines (``lines`` absent, null or empty): its name's defaults apply.
_NO_LINES = {
    "anyOf": [
        {"not": {"required": ["lines"]}},
        {"properties": {"lines": {"anyOf": [{"type": "null"}, {"type": "array", "maxItems": 0}]}}},
    ]
}


def _default_lines(handle: Handle, name: str) -> tuple[Line, ...]:
    return dict(DEFAULT_VALVES[handle]).get(name, (Line.COLD,))


def _valve_uses(handle: Handle, line: Line) -> dict[str, Any]:
    """A valve of a ``handle`` fixture that uses ``line``: listed among its ``lines``, or it
    names none and its name's default lines (cold for a name the handle has no default for)
    include it."""
    listed = {"required": ["lines"], "properties": {"lines": {"contains": {"const": str(line)}}}}
    names = [name for name, _ in DEFAULT_VALVES[handle]]
    # "" stands for any name the handle has no default for (ids are never empty)
    if line in _default_lines(handle, ""):  # so exclude the default names that do not use it
        without = sorted(n for n in names if line not in _default_lines(handle, n))
        by_name = {"not": {"properties": {"name": {"enum": without}}}} if without else {}
    else:
        within = [n for n in names if line in _default_lines(handle, n)]
        by_name = {"properties": {"name": {"enum": within}}} if within else {"not": {}}
    return {"anyOf": [listed, {"allOf": [_NO_LINES, by_name]}]}


def _uses_line(handle: Handle, line: Line) -> dict[str, Any]:
    """A ``handle`` fixture with a valve on ``line``: by default (no ``valves``) or listed."""
    listed = {
        "required": ["valves"],
        "properties": {"valves": {"type": "array", "contains": _valve_uses(handle, line)}},
    }
    if not any(line in lines for _, lines in DEFAULT_VALVES[handle]):
        return listed
    defaults = {
        "anyOf": [{"not": {"required": ["valves"]}}, {"properties": {"valves": {"type": "null"}}}]
    }
    return {"anyOf": [defaults, listed]}


def _runs_of(handle: Handle) -> dict[str, Any]:
    """A ``handle`` fixture with a pipe run on every line its valves use."""
    rules: list[dict[str, Any]] = [{"properties": {"handle": {"const": str(handle)}}}]
    for line in Line:
        then = {"properties": {"runs": {"required": [str(line)]}}}
        rules.append({"if": _uses_line(handle, line), "then": then})
    return {"allOf": rules}


def state_home_spec_rules(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` (an OpenAPI document) with the home spec's rules added to its components."""
    components = schema.get("components", {}).get("schemas", {})
    home, fixture = components.get("HomeSpecModel"), components.get("FixtureSpec")
    if home is None or fixture is None:
        return schema
    home["properties"]["sensors"]["required"] = [str(line) for line in Line]
    home["properties"]["sensors"]["description"] = (
        "One sensor on each line, their sensor ids different (422 otherwise)."
    )
    home["properties"]["fixtures"]["description"] = "Fixture ids must be unique (422 otherwise)."
    fixture["anyOf"] = [_runs_of(handle) for handle in Handle]
    fixture["properties"]["runs"]["description"] = (
        "A pipe run on every line the fixture's valves use: the default valves of its handle, "
        "or each listed valve's lines (else the default lines of its name, else cold)."
    )
    return schema
