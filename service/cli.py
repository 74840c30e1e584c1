"""``atlas``: the service's command line.

Each command parses its arguments, builds its dependencies (engine, broker URL, clock) and calls
a function that receives them, so tests call those functions directly.
"""

from __future__ import annotations

import argparse
import getpass
import importlib
import json
import logging
import pkgutil
import secrets
import signal
import sys
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from sqlalchemy import Engine

from atlas.homespec import HomeSpecError, is_valid_id, load_home_spec
from service import bench
from service.api.auth import ROLES
from service.broker_logins import SERVICE_USERNAME, provision_logins
from service.intake.fileingest import ingest_file
from service.intake.mqtt import IntakeConfig, MqttIntake
from service.intake.pipeline import IngestPipeline
from service.settings import Settings, SettingsError, hash_token, load_settings
from service.storage.deadletters import DeadLetterRetention, list_dead_letters, purge_dead_letters
from service.storage.engine import current_revision, default_db_url, make_engine, require_schema
from service.storage.engine import upgrade as upgrade_db
from service.storage.fleets import fleet_users, list_fleet_versions
from service.storage.homefleet import count_opted_out
from service.storage.homes import upsert_home
from service.storage.stats import db_stats

if TYPE_CHECKING:  # the fleet commands import it when run: scikit-learn is slow to load
    from service.fleetbuild import RebuildOutcome

_LOGGER = logging.getLogger("atlas")


def db_upgrade(engine: Engine) -> str | None:
    upgrade_db(engine)
    return current_revision(engine)


def homes_add(engine: Engine, spec_path: Path) -> tuple[str, bool]:
    """Register (or replace) a home from its spec file; returns (home_id, created)."""
    spec = load_home_spec(spec_path)
    require_schema(engine)
    with engine.begin() as conn:
        return spec.home_id, upsert_home(conn, spec)


def stats(engine: Engine) -> dict:
    require_schema(engine)
    with engine.connect() as conn:
        return db_stats(conn)


def ingest(engine: Engine, path: Path, register: bool = True) -> dict:
    """Load ``path``; registers the spec beside it (``run.home.json``) first when it exists."""
    require_schema(engine)
    sidecar = path.with_name(path.name.removesuffix(".jsonl") + ".home.json")
    if register and sidecar.exists():
        homes_add(engine, sidecar)
    outcome = ingest_file(IngestPipeline(engine, clock=None), path)
    reasons: dict[str, int] = {}
    for d in outcome.dead:
        reasons[d.reason] = reasons.get(d.reason, 0) + 1
    with engine.connect() as conn:
        uses = db_stats(conn)["uses"]
    return {
        "stored": len(outcome.stored),
        "duplicates": outcome.duplicates,
        "dead_letters": len(outcome.dead),
        "dead_letters_by_reason": reasons,
        "uses_in_db": uses,
    }


def intake(engine: Engine, config: IntakeConfig, stop: threading.Event) -> bool:
    """Run the MQTT intake until ``stop`` is set (SIGINT/SIGTERM in the CLI); False on failure."""
    require_schema(engine)
    return MqttIntake(IngestPipeline(engine), config).run(stop)


def deadletters_list(engine: Engine, reason: str | None = None, limit: int = 20) -> list[dict]:
    """The newest dead letters (of ``reason`` when given), newest first, without payloads."""
    require_schema(engine)
    with engine.connect() as conn:
        return list_dead_letters(conn, reason=reason, limit=limit)


def fleet_status(engine: Engine) -> dict:
    """The stored fleet versions (newest first) with the homes on each, and the opt-outs."""
    require_schema(engine)
    with engine.connect() as conn:
        users = fleet_users(conn)
        versions = [
            {**asdict(v), "homes_using": users.get(v.version, 0)} for v in list_fleet_versions(conn)
        ]
        return {"versions": versions, "opted_out": count_opted_out(conn)}


def fleet_rebuild(engine: Engine, settings: Settings) -> RebuildOutcome:
    """Build a fleet version now (service time of ``settings``' clock), as the leader's job."""
    from service.clock import clock_from_settings
    from service.fleetbuild import rebuild_fleet

    require_schema(engine)
    clock = clock_from_settings(settings.sim_start, settings.sim_wall_start, settings.sim_speed)
    return rebuild_fleet(engine, settings.fleet, clock.now())


def fleet_show(engine: Engine, settings: Settings, version: int | None = None) -> dict | None:
    """What fleet ``version`` (default: the newest) holds, as ``GET /v1/fleet`` says it."""
    from service.fleet_summary import stored_fleet_summary

    require_schema(engine)
    with engine.connect() as conn:
        accuracy = settings.fleet.accuracy_prior
        return stored_fleet_summary(conn, accuracy_prior_used=accuracy, version=version)


def deadletters_purge(engine: Engine, retention: DeadLetterRetention, now: datetime) -> int:
    """Delete the dead letters beyond ``retention``; returns how many went."""
    require_schema(engine)
    with engine.begin() as conn:
        return purge_dead_letters(conn, retention, now)


@dataclass(frozen=True)
class NewToken:
    """A generated bearer token, its digest, and the settings field the digest goes in."""

    token: str
    digest: str
    setting: str


def new_token(role: str, home_id: str | None) -> NewToken:
    """A random token (256 bits from :mod:`secrets`) for ``role`` (and ``home_id``)."""
    if role not in ROLES:
        raise ValueError(f"role={role!r} should be one of {ROLES}")
    if role == "homeowner" and (home_id is None or not is_valid_id(home_id)):
        raise ValueError(f"a homeowner token needs --home HOME_ID (a home id), got {home_id!r}")
    if role != "homeowner" and home_id is not None:
        raise ValueError(f"--home belongs to homeowner tokens only, got it with role={role!r}")
    token = secrets.token_urlsafe(32)
    setting = f'tokens.homeowner_sha256."{home_id}"' if home_id else f"tokens.{role}_sha256"
    return NewToken(token, hash_token(token), setting)


def read_token(stream: TextIO) -> str:
    """The token typed at a terminal (not echoed) or the first line piped in: a secret on the
    command line would stay in the shell history and show in ``ps``."""
    token = getpass.getpass("token: ") if stream.isatty() else stream.readline().rstrip("\r\n")
    if not token:
        raise ValueError("no token on stdin: pipe it in, or type it at the prompt")
    return token


def _bench_modules() -> dict[str, object]:
    """Every module in ``service/bench/`` (contracts §4), by name."""
    return {  # command names use hyphens: module fleet_transfer is `atlas bench fleet-transfer`
        info.name.replace("_", "-"): importlib.import_module(f"service.bench.{info.name}")
        for info in pkgutil.iter_modules(bench.__path__)
        if not info.name.startswith("_")
    }


def build_parser(with_benches: bool = True) -> argparse.ArgumentParser:
    """The parser; ``with_benches=False`` skips importing the bench modules (they pull in
    scikit-learn and friends, seconds of start-up the intake does not need)."""
    parser = argparse.ArgumentParser(prog="atlas", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log at DEBUG level")
    sub = parser.add_subparsers(dest="command", required=True)

    def with_db(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument(
            "--db",
            default=None,
            help="database URL (default $ATLAS_DB_URL or "
            "sqlite:///atlas.db); PostgreSQL: postgresql+psycopg://USER@HOST/DB",
        )
        return p

    p = with_db(sub.add_parser("intake", help="run the MQTT intake"))
    p.add_argument("--broker", default="mqtt://127.0.0.1:1883", help="mqtt://HOST:PORT")
    p.add_argument(
        "--client-id",
        default="atlas-intake",
        help="stable MQTT client id: the broker keeps this session while it is down",
    )
    p.add_argument(
        "--topic",
        default=IntakeConfig.topic_filter,
        help="subscription filter; $share/GROUP/... for several workers",
    )
    p.add_argument("--batch-size", type=int, default=IntakeConfig.batch_size)

    p = with_db(sub.add_parser("ingest", help="load a simulator run file without a broker"))
    p.add_argument("--file", type=Path, required=True)
    p.add_argument(
        "--no-register",
        action="store_true",
        help="do not register the home spec next to the file (RUN.home.json)",
    )

    homes = sub.add_parser("homes", help="manage homes").add_subparsers(
        dest="homes_cmd", required=True
    )
    p = with_db(homes.add_parser("add", help="register a home from its spec file"))
    p.add_argument("spec", type=Path)

    db = sub.add_parser("db", help="database maintenance").add_subparsers(
        dest="db_cmd", required=True
    )
    with_db(db.add_parser("upgrade", help="apply the schema migrations"))
    p = with_db(db.add_parser("stats", help="counts of events, uses and dead letters"))
    p.add_argument("--json", action="store_true", help="print JSON")

    p = with_db(
        sub.add_parser(
            "calibrate-flow",
            help="store an installer's bucket fill or a water-meter reading (docs/usage.md)",
            description="Calibrate a home's litres with a known volume at one fixture (a "
            "bucket filled at a tap) or a water-meter reading over a period; --list shows "
            "the stored calibrations. Times without an offset are home-local.",
        )
    )
    p.add_argument("--home", required=True, help="the home id")
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--fixture", help="the fixture filled at: its id or its name in the spec")
    mode.add_argument(
        "--meter-litres", type=float, help="litres the water meter counted from --from to --to"
    )
    mode.add_argument("--list", action="store_true", help="the stored calibrations, oldest first")
    p.add_argument("--litres", type=float, help="with --fixture: the volume measured (the mark)")
    p.add_argument(
        "--valve",
        help="with --fixture: its valve (name or id); needed when it has several and not "
        "exactly one for cold water only",
    )
    fill = p.add_mutually_exclusive_group()
    fill.add_argument("--use", dest="use_id", help="with --fixture: the fill's use id")
    fill.add_argument(
        "--at",
        help="with --fixture: ISO time the fill had ended by (default: now); the newest "
        "fitting use closed in the --within minutes before it is the fill",
    )
    p.add_argument(
        "--within",
        type=float,
        default=None,
        help="with --fixture: minutes before --at to look in (default 30)",
    )
    p.add_argument(
        "--from", dest="start", help="with --meter-litres: ISO time of the first reading"
    )
    p.add_argument("--to", dest="end", help="with --meter-litres: ISO time of the second reading")

    p = sub.add_parser("serve", help="run the service: intake, pipeline, scheduler, HTTP API")
    p.add_argument("--config", type=Path, default=None, help="TOML settings file (docs/config.md)")
    p.add_argument("--worker-id", type=int, default=None, help="stable worker number")
    dead = sub.add_parser("deadletters", help="refused payloads").add_subparsers(
        dest="deadletters_cmd", required=True
    )
    p = with_db(dead.add_parser("list", help="the newest dead letters, without payloads"))
    p.add_argument("--reason", default=None, help="only this reason code (e.g. bad_json)")
    p.add_argument("--limit", type=int, default=20, help="at most this many (default 20)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p = with_db(dead.add_parser("purge", help="delete dead letters beyond the retention"))
    p.add_argument(
        "--config",
        type=Path,
        default=None,
        help="TOML settings with dead_letter_max_rows and dead_letter_max_age_days",
    )
    p.add_argument("--max-rows", type=int, default=None, help="keep at most this many")
    p.add_argument("--max-age-days", type=float, default=None, help="keep this many days")

    fleet = sub.add_parser(
        "fleet", help="the fleet of calibrated homes new homes start from (docs/fleet.md)"
    ).add_subparsers(dest="fleet_cmd", required=True)
    p = with_db(fleet.add_parser("status", help="stored versions, homes on each, opt-outs"))
    p.add_argument("--json", action="store_true", help="print JSON")
    p = with_db(fleet.add_parser("rebuild", help="build a fleet version now, as the job does"))
    p.add_argument(
        "--config", type=Path, default=None, help="TOML settings (fleet.*, sim_* for the clock)"
    )
    p = with_db(fleet.add_parser("show", help="what a fleet version holds, as JSON"))
    p.add_argument("--version", type=int, default=None, help="default: the newest")
    p.add_argument("--config", type=Path, default=None, help="TOML settings (fleet.*)")

    token = sub.add_parser("token", help="bearer tokens").add_subparsers(
        dest="token_cmd", required=True
    )
    token.add_parser(
        "hash", help="read a token on stdin; print the SHA-256 digest to put in the settings"
    )
    p = token.add_parser("new", help="generate a token; print it once with its digest")
    p.add_argument("--role", choices=ROLES, required=True)
    p.add_argument("--home", default=None, help="the home of a homeowner token")
    broker = sub.add_parser("broker", help="MQTT broker administration").add_subparsers(
        dest="broker_cmd", required=True
    )
    p = broker.add_parser(
        "users",
        help="add the broker logins of homes (gateway, homeowner device) or of the service; "
        "print their new passwords once",
        description="Logins are named for the ACL of deploy/atlas.acl: HOME/sensors (gateway), "
        "HOME/label-requests (homeowner device); see docs/operations.md. Running it again for "
        "a login gives it a new password.",
    )
    p.add_argument(
        "--password-file",
        type=Path,
        required=True,
        help="Mosquitto's password_file (e.g. /etc/mosquitto/atlas.passwd); created if missing",
    )
    p.add_argument("--home", action="append", default=[], help="a home id (repeatable)")
    p.add_argument(
        "--service",
        nargs="?",
        const=SERVICE_USERNAME,
        default=None,
        metavar="USERNAME",
        help=f"the service account (default name {SERVICE_USERNAME!r}, the ACL's user block)",
    )
    from service import demo

    demo.add_arguments(sub.add_parser("demo", help=demo.__doc__.splitlines()[0]))

    benches = sub.add_parser("bench", help="benchmarks").add_subparsers(
        dest="bench_cmd", required=True
    )
    for name, module in sorted(_bench_modules().items() if with_benches else ()):
        doc = (module.__doc__ or name).strip().splitlines()[0]
        bp = benches.add_parser(name, help=doc, description=module.__doc__)
        module.add_arguments(bp)
        bp.set_defaults(bench_module=module)
    return parser


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    return stop


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(with_benches="bench" in argv).parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("alembic").setLevel(logging.WARNING)  # one line per migration is noise
    try:
        return _run(args)
    except SettingsError as exc:
        print(f"atlas: error: settings: {exc}", file=sys.stderr)
        return 2


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _run(args: argparse.Namespace) -> int:
    if args.command == "bench":
        return args.bench_module.run(args)
    if args.command == "serve":
        from service.logs import configure_logging
        from service.runtime.serve import serve
        from service.settings import load_settings

        overrides = {} if args.worker_id is None else {"worker_id": args.worker_id}
        settings = load_settings(args.config, **overrides)
        configure_logging(settings.log_level, settings.log_json)
        return serve(settings)
    if args.command == "token":
        return _token(args)
    if args.command == "broker":
        return _broker_users(args)
    if args.command == "demo":
        from service.demo import run as run_one_home
        from service.demo_fleet import run as run_fleet

        run_demo = run_fleet if args.homes > 1 else run_one_home

        # SIGTERM (kill, systemd) unwinds like Ctrl-C, so the private broker and the service
        # the demo started are stopped on the way out
        signal.signal(signal.SIGTERM, _interrupt)
        try:
            return run_demo(args)
        except KeyboardInterrupt:
            print("atlas demo: interrupted; its broker and service are stopped", file=sys.stderr)
            return 130
    engine = make_engine(args.db or default_db_url())
    try:
        if args.command == "db" and args.db_cmd == "upgrade":
            print(f"database at revision {db_upgrade(engine)}")
        elif args.command == "db" and args.db_cmd == "stats":
            result = stats(engine)
            print(
                json.dumps(result, indent=2)
                if args.json
                else "\n".join(f"{k}: {v}" for k, v in result.items())
            )
        elif args.command == "deadletters":
            _deadletters(args, engine)
        elif args.command == "calibrate-flow":
            _calibrate_flow(args, engine)
        elif args.command == "fleet":
            return _fleet(args, engine)
        elif args.command == "homes":
            home_id, created = homes_add(engine, args.spec)
            print(f"home {home_id!r} {'registered' if created else 'updated'}")
        elif args.command == "ingest":
            print(json.dumps(ingest(engine, args.file, register=not args.no_register), indent=2))
        elif args.command == "intake":
            config = IntakeConfig(
                broker_url=args.broker,
                client_id=args.client_id,
                topic_filter=args.topic,
                batch_size=args.batch_size,
            )
            if not intake(engine, config, _stop_on_signals()):
                return 1
    except (HomeSpecError, RuntimeError, ValueError, FileNotFoundError) as exc:
        print(f"atlas: error: {exc}", file=sys.stderr)
        return 2
    finally:
        engine.dispose()
    return 0


def _token(args: argparse.Namespace) -> int:
    try:
        if args.token_cmd == "hash":
            print(hash_token(read_token(sys.stdin)))
            return 0
        made = new_token(args.role, args.home)
    except ValueError as exc:
        print(f"atlas: error: {exc}", file=sys.stderr)
        return 2
    print(f"token:  {made.token}")
    print(f"sha256: {made.digest}")
    print(
        f"Give the token to its holder now: it is not stored and not shown again. "
        f"Add the sha256 to {made.setting} (docs/config.md)."
    )
    return 0


def _broker_users(args: argparse.Namespace) -> int:
    created = not args.password_file.exists()
    try:
        logins = provision_logins(args.password_file, args.home, args.service)
    except (ValueError, RuntimeError, OSError) as exc:
        print(f"atlas: error: {exc}", file=sys.stderr)
        return 2
    width = max(len(login.username) for login in logins)
    for login in logins:
        print(f"{login.role:<10} {login.username:<{width}}  {login.password}")
    print(
        f"The passwords are shown once and stored only as hashes in {args.password_file}:\n"
        "give each to its device now. In a broker URL a username's '/' is written %2F,\n"
        "e.g. mqtts://HOME%2Fsensors@BROKER:8883?ca_file=CA.pem with the password in\n"
        "?password_file=PATH or $ATLAS_MQTT_PASSWORD (docs/operations.md).\n"
        "Reload Mosquitto to apply: systemctl reload mosquitto"
    )
    if created:
        print(
            f"Created {args.password_file} readable by its owner only: make the broker's "
            f"user its owner (chown mosquitto {args.password_file})."
        )
    return 0


def _fleet(args: argparse.Namespace, engine: Engine) -> int:
    if args.fleet_cmd == "status":
        status = fleet_status(engine)
        if args.json:
            print(json.dumps(status, indent=2, default=str))
            return 0
        for v in status["versions"]:
            print(
                f"version {v['version']}: built {v['built_at']:%Y-%m-%d %H:%M} from "
                f"{v['n_homes']} homes in {v['build_s']:.1f} s ({v['cpu_s']:.1f} s CPU), "
                f"used by {v['homes_using']} homes"
            )
        print(f"{len(status['versions'])} versions stored; {status['opted_out']} homes opted out")
        return 0
    settings = load_settings(args.config)
    if args.fleet_cmd == "rebuild":
        done = fleet_rebuild(engine, settings)
        if done.version is None:
            print(f"no fleet version built: {done.reason}")
            return 1
        print(
            f"fleet version {done.version} built from {done.n_homes} homes in "
            f"{done.build_s:.1f} s ({done.cpu_s:.1f} s CPU); pruned {list(done.pruned)}"
        )
        return 0
    shown = fleet_show(engine, settings, args.version)
    if shown is None:
        print("atlas: error: no such fleet version", file=sys.stderr)
        return 2
    print(json.dumps(shown, indent=2, default=str))
    return 0


def _calibrate_flow(args: argparse.Namespace, engine: Engine) -> None:
    """``atlas calibrate-flow``: the measurement is checked, applied and stored in one
    transaction, so a refused one stores nothing."""
    # imported when run: the usage report's classification levels load SciPy (half a second)
    from service.flowcalibrate import (
        calibrate_fixture,
        calibrate_meter_reading,
        calibration_history,
        summary,
    )

    fixture_flags = {"--litres": args.litres, "--valve": args.valve, "--use": args.use_id}
    fixture_flags |= {"--at": args.at, "--within": args.within}
    meter_flags = {"--from": args.start, "--to": args.end}
    if args.list:
        stray = fixture_flags | meter_flags
    else:
        stray = meter_flags if args.fixture is not None else fixture_flags
    given = [flag for flag, value in stray.items() if value is not None]
    if given:
        mode = "--list" if args.list else "--fixture" if args.fixture else "--meter-litres"
        raise ValueError(f"{', '.join(given)}: not used with {mode}")
    require_schema(engine)
    now = datetime.now(UTC)
    with engine.begin() as conn:
        if args.list:
            print("\n".join(calibration_history(conn, args.home)))
            return
        if args.fixture is not None:
            if args.litres is None:
                raise ValueError("--fixture needs --litres, the volume measured")
            within = {} if args.within is None else {"within": timedelta(minutes=args.within)}
            result = calibrate_fixture(
                conn,
                args.home,
                args.fixture,
                args.litres,
                now=now,
                valve=args.valve,
                use_id=args.use_id,
                at=None if args.at is None else _iso_time("--at", args.at),
                **within,
            )
        else:
            if args.start is None or args.end is None:
                raise ValueError("--meter-litres needs --from and --to, the meter's readings")
            result = calibrate_meter_reading(
                conn,
                args.home,
                args.meter_litres,
                _iso_time("--from", args.start),
                _iso_time("--to", args.end),
                now=now,
            )
    print(summary(result))


def _iso_time(flag: str, text: str) -> datetime:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"{flag} {text!r} is not an ISO 8601 time (e.g. 2026-04-10T14:05)"
        ) from None


def _deadletters(args: argparse.Namespace, engine: Engine) -> None:
    if args.deadletters_cmd == "list":
        rows = deadletters_list(engine, args.reason, args.limit)
        if args.json:
            print(json.dumps(rows, indent=2, default=str))
            return
        for r in rows:
            print(
                f"{r['id']} {r['received_at']} {r['reason']} {r['payload_size']} B "
                f"{r['topic']}: {r['message'][:200]}"
            )
        return
    overrides = {
        key: value
        for key, value in (
            ("dead_letter_max_rows", args.max_rows),
            ("dead_letter_max_age_days", args.max_age_days),
        )
        if value is not None
    }
    retention = load_settings(args.config, **overrides).dead_letter_retention
    removed = deadletters_purge(engine, retention, datetime.now(UTC))
    days = retention.max_age.total_seconds() / 86400
    print(
        f"purged {removed} dead letters (keeping at most {retention.max_rows}, "
        f"received within {days:g} days)"
    )


if __name__ == "__main__":
    sys.exit(main())
