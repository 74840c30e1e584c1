"""``atlas-sim``: simulate homes whose pressure sensors report water-valve transients.

Each subcommand parses its arguments and calls a function that receives everything it needs
(spec, paths, broker URL, clock), so tests call those functions directly.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from atlas.homespec import HomeSpec, HomeSpecError, load_home_spec
from simulator.difficulty import FULL_RANGE, ONE_SHOT_MAX, calibrate
from simulator.generate import SimEvent, generate_run, render_uses
from simulator.presets import PRESETS, load_preset
from simulator.runfile import home_path, read_payloads, write_run
from simulator.usage import one_use_each

EPILOG = """examples:
  atlas-sim presets
  atlas-sim generate --preset two_bath_house --days 28 --seed 1 --out run.jsonl
  atlas-sim stream --broker mqtt://127.0.0.1:1883 --speed 3600 --file run.jsonl
  ATLAS_MQTT_PASSWORD=... atlas-sim stream --file run.jsonl \\
      --broker 'mqtts://smith-house%2Fsensors@broker.example.net:8883?ca_file=ca.pem'
  atlas-sim fixture --home home.toml --fixture "kitchen sink" --valve hot
  atlas-sim plot --preset two_bath_house --out waves.png
  atlas-sim difficulty --preset two_bath_house --days 28 --seed 1
"""


BROKER_HELP = (
    "broker URL: mqtt://HOST:PORT, or with the gateway's login and TLS "
    "mqtts://HOME%%2Fsensors@HOST:8883?ca_file=CA.pem&password_file=PATH "
    "(or the password in $ATLAS_MQTT_PASSWORD; docs/operations.md)"
)


def _err(message: str) -> None:
    print(f"atlas-sim: {message}", file=sys.stderr)


def _spec(args: argparse.Namespace) -> HomeSpec:
    if getattr(args, "home", None):
        return load_home_spec(args.home)
    return load_preset(args.preset)


def run_generate(
    spec: HomeSpec, *, days: int, seed: int, out: Path, variation: float = 1.0
) -> tuple[int, float]:
    """Generate and write a run; returns (events written, seconds taken)."""
    started = time.perf_counter()
    print(f"simulating {days} days of {spec.home_id} (seed {seed})...", file=sys.stderr)
    events = generate_run(spec, days=days, seed=seed, variation=variation)
    n = write_run(out, spec, events)
    elapsed = time.perf_counter() - started
    print(
        f"wrote {n} events ({n / days:.1f}/day) to {out} and the spec to {home_path(out)} "
        f"in {elapsed:.2f} s",
        file=sys.stderr,
    )
    return n, elapsed


def messages_from_payloads(payloads: Sequence[dict]) -> list[tuple[str, bytes, float]]:
    """(topic, payload bytes, seconds since the first event) for the streamer, in time order."""
    rows = sorted(payloads, key=lambda p: p["t"])
    if not rows:
        return []
    t0 = _parse_t(rows[0]["t"])
    out = []
    for p in rows:
        topic = f"atlas/v1/homes/{p['home_id']}/sensors/{p['sensor_id']}/events"
        out.append((topic, json.dumps(p).encode(), (_parse_t(p["t"]) - t0).total_seconds()))
    return out


def _parse_t(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def run_stream(messages: list[tuple[str, bytes, float]], broker: str, speed: float) -> int:
    """Publish ``messages``; prints the final count. Returns the exit code."""
    from simulator.stream import stream_events  # paho is only needed when streaming

    report = stream_events(messages, broker, speed=speed)
    refused = f", {report.refused} refused by the broker" if report.refused else ""
    print(
        f"published {report.sent} events, {report.acknowledged} acknowledged (QoS 1){refused}, "
        f"{report.resent} resent, in {report.elapsed_s:.1f} s",
        file=sys.stderr,
    )
    return 0 if report.acknowledged >= report.sent else 1


def find_fixture(spec: HomeSpec, ref: str) -> str:
    """A fixture id from an id or a (case-insensitive) name."""
    for fixture in spec.fixtures:
        if ref in (fixture.id, fixture.name) or ref.lower() == fixture.name.lower():
            return fixture.id
    names = ", ".join(f"{f.id} ({f.name})" for f in spec.fixtures)
    raise KeyError(f"--fixture {ref!r} matches no fixture of {spec.home_id}; known: {names}")


def fixture_check_events(
    spec: HomeSpec,
    fixture_ref: str,
    valve: str,
    *,
    now: datetime,
    duration_s: float,
    seed: int = 0,
) -> list[SimEvent]:
    """Events of one use of ``fixture_ref``'s ``valve`` opened at ``now``."""
    fixture = spec.fixture(find_fixture(spec, fixture_ref))
    names = [v.name for v in fixture.valves]
    if valve not in names:
        raise KeyError(f"--valve {valve!r}: fixture {fixture.id!r} has valves {names}")
    uses = one_use_each(spec, [f"{fixture.id}/{valve}"], duration_s=duration_s)
    origin = now.timestamp() - uses[0].start_s
    return render_uses(
        spec,
        uses,
        seed=seed,
        start=datetime.fromtimestamp(origin, UTC),
        id_prefix=f"{spec.home_id}.check.{int(now.timestamp() * 1000)}",
    )


def _cmd_presets(args: argparse.Namespace) -> int:
    for name, description in PRESETS.items():
        print(f"{name:18s} {description}")
    return 0


def _cmd_generate(args: argparse.Namespace) -> int:
    run_generate(
        _spec(args), days=args.days, seed=args.seed, out=Path(args.out), variation=args.variation
    )
    return 0


def _cmd_stream(args: argparse.Namespace) -> int:
    if args.file:
        payloads = [p for p, _ in read_payloads(args.file)]
    else:
        events = generate_run(_spec(args), days=args.days, seed=args.seed)
        payloads = [e.payload() for e in events]
    from service.mqttconn import masked_url

    print(
        f"streaming {len(payloads)} events to {masked_url(args.broker)} at speed {args.speed}",
        file=sys.stderr,
    )
    return run_stream(messages_from_payloads(payloads), args.broker, args.speed)


def _cmd_fixture(args: argparse.Namespace) -> int:
    spec = _spec(args)
    events = fixture_check_events(
        spec, args.fixture, args.valve, now=datetime.now(UTC), duration_s=args.duration
    )
    payloads = [e.payload() for e in events]
    if args.broker:
        return run_stream(messages_from_payloads(payloads), args.broker, 1.0)
    for payload in payloads:
        print(json.dumps(payload))
    return 0


def _cmd_plot(args: argparse.Namespace) -> int:
    from simulator.plot import plot_waves  # matplotlib only when plotting

    n = plot_waves(_spec(args), args.out, seed=args.seed, variation=args.variation)
    print(f"wrote {n} panels to {args.out}", file=sys.stderr)
    return 0


def _cmd_difficulty(args: argparse.Namespace) -> int:
    spec = _spec(args)
    started = time.perf_counter()
    events = generate_run(spec, days=args.days, seed=args.seed, variation=args.variation)
    report = calibrate(events)
    print(
        f"{spec.home_id}: {report.n_events} events, {report.n_valves} valves used\n"
        f"random 80/20 split: valve accuracy {report.split_accuracy:.1%} "
        f"(must be {FULL_RANGE[0]:.0%}-{FULL_RANGE[1]:.0%})\n"
        f"one labeled use per valve: valve accuracy {report.one_shot_accuracy:.1%} "
        f"on {report.n_one_shot_test} events (must be < {ONE_SHOT_MAX:.0%})\n"
        f"{'PASS' if report.passed else 'FAIL'} in {time.perf_counter() - started:.1f} s"
    )
    return 0 if report.passed else 1


def _add_home(parser: argparse.ArgumentParser, required: bool = False) -> None:
    group = parser.add_mutually_exclusive_group(required=required)
    group.add_argument("--preset", choices=sorted(PRESETS), help="a built-in home (see presets)")
    group.add_argument("--home", help="a home spec file (.toml or .json), see docs/homespec.md")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="atlas-sim",
        description="Simulate homes whose hot- and cold-line pressure sensors report the "
        "transient of every valve opening and closing (atlas.event/1).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("presets", help="list the built-in homes with a one-line description")
    p.set_defaults(func=_cmd_presets)

    p = sub.add_parser(
        "generate",
        help="simulate days of a household and write a run file (JSON Lines with ground truth)",
        description="Write one line per event (the published payload plus a 'truth' object) "
        "and the home spec used as <stem>.home.json next to it. Progress goes to stderr.",
    )
    _add_home(p)
    p.add_argument("--days", type=int, default=28, help="days to simulate (default 28)")
    p.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    p.add_argument("--out", required=True, help="run file to write, e.g. run.jsonl")
    p.add_argument(
        "--variation",
        type=float,
        default=1.0,
        help="spread of plumbing and habits (0 = identical uses; default 1.0)",
    )
    p.set_defaults(func=_cmd_generate)

    p = sub.add_parser(
        "stream",
        help="publish a run to an MQTT broker at QoS 1, in real time or accelerated",
        description="Publish each event on atlas/v1/homes/{home}/sensors/{sensor}/events with a "
        "progress bar and a final count of acknowledged publishes. Ground truth is not sent.",
    )
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--file", help="a run file written by generate")
    source.add_argument("--preset", choices=sorted(PRESETS), help="generate this preset first")
    source.add_argument("--home", help="generate this home spec first")
    p.add_argument("--days", type=int, default=1, help="days to generate (with --preset/--home)")
    p.add_argument("--seed", type=int, default=1, help="seed (with --preset/--home)")
    p.add_argument("--broker", default="mqtt://127.0.0.1:1883", help=BROKER_HELP)
    p.add_argument(
        "--speed",
        type=float,
        default=1.0,
        help="1 = real time, 3600 = an hour per second, 0 = as fast as possible",
    )
    p.set_defaults(func=_cmd_stream)

    p = sub.add_parser(
        "fixture",
        help="an installer's check: emit one use of one valve now",
        description="Open the valve now and close it --duration seconds later; publish both "
        "transients to --broker in real time, or print the payloads without --broker.",
    )
    _add_home(p, required=True)
    p.add_argument("--fixture", required=True, help="fixture id or name, e.g. 'kitchen sink'")
    p.add_argument("--valve", required=True, help="valve name: hot, cold, mixed, fill...")
    p.add_argument("--duration", type=float, default=5.0, help="seconds the water runs")
    p.add_argument(
        "--broker", help=f"publish to this broker (else print the payloads); {BROKER_HELP}"
    )
    p.set_defaults(func=_cmd_fixture)

    p = sub.add_parser(
        "plot",
        help="draw each valve's open and close waves on each line to a PNG",
        description="One panel per valve: what the sensors record for one use of it.",
    )
    _add_home(p, required=True)
    p.add_argument("--out", required=True, help="PNG file to write")
    p.add_argument("--seed", type=int, default=1, help="seed of the hidden plumbing spread")
    p.add_argument("--variation", type=float, default=1.0, help="plumbing spread")
    p.set_defaults(func=_cmd_plot)

    p = sub.add_parser(
        "difficulty",
        help="check the simulated home is as hard as real ones (random-forest calibration)",
        description="Random forest on transient features + use duration: valve accuracy on a "
        "random 80/20 split must be 85-97 %%, and below 70 %% with one labeled use per valve. "
        "Exit code 1 when outside.",
    )
    _add_home(p)
    p.add_argument("--days", type=int, default=28)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--variation", type=float, default=1.0)
    p.set_defaults(func=_cmd_difficulty)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    no_home = getattr(args, "preset", None) is None and getattr(args, "home", None) is None
    if no_home and args.command in ("generate", "difficulty"):
        args.preset = "two_bath_house"
    try:
        return int(args.func(args))
    except (HomeSpecError, KeyError, ValueError, FileNotFoundError, ConnectionError) as exc:
        _err(str(exc).strip("'\""))
        return 2


if __name__ == "__main__":
    sys.exit(main())
