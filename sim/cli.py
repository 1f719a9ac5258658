"""The ``deploysim`` command line.

    deploysim report                         # plots and tables in reports/
    deploysim run heroku-hourly              # a table a person reads in seconds
    deploysim run my.toml --strategy sidekiq --strategy resumable --set deploys.every=30m --json
    deploysim scenarios                      # the bundled scenarios
    deploysim sweep heroku-hourly --grid deploys.every=15m,1h,4h --out sweep/
    deploysim chaos --strategy sidekiq       # real processes, real signals, an audit
    deploysim calibrate                      # the chaos harness against the simulator
    deploysim bench engine|sim [--quick] [--json]
    deploysim demo                           # a resumable job: Ctrl-C it, run it again

Bad input gets one line on stderr naming the field or value, and exit status 2. Long work
shows its progress on stderr (a bar on a terminal, a plain line every few seconds elsewhere;
``--quiet`` silences it, ``--progress`` forces the lines), and ``run`` and ``sweep`` warn before
they start when the jobs offered need more workers than the fleet has. This module
imports only the standard library (and the engine, which needs nothing more), so ``--help`` and
the advice to install the ``sim`` extra work on a bare install; each command imports what it
uses when it runs.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import math
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from deploysim.strategies.base import StrategyError
from deploysim.strategies.resumable import ResumableError

from .errors import SimError
from .executors import EXECUTORS

USER_ERRORS = (SimError, StrategyError, ResumableError)

SIM_PACKAGES = ("simpy", "numpy", "scipy", "pandas", "matplotlib", "tqdm", "tabulate")
"""The packages of the ``sim`` extra (``pip install 'deploysim[sim]'``), in import names."""


class _Parser(argparse.ArgumentParser):
    """argparse, with errors on one line and exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _fail(message: str) -> NoReturn:
    print(f"deploysim: error: {message}", file=sys.stderr)
    raise SystemExit(2)


def _warn(message: str) -> None:
    print(f"deploysim: warning: {message}", file=sys.stderr)


def _load_text(scenario: Any) -> str:
    """``31 busy workers needed, 20 in the fleet`` for a scenario's offered load."""
    from .scenario.load import busy_workers

    busy = busy_workers(scenario)
    needed = "unboundedly many" if busy is None or math.isinf(busy) else f"{math.ceil(busy):,}"
    return f"{needed} busy workers needed, {scenario.fleet.workers:,} in the fleet"


_BACKLOG_WARNING = ("the queue will grow and completion rates will reflect the backlog, "
                    "not the deploys")


def _warn_overload(scenarios: Sequence[Any], labels: Sequence[str] | None = None) -> None:
    """One line on stderr if any of ``scenarios`` offers a load at or above 1."""
    from .scenario.load import offered_load

    loads = [offered_load(s) for s in scenarios]
    over = [(load, i) for i, load in enumerate(loads) if load is not None and load >= 1]
    if not over:
        return
    load, worst = max(over)
    figure = f"offered load {load:.2f}" if math.isfinite(load) else "infinite offered load"
    if labels is None or len(scenarios) == 1:
        _warn(f"{figure}: {_load_text(scenarios[worst])}; {_BACKLOG_WARNING}")
    else:
        _warn(f"{figure} in {len(over)} of {len(scenarios)} cells (worst: {labels[worst]}: "
              f"{_load_text(scenarios[worst])}); {_BACKLOG_WARNING}")


# -- run -------------------------------------------------------------------------------------


def _count(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() or value >= 100 else f"{value:,.1f}"


RUN_TABLE_HEAD = ("strategy", "completed", "lost", "failed", "pending", "dup items", "wasted",
                  "sojourn p50", "sojourn p99", "drain max", "hard kills")
"""The columns of the table ``deploysim run`` prints."""


def format_run_table(result: Any) -> str:
    """The table `deploysim run` prints: one row per strategy."""
    from .durations import humanize
    from .text import text_table

    rows = []
    for name, r in result.strategies.items():
        rate = f"{100 * r['completion_rate']:.2f}%"
        ci = r.get("ci95", {}).get("completion_rate")
        if ci and not math.isnan(ci[0]):
            rate += f" ±{100 * (ci[1] - ci[0]) / 2:.2f}"
        rows.append((
            name, rate, _count(r["lost"]), _count(r["failed"]), _count(r["pending"]),
            _count(r["duplicate_item_executions"]), f"{r['wasted_work_s'] / 3600:,.1f} h",
            humanize(r["sojourn_s"]["p50"]), humanize(r["sojourn_s"]["p99"]),
            humanize(r["drain_s"]["max"]), _count(r["hard_kills"]),
        ))
    return text_table(RUN_TABLE_HEAD, rows)


def _cmd_run(args: argparse.Namespace) -> int:
    from .durations import format_duration
    from .fleet import replications as simulator
    from .progress import Progress
    from .scenario import load_scenario, with_overrides

    scenario = load_scenario(args.scenario)
    if args.set:
        scenario = with_overrides(scenario, args.set)
    names = simulator.strategies_of(scenario, args.strategy or None)
    _warn_overload([scenario])
    with Progress(len(names) * scenario.replications, f"run {scenario.name}", "run",
                  mode=args.progress_mode) as shown:
        result = simulator.run(scenario, list(names), seed=args.seed,
                               progress=lambda _msg: shown.update(1))
    if args.json:
        json.dump(result.to_dict(), sys.stdout, indent=None if args.compact else 2,
                  allow_nan=False, default=_json_default)
        sys.stdout.write("\n")
        return 0
    first = next(iter(result.strategies.values()))
    print(f"{scenario.name}: {scenario.description}")
    print(f"seed {result.seed}, {format_duration(scenario.horizon)} simulated, "
          f"{scenario.replications} replication(s), {first['enqueued']:,.0f} jobs, "
          f"{first['deploys']:,.0f} deploys")
    print()
    print(format_run_table(result))
    return 0


def _json_default(value: Any) -> Any:
    raise TypeError(f"not JSON: {value!r}")


def _cmd_scenarios(args: argparse.Namespace) -> int:
    from .scenario import bundled_scenarios

    scenarios = bundled_scenarios()
    if args.json:
        json.dump(scenarios, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    width = max(map(len, scenarios))
    for name, description in scenarios.items():
        print(f"{name:<{width}}  {description}")
    return 0


# -- sweep -----------------------------------------------------------------------------------


def _grid_values(text: str) -> tuple[str, list[Any]]:
    """``key=v1,v2,...``: values are TOML where they parse as TOML, else strings."""
    import tomllib

    key, sep, rest = text.partition("=")
    if not sep or not key.strip() or not rest.strip():
        raise SimError(f"--grid {text!r}: write KEY=VALUE,VALUE,... e.g. deploys.every=1h,4h")
    values: list[Any] = []
    for raw in rest.split(","):
        raw = raw.strip()
        try:
            values.append(tomllib.loads(f"v = {raw}")["v"])
        except tomllib.TOMLDecodeError:
            values.append(raw)
    return key.strip(), values


def _cmd_sweep(args: argparse.Namespace) -> int:
    from .analysis.sweep import make_cells, run_sweep, save
    from .scenario import load_scenario, with_overrides
    from .scenario.reading import check_rate_units

    scenarios = [load_scenario(name) for name in args.scenario]
    if args.set:
        scenarios = [with_overrides(s, args.set) for s in scenarios]
    grid = dict(_grid_values(g) for g in args.grid or [])
    if not grid:
        raise SimError("--grid: give at least one KEY=VALUE,VALUE,... to sweep over")
    for key, values in grid.items():
        for value in values:
            check_rate_units({key: value})  # the grid is text: a rate says per what
    cells = make_cells(scenarios, grid)
    _warn_overload([c.scenario for c in cells], [c.label for c in cells])
    df = run_sweep(scenarios, grid, args.strategy or None, executor=args.executor,
                   scheduler=args.scheduler, progress=args.progress_mode)
    csv_path, json_path = save(df, args.out)
    columns = ["scenario", *grid, "strategy", "completion_rate", "lost", "failed",
               "duplicate_item_executions", "wasted_work_s"]
    print(df[columns].to_string(index=False, float_format=lambda x: f"{x:.4g}"))
    print(f"\nwrote {csv_path} and {json_path}")
    return 0


# -- report ----------------------------------------------------------------------------------


def _cmd_report(args: argparse.Namespace) -> int:
    from .progress import counter
    from .report import make_report

    progress: Any = {"quiet": False, "auto": True}.get(args.progress_mode)
    if progress is None:
        progress = counter("report", "cell", args.progress_mode)
    out = make_report(args.out, quick=args.quick, executor=args.executor,
                      scheduler=args.scheduler, progress=progress)
    print(f"wrote the report to {out}/README.md (plots, results.csv, results.json beside it)")
    return 0


# -- chaos and calibrate ---------------------------------------------------------------------

CHAOS_FLAGS = ("strategy", "workers", "jobs", "items", "item_time", "deploy_every", "grace",
               "crash_every", "duration", "seed")


def _chaos_values(args: argparse.Namespace) -> dict[str, Any]:
    return {k: getattr(args, k) for k in CHAOS_FLAGS if getattr(args, k, None) is not None}


def _say(mode: str = "auto") -> Any:
    """What chaos, calibrate and bench call with a status line: shown on a terminal (``auto``),
    always (``plain``, from --progress) or never (``quiet``)."""
    shown = mode == "plain" or (mode == "auto" and sys.stderr.isatty())
    return (lambda m: print(f"... {m}", file=sys.stderr, flush=True)) if shown else None


def _cmd_chaos(args: argparse.Namespace) -> int:
    from .chaos import ChaosConfig, format_chaos, run_chaos

    if args.system is not None:
        if args.strategy is not None:
            raise SimError("--system and --strategy: give one (a real system, or one of the "
                           "harness's own strategies)")
        from .chaos.real import SYSTEM_DEFAULTS, format_system, run_system

        config = ChaosConfig.from_args(SYSTEM_DEFAULTS, **_chaos_values(args))
        audit = run_system(config, args.system, settings=_system_settings(args),
                           progress=_say(args.progress_mode))
        return _show(audit, args.json, format_system)
    _system_settings(args)  # none without --system
    audit = run_chaos(ChaosConfig.from_args(**_chaos_values(args)),
                      progress=_say(args.progress_mode))
    return _show(audit, args.json, format_chaos)


def _cmd_calibrate(args: argparse.Namespace) -> int:
    from .chaos import CALIBRATION_DEFAULTS, ChaosConfig, format_calibration, run_calibration

    if args.system_list:
        if args.strategy_list:
            raise SimError("--system and --strategy: give one (real systems, or the harness's "
                           "own strategies)")
        from .chaos.real import SYSTEM_DEFAULTS, run_system_calibration

        config = ChaosConfig.from_args(SYSTEM_DEFAULTS, **_chaos_values(args))
        result = run_system_calibration(config, args.system_list,
                                        progress=_say(args.progress_mode),
                                        replications=args.replications,
                                        settings=_system_settings(args),
                                        traces=args.traces)
        return _show(result, args.json, format_calibration)
    _system_settings(args)  # none without --system
    if args.traces is not None:
        raise SimError("--traces: only with --system (the traces of the real systems' runs)")
    config = ChaosConfig.from_args(CALIBRATION_DEFAULTS, **_chaos_values(args))
    result = run_calibration(config, args.strategy_list or None, progress=_say(args.progress_mode),
                             replications=args.replications)
    return _show(result, args.json, format_calibration)


def _system_settings(args: argparse.Namespace) -> dict[str, str]:
    """The ``--setting KEY=VALUE`` pairs, for a real system's run; SimError if malformed or
    given without ``--system``."""
    pairs = args.setting or []
    if pairs and not (getattr(args, "system", None) or getattr(args, "system_list", None)):
        raise SimError("--setting: only with --system (it sets a real system's own settings)")
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise SimError(f"--setting {pair!r}: write KEY=VALUE, e.g. maintenance_chance=1000000")
        out[key.strip()] = value.strip()
    store, exactly_once = getattr(args, "store", None), getattr(args, "exactly_once", False)
    if store is not None or exactly_once:
        from .chaos.real.systems import RESUMABLE

        flag = "--store" if store is not None else "--exactly-once"
        if getattr(args, "system", None) not in RESUMABLE:
            raise SimError(f"{flag}: only with a resumable --system ({', '.join(RESUMABLE)}): "
                           f"the store the engine keeps its progress in")
        if store is not None:
            out["store"] = store
        if exactly_once:
            out["exactly_once"] = "true"
    return out


def _show(result: Any, as_json: bool, table: Any) -> int:
    """Print ``result`` as JSON or as the table ``table(result)`` makes."""
    if as_json:
        json.dump(result, sys.stdout, indent=2, allow_nan=False)
        sys.stdout.write("\n")
    else:
        print(table(result))
    return 0


def _add_chaos_flags(p: argparse.ArgumentParser, defaults: dict[str, Any]) -> None:
    def d(key: str) -> str:
        return f" (default {defaults[key]})"

    p.add_argument("--workers", type=int, help="worker processes" + d("workers"))
    p.add_argument("--jobs", type=int, help="jobs enqueued at the start" + d("jobs"))
    p.add_argument("--items", type=int, help="items per job" + d("items"))
    p.add_argument("--item-time", help="work per item" + d("item_time"))
    p.add_argument("--deploy-every", help="SIGTERM to every worker this often" + d("deploy_every"))
    p.add_argument("--grace", help="SIGTERM to SIGKILL" + d("grace"))
    p.add_argument("--crash-every", help="a random worker SIGKILLed this often on average"
                   + d("crash_every"))
    p.add_argument("--duration", help="the run stops by itself after this long" + d("duration"))
    p.add_argument("--seed", type=int, help="seed of the deploy and crash schedule" + d("seed"))
    p.add_argument("--json", action="store_true", help="print one JSON object")
    _add_progress_flags(p)


def _add_progress_flags(p: argparse.ArgumentParser) -> None:
    """--quiet and --progress, into ``args.progress_mode`` (a mode of
    ``deploysim.sim.progress``)."""
    group = p.add_mutually_exclusive_group()
    group.add_argument("--quiet", dest="progress_mode", action="store_const", const="quiet",
                       help="show no progress on stderr")
    group.add_argument("--progress", dest="progress_mode", action="store_const", const="plain",
                       help="progress as a plain line on stderr every few seconds, even on a "
                            "terminal (the default off a terminal)")
    p.set_defaults(progress_mode="auto")


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("deploysim")
    except PackageNotFoundError:
        return "unknown (not installed)"


# -- bench -----------------------------------------------------------------------------------


def _cmd_bench(args: argparse.Namespace) -> int:
    if args.what == "engine":
        from .bench.engine import bench_engine, format_table
    else:
        from .bench.sim import bench_sim as bench_engine  # type: ignore[assignment]
        from .bench.sim import format_table  # type: ignore[assignment]

    if args.what == "engine":
        if args.report:
            raise SimError("--report: only with bench sim (it times the default report)")
        result = bench_engine(quick=args.quick, progress=_say(args.progress_mode),
                              store=args.store)
        return _show(result, args.json,
                     lambda r: f"engine on the {args.store} store\n\n"
                               f"{format_table(r, args.store)}")
    if args.store != "sqlite":
        raise SimError("--store: only with bench engine (the store the engine checkpoints to)")
    result = bench_engine(quick=args.quick, progress=_say(args.progress_mode),
                          report=args.report)
    return _show(result, args.json, format_table)


# -- demo ------------------------------------------------------------------------------------


def _cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo
    from .durations import parse_duration

    item_time = parse_duration(args.item_time, "--item-time")
    interrupt = None if args.interrupt_after is None else parse_duration(
        args.interrupt_after, "--interrupt-after")
    summary = run_demo(args.db, rows=args.rows, item_time=item_time, interrupt_after=interrupt,
                       reset=args.reset, report=print)
    return 0 if summary.exactly_once else 1


# -- main ------------------------------------------------------------------------------------


SETTING_HELP = ("with --system: one of the system's own settings, in its units after the "
                "run's compression (repeatable; its JSON's 'settings' lists them)")

def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every sub-command."""
    p = _Parser(prog="deploysim", description="What happens to a running job when you deploy.")
    p.add_argument("-v", "--verbose", action="store_true", help="log what the engine does")
    p.add_argument("--version", action="version", version=f"deploysim {_version()}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = sub.add_parser("run", help="simulate a scenario for each strategy")
    run.add_argument("scenario", help="a bundled scenario name (see `deploysim scenarios`) or a "
                                      "path to a .toml file")
    run.add_argument("--strategy", action="append", metavar="NAME",
                     help="run only this strategy (repeatable): sidekiq, resque, celery, split, "
                          "resumable, or a variant the scenario defines")
    run.add_argument("--seed", type=int, help="override the scenario's seed")
    run.add_argument("--set", action="append", metavar="KEY=VALUE",
                     help="override a scenario value, e.g. deploys.every=30m (repeatable)")
    run.add_argument("--json", action="store_true", help="print one JSON object")
    run.add_argument("--compact", action="store_true", help="with --json: on one line")
    _add_progress_flags(run)
    run.set_defaults(func=_cmd_run)

    sc = sub.add_parser("scenarios", help="list the bundled scenarios")
    sc.add_argument("--json", action="store_true")
    sc.set_defaults(func=_cmd_scenarios)

    report = sub.add_parser("report", help="the completion-rate report: every strategy over "
                                           "deploy rhythms and job lengths, with plots")
    report.add_argument("--out", default="reports", help="output folder (default: reports)")
    report.add_argument("--quick", action="store_true", help="a coarse grid, in seconds")
    report.add_argument("--executor", choices=EXECUTORS,
                        default="processes", help="where cells run (default: all cores)")
    report.add_argument("--scheduler", metavar="ADDRESS",
                        help="with --executor dask: a running scheduler")
    _add_progress_flags(report)
    report.set_defaults(func=_cmd_report)

    sweep = sub.add_parser("sweep", help="scenarios x strategies x a grid of values, to CSV/JSON")
    sweep.add_argument("scenario", nargs="+", help="bundled scenario names or .toml paths")
    sweep.add_argument("--grid", action="append", metavar="KEY=V1,V2,...",
                       help="a scenario key and the values to sweep it over (repeatable)")
    sweep.add_argument("--set", action="append", metavar="KEY=VALUE",
                       help="a value set on every scenario (repeatable)")
    sweep.add_argument("--strategy", action="append", metavar="NAME")
    sweep.add_argument("--out", default="sweep", help="folder for results.csv and .json")
    sweep.add_argument("--executor", choices=EXECUTORS,
                       default="processes", help="where cells run (default: all cores)")
    sweep.add_argument("--scheduler", metavar="ADDRESS",
                       help="with --executor dask: a running scheduler (default: a local cluster)")
    _add_progress_flags(sweep)
    sweep.set_defaults(func=_cmd_sweep)

    from .chaos.config import CALIBRATION_DEFAULTS, CHAOS_STRATEGIES, ChaosConfig
    from .chaos.real.config import SYSTEM_DEFAULTS, SYSTEM_NAMES
    from .chaos.real.systems import RESUMABLE

    chaos_defaults = ChaosConfig().flags()
    systems = ", ".join(SYSTEM_NAMES)
    system_defaults = " ".join(
        f"--{k.replace('_', '-')} {v}" for k, v in SYSTEM_DEFAULTS.flags().items()
        if k != "strategy")
    chaos = sub.add_parser("chaos", help="real worker processes, real SIGTERM and SIGKILL, and "
                                         "an audit of what was lost or repeated")
    chaos.add_argument("--strategy", help=f"one of {', '.join(CHAOS_STRATEGIES)} "
                                          f"(default {chaos_defaults['strategy']})")
    chaos.add_argument("--system", help=f"a real job system instead: one of {systems}; "
                                        f"defaults then: {system_defaults}")
    chaos.add_argument("--setting", action="append", metavar="KEY=VALUE", help=SETTING_HELP)
    resumable_systems = ", ".join(RESUMABLE)
    chaos.add_argument("--store", choices=("redis", "postgres"),
                       help=f"with --system {resumable_systems}: where the engine keeps its "
                            f"progress (default redis: the run's Redis; postgres starts a "
                            f"PostgreSQL server of the run's own)")
    chaos.add_argument("--exactly-once", action="store_true",
                       help="with a resumable --system and --store postgres: each item's effect "
                            "commits with the cursor")
    _add_chaos_flags(chaos, chaos_defaults)
    chaos.set_defaults(func=_cmd_chaos)

    calibrate = sub.add_parser("calibrate", help="one compressed scenario for real and in the "
                                                 "simulator, side by side per strategy")
    calibrate.add_argument("--strategy", dest="strategy_list", action="append", metavar="NAME",
                           help="calibrate only this strategy (repeatable; default: all)")
    calibrate.add_argument("--system", dest="system_list", action="append", metavar="NAME",
                           help=f"calibrate a real job system instead (repeatable, or all: "
                                f"every one but {', '.join(RESUMABLE)}): one of {systems}; "
                                f"defaults then: {system_defaults}")
    calibrate.add_argument("--setting", action="append", metavar="KEY=VALUE", help=SETTING_HELP)
    calibrate.add_argument("--replications", type=int, default=1, metavar="N",
                           help="run each N times (seeds --seed, +1, ...) and compare the sums "
                                "(default 1)")
    calibrate.add_argument("--traces", metavar="DIR",
                           help="with --system: keep each run's jobs and deploys as CSV traces "
                                "in DIR (NAME-seedS-jobs.csv, -deploys.csv), which a scenario "
                                "can replay")
    _add_chaos_flags(calibrate, CALIBRATION_DEFAULTS.flags())
    calibrate.set_defaults(func=_cmd_calibrate)

    bench = sub.add_parser("bench", help="measure the engine or the simulator")
    bench.add_argument("what", choices=("engine", "sim"))
    bench.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    bench.add_argument("--store", default="sqlite", choices=("sqlite", "redis", "postgres"),
                       help="bench engine: the store it checkpoints to (default sqlite; redis "
                            "and postgres start a server of their own)")
    bench.add_argument("--report", action="store_true",
                       help="bench sim: also time the default report end to end "
                            "(report_wall_s; the quick one with --quick)")
    bench.add_argument("--json", action="store_true")
    _add_progress_flags(bench)
    bench.set_defaults(func=_cmd_bench)

    demo = sub.add_parser("demo", help="a resumable job over a SQLite table: Ctrl-C it, run it "
                                       "again, and it goes on where it stopped")
    demo.add_argument("--db", default="demo.db", help="the SQLite file (default: demo.db)")
    demo.add_argument("--rows", type=int, default=2000, help="orders to process (default 2000)")
    demo.add_argument("--item-time", default="5ms", help="work per order (default 5ms)")
    demo.add_argument("--interrupt-after", metavar="DURATION",
                      help="send ourselves SIGINT after this long, as a Ctrl-C would")
    demo.add_argument("--reset", action="store_true", help="start over")
    demo.set_defaults(func=_cmd_demo)
    return p


# -- what each command needs ----------------------------------------------------------------

_SIMULATOR = ("simpy", "numpy", "scipy")
"""What a scenario needs to be read and simulated."""

_NEEDS: dict[str, tuple[str, ...]] = {
    "run": (*_SIMULATOR, "tqdm"),
    "scenarios": ("numpy", "scipy"),
    "sweep": (*_SIMULATOR, "pandas", "tqdm"),
    "report": SIM_PACKAGES,
    "chaos": ("numpy", "scipy", "tabulate"),
    "calibrate": (*_SIMULATOR, "tabulate"),
    "bench engine": (),
    "bench sim": _SIMULATOR,
    "demo": ("tqdm",),
}
"""The packages of the ``sim`` extra each command imports (``demo`` shows a tqdm bar)."""

_TABLES = ("run", "bench engine", "bench sim")
"""Commands that print a text table (``deploysim.sim.text``) unless given --json."""


def _command(args: argparse.Namespace) -> str:
    """The command as typed: "deploysim run", "deploysim bench sim"."""
    what = getattr(args, "what", None)
    return " ".join(("deploysim", args.command, *([what] if what else [])))


def _needs(args: argparse.Namespace) -> tuple[str, ...]:
    """The packages of the ``sim`` extra that the command in ``args`` imports."""
    command = _command(args).removeprefix("deploysim ")
    needs = _NEEDS.get(command, SIM_PACKAGES)
    if command in _TABLES and not args.json:
        needs = (*needs, "tabulate")
    return needs


def _missing(packages: Sequence[str]) -> list[str]:
    """Those of ``packages`` that cannot be imported."""
    missing = []
    for name in packages:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    return missing


def _install_advice(command: str, missing: Sequence[str]) -> str:
    return (f"`{command}` needs the simulator's packages (missing: {', '.join(missing)}); "
            "install them with: pip install 'deploysim[sim]'")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``deploysim`` command."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    missing = _missing(_needs(args))
    if missing:
        _fail(_install_advice(_command(args), missing))
    try:
        return int(args.func(args) or 0)
    except USER_ERRORS as exc:
        _fail(str(exc))
    except ModuleNotFoundError as exc:
        package = (exc.name or "").partition(".")[0]
        if package not in SIM_PACKAGES:
            raise
        _fail(_install_advice(_command(args), [package]))
    except KeyboardInterrupt:
        print("deploysim: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
