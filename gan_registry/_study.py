"""Hyperparameter studies on Optuna: a TOML file names the fixed `gan run` settings, a target the evaluations log
and a search space; each trial (and each seed of it) is a normal run folder trained by a `gan run` child process.

    gan study run lr.toml --out studies/lr --workers 2     # trains what is missing; again after a kill carries on
    gan study show studies/lr                                # best trials, a reproducing command, pictures

A study folder holds `study.toml` (the file it was started with), `study.json` (where its Optuna storage is),
`study.db` (the default SQLite storage), `trials/NNNN[-seedS]/` (run folders), `logs/` (each run's output) and the
pictures `gan study show` draws. The storage is the record: a trial is counted when Optuna marks it COMPLETE.

Layer: services and duties (docs/architecture.md).
"""
from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import math
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
import warnings
from pathlib import Path
from typing import Any, Callable, Iterator

# optuna (~1 s with sqlalchemy) at module level: only the `gan study` commands and `Study` load this module.
import optuna
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.trial import TrialState

from . import _threads as threads_mod
from ._files import last_error_line, read_record, read_toml, write_record
from ._plan import RUN_FLAG_ALIASES, Settings, make_plan, run_flags, settings_from_table
from ._runlock import writing
from .errors import TargetMissing, UserError



@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Without Optuna's notes on what a study here uses on purpose: heartbeats and retries ("experimental" since
    2.8), and heartbeats outside Study.optimize (a worker beats for its trial itself)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        warnings.filterwarnings("ignore", message="Heartbeat of storage")
        yield

STUDY_FILE = "study.toml"
RECORD_FILE = "study.json"
DB_NAME = "study.db"
TRAINED_MARK = ".study-trained"
SAMPLERS = ("tpe", "random", "grid")
PRUNERS = ("none", "median", "hyperband")
DIRECTIONS = ("maximize", "minimize")
HEARTBEAT_S = 5
"""How often a worker tells the storage its trial is alive."""
GRACE_S = 60
"""A RUNNING trial whose worker has not said so for this long is taken as dead, failed and run again (workers on
this machine whose process is gone are known dead at once)."""
POLL_S = 1.0
"""How often a worker reads its run's metrics.jsonl for new evaluations (and the pruner's verdict)."""
WAIT_S = 1.0
"""How often a worker with no trial to start looks again while others run the last ones."""
FAILURES_IN_A_ROW = 3
"""Trials failing one after another, none complete, stop the study: the settings, not bad luck, are at fault."""
STUDY_KEYS = ("name", "target", "direction", "trials", "seeds", "sampler", "pruner", "startup-trials", "seed", "first")


# -- the study file -------------------------------------------------------------------------------------------------
@dataclasses.dataclass
class Dimension:
    """One searched setting: a list of choices, or a range {low, high, log?, step?} of floats or whole numbers."""

    key: str
    choices: list[Any] | None = None
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None

    @classmethod
    def parse(cls, key: str, value: Any, where: str) -> Dimension:
        if isinstance(value, list):
            if not value:
                raise UserError(f"{where}: [search] \"{key}\" has no choices")
            if not all(isinstance(v, (str, int, float, bool)) for v in value):
                raise UserError(f"{where}: [search] \"{key}\": choices are numbers, text or true/false")
            return cls(key, choices=list(value))
        if not isinstance(value, dict):
            raise UserError(f"{where}: [search] \"{key}\" is a list of choices or a table {{low, high, log, step}}")
        unknown = set(value) - {"low", "high", "log", "step"}
        if unknown:
            raise UserError(f"{where}: [search] \"{key}\": unknown key '{sorted(unknown)[0]}' (valid: low, high, log,"
                            " step)")
        low, high, step = value.get("low"), value.get("high"), value.get("step")
        for name, number in (("low", low), ("high", high), ("step", step)):
            if (number is not None or name != "step") and (isinstance(number, bool) or not isinstance(
                    number, (int, float)) or not math.isfinite(number)):
                raise UserError(f"{where}: [search] \"{key}\": {name} must be a number, got {number!r}")
        if not low < high:
            raise UserError(f"{where}: [search] \"{key}\": an empty range (low {low} is not below high {high})")
        log = value.get("log", False)
        if not isinstance(log, bool):
            raise UserError(f"{where}: [search] \"{key}\": log is true or false, got {log!r}")
        if log and low <= 0:
            raise UserError(f"{where}: [search] \"{key}\": a log range starts above 0, got low {low}")
        if step is not None and (step <= 0 or log):
            raise UserError(f"{where}: [search] \"{key}\": step is positive, and a log range takes none")
        return cls(key, low=low, high=high, log=log, step=step)

    @property
    def whole(self) -> bool:
        """A range of whole numbers: both ends (and the step, if any) written without a point."""
        return all(isinstance(v, int) for v in (self.low, self.high, self.step) if v is not None)

    def distribution(self) -> Any:
        if self.choices is not None:
            return optuna.distributions.CategoricalDistribution(self.choices)
        if self.whole:
            return optuna.distributions.IntDistribution(int(self.low), int(self.high), log=self.log,
                                                        step=int(self.step or 1))
        return optuna.distributions.FloatDistribution(self.low, self.high, log=self.log, step=self.step)

    def ends(self) -> list[Any]:
        """The values the plan is checked at before any trial: every choice, or both ends of the range."""
        return list(self.choices) if self.choices is not None else [self.low, self.high]

    def grid(self, where: str) -> list[Any]:
        if self.choices is not None:
            return list(self.choices)
        if self.step is None and not self.whole:
            raise UserError(f"{where}: sampler \"grid\" needs choices or a step in [search] \"{self.key}\"")
        step = self.step or 1
        count = int(round((self.high - self.low) / step)) + 1
        return [self.low + i * step for i in range(count) if self.low + i * step <= self.high + 1e-12]


@dataclasses.dataclass
class StudySpec:
    """What a study file says: the fixed `gan run` settings, the [study] table and the [search] space."""

    path: Path
    text: str
    values: dict[str, Any]
    params: dict[str, dict[str, Any]]
    search: dict[str, Dimension]
    name: str
    target: str
    direction: str = "maximize"
    trials: int = 20
    seeds: int = 1
    sampler: str = "tpe"
    pruner: str = "median"
    startup_trials: int | None = None
    seed: int = 0
    first: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    """Points tried first, in order, before the sampler picks any (a baseline, a known good setting)."""

    @classmethod
    def read(cls, path: Path) -> StudySpec:
        where = str(path)
        data = read_toml(path, flag="")
        text = path.read_text(encoding="utf-8")
        table = data.pop("study", None)
        space = data.pop("search", None)
        if not isinstance(table, dict) or not isinstance(space, dict) or not space:
            raise UserError(f"{where}: a study file has a [study] table (target, direction, trials, ...) and a "
                            "[search] table of the settings to search")
        unknown = set(table) - set(STUDY_KEYS)
        if unknown:
            raise UserError(f"{where}: [study] has an unknown key '{sorted(unknown)[0]}' (valid: "
                            f"{', '.join(STUDY_KEYS)})")
        values, params = settings_from_table(data, where)
        if not values.get("eval_every"):
            raise UserError(f"{where}: set eval-every: the study reads its target from the runs' evaluations")
        target = table.get("target")
        if not isinstance(target, str) or not target.strip():
            raise UserError(f"{where}: [study] target names a value the evaluations log (e.g. \"fid\" for eval/fid)")
        spec = cls(path, text, values, params, {k: Dimension.parse(k, v, where) for k, v in space.items()},
                   name=str(table.get("name", path.stem)), target=target.strip().removeprefix("eval/"))
        for key in ("direction", "sampler", "pruner"):
            if key in table:
                setattr(spec, key, table[key])
        for key in ("trials", "seeds", "startup-trials", "seed"):
            if key in table:
                value = table[key]
                if isinstance(value, bool) or not isinstance(value, int) or value < (0 if key == "seed" else 1):
                    raise UserError(f"{where}: [study] {key} must be a positive whole number, got {value!r}")
                setattr(spec, key.replace("-", "_"), value)
        first = table.get("first", [])
        if not isinstance(first, list) or not all(isinstance(point, dict) for point in first):
            raise UserError(f"{where}: [study] first is a list of tables of search values, e.g. "
                            "first = [{\"batch-size\" = 64}]")
        for point in first:
            unknown = set(point) - set(spec.search)
            if unknown:
                raise UserError(f"{where}: [study] first names \"{sorted(unknown)[0]}\", which [search] does not")
        spec.first = [dict(point) for point in first]
        spec.check_choices()
        return spec

    def check_choices(self) -> None:
        where = str(self.path)
        for key, allowed in (("direction", DIRECTIONS), ("sampler", SAMPLERS), ("pruner", PRUNERS)):
            if getattr(self, key) not in allowed:
                raise UserError(f"{where}: unknown {key} {getattr(self, key)!r} (valid: {', '.join(allowed)})")
        if self.sampler == "grid":
            points = math.prod(len(d.grid(where)) for d in self.search.values())
            if self.trials > points:
                raise UserError(f"{where}: the grid has {points} points, fewer than trials = {self.trials}")

    def run_settings(self, chosen: dict[str, Any], seed_index: int = 0) -> tuple[dict[str, Any], dict[str, Any]]:
        """The `gan run` settings and parameters of one trial's values (search key -> value) and seed."""
        values = dict(self.values)
        params = {slot: dict(table) for slot, table in self.params.items()}
        for key, value in chosen.items():
            if "." in key:
                slot, _, name = key.partition(".")
                params.setdefault(slot, {})[name] = value
            else:
                name = key.replace("-", "_")
                name = RUN_FLAG_ALIASES.get(name, name)
                values[name] = [value] if name in RUN_FLAG_ALIASES.values() else value
        values["seed"] = values.get("seed", 0) + seed_index
        return values, params

    def command(self, chosen: dict[str, Any], seed_index: int, run_dir: Path | None = None) -> list[str]:
        """`gan run` arguments that train this trial's seed (into `run_dir`, else a new folder under runs/)."""
        values, params = self.run_settings(chosen, seed_index)
        seed = values.pop("seed")
        return ["run", *run_flags(values, params), "--seed", str(seed)] + (["--out", str(run_dir)] if run_dir else [])

    def same_study(self, other: StudySpec) -> bool:
        """The same settings, target and space: what a folder's trials were trained with (the number of trials
        may grow)."""
        def key(spec: StudySpec) -> Any:
            return (spec.values, spec.params, {k: dataclasses.asdict(d) for k, d in spec.search.items()},
                    spec.target, spec.direction, spec.seeds, spec.sampler, spec.name)
        return key(self) == key(other)


def check_plans(registry: Any, spec: StudySpec) -> None:
    """Refuse now what a trial would refuse: every search key at each choice (or both ends of its range), the
    others at their first, checked by the plan `gan run` makes."""
    from . import evaluation

    where = str(spec.path)
    for key in spec.search:
        if "." not in key:
            name = key.replace("-", "_")
            if RUN_FLAG_ALIASES.get(name, name) not in {f.name for f in dataclasses.fields(Settings)} - {"params"}:
                raise UserError(f"{where}: [search] \"{key}\" is not a `gan run` flag nor a KIND.PARAM parameter")
    first = {key: d.ends()[0] for key, d in spec.search.items()}

    def plan_of(chosen: dict[str, Any]) -> Any:
        values, params = spec.run_settings(chosen)
        try:
            return make_plan(registry, Settings(**values, params=params), for_training=False)
        except TypeError as error:
            raise UserError(f"invalid settings: {error}") from None

    try:
        plan = plan_of(first)
        evaluator = evaluation.for_plan(registry, plan)  # the settings, and the metrics --eval-every names
    except UserError as error:
        raise UserError(f"{where}: {error}") from None
    logged = names_logged(plan, evaluator)
    if logged is not None and spec.target not in logged:
        raise UserError(f"{where}: the evaluations log no eval/{spec.target} (they log: {', '.join(sorted(logged))});"
                        " set [study] target to one of them")
    for key, dimension in spec.search.items():
        for value in dimension.ends():
            try:
                plan_of({**first, key: value})
            except UserError as error:
                raise UserError(f"{where}: [search] \"{key}\" = {value!r}: {error}") from None
    for point in spec.first:
        try:
            plan_of({**first, **point})
        except UserError as error:
            raise UserError(f"{where}: [study] first {point}: {error}") from None


PROBE_SAMPLES = 500
"""Real points the metrics measure to tell what they log."""


def names_logged(plan: Any, evaluator: Any) -> set[str] | None:
    """What the evaluations will log (as eval/NAME), found by measuring real points of the dataset: cheap where the
    data are points and every metric takes samples. None elsewhere (an extractor or a classifier to load): there the
    first trial tells."""
    from . import evaluation

    if len(plan.spec.sample_shape) == 3 or any(m.inputs != "samples" for m in evaluator.metrics):
        return None
    try:
        real = plan.data.load()[:PROBE_SAMPLES]
        points = evaluation.ImageSet(real, plan.data.value_range, f"{len(real)} real points")
        report = evaluator.measure(points, real, plan.data, required=False)
    except Exception:  # noqa: BLE001 -- a plugin failing here fails the same way in the first trial, which says why
        return None
    return {name for values in report["metrics"].values() for name in values}


# -- storage --------------------------------------------------------------------------------------------------------
def default_storage(folder: Path) -> str:
    return f"sqlite:///{folder.absolute() / DB_NAME}"


def open_storage(url: str) -> RDBStorage:
    """The RDB storage at `url`, with heartbeats: a trial whose worker died is failed and queued again."""
    kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):  # workers write heartbeats side by side: wait for the file's lock, not 5 s
        kwargs["engine_kwargs"] = {"connect_args": {"timeout": 120}}
    try:
        with _quiet():
            return RDBStorage(url, heartbeat_interval=HEARTBEAT_S, grace_period=GRACE_S,
                              heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(), **kwargs)
    except Exception as error:  # noqa: BLE001 -- SQLAlchemy's and the drivers' errors: any means unusable
        said = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise UserError(f"--storage {url}: cannot open it ({said})") from None


class _GridSampler(optuna.samplers.GridSampler):
    """Optuna's grid sampler, less its `Study.stop()` once the grid is done: workers tell their trials outside
    `Study.optimize`, where stop() raises (and the trial told last would stay RUNNING), and they count the COMPLETE
    trials themselves."""

    def after_trial(self, study: Any, trial: Any, state: Any, values: Any) -> None:
        pass


def _sampler(spec: StudySpec, stream: int = 0) -> Any:
    """The study's sampler; `stream` tells workers apart, whose samplers would draw the same points from one seed."""
    seed = (spec.seed * 1_000_003 + stream) % 2**32
    startup = {} if spec.startup_trials is None else {"n_startup_trials": spec.startup_trials}
    if spec.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if spec.sampler == "grid":
        return _GridSampler({k: d.grid(str(spec.path)) for k, d in spec.search.items()}, seed=seed)
    return optuna.samplers.TPESampler(seed=seed, **startup)


def _pruner(spec: StudySpec) -> Any:
    if spec.pruner == "median":
        startup = {} if spec.startup_trials is None else {"n_startup_trials": spec.startup_trials}
        return optuna.pruners.MedianPruner(**startup)
    if spec.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner()
    return optuna.pruners.NopPruner()


def load(folder: Path, storage: str | None = None, stream: int = 0) -> tuple[StudySpec, Any, dict[str, Any]]:
    """A study folder's spec, its Optuna study and its record (study.json)."""
    folder = Path(folder)
    record = read_record(folder / RECORD_FILE)
    if not isinstance(record, dict) or not (folder / STUDY_FILE).is_file():
        raise UserError(f"{folder} holds no study (make one with `gan study run STUDY.toml --out {folder}`)")
    spec = StudySpec.read(folder / STUDY_FILE)
    spec.name = str(record.get("name", spec.name))  # the copy's file name is not the study's
    spec.trials = int(record.get("trials", spec.trials))
    spec.pruner = record.get("pruner", spec.pruner)
    url = storage or record.get("storage") or default_storage(folder)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = optuna.load_study(study_name=spec.name, storage=open_storage(url), sampler=_sampler(spec, stream),
                                  pruner=_pruner(spec))
    except KeyError:
        raise UserError(f"{url} holds no study named {spec.name!r}") from None
    return spec, study, record


# -- one trial ------------------------------------------------------------------------------------------------------
def trial_name(frozen: Any) -> str:
    """A trial's folder name: a retried trial trains in the folder of the trial it retries, going on from its
    checkpoint."""
    with _quiet():
        original = RetryHeartbeatStaleTrialCallback.retried_trial_number(frozen)
    return f"{frozen.number if original is None else original:04d}"


def read_evaluations(run_dir: Path, target: str) -> tuple[dict[int, float], set[str]]:
    """(step -> target value, every eval/ name logged) of a run's metrics.jsonl; a line still being written is
    left for the next read."""
    found: dict[int, float] = {}
    names: set[str] = set()
    try:
        text = (run_dir / "metrics.jsonl").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return found, names
    for line in text.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if not isinstance(record, dict):
            continue
        names |= {k.removeprefix("eval/") for k in record if k.startswith("eval/") and k != "eval/best_step"}
        value = record.get(f"eval/{target}")
        if isinstance(record.get("step"), int) and isinstance(value, (int, float)) and not isinstance(value, bool):
            found[record["step"]] = float(value)
    return found, names


class Worker:
    """Runs trials of one study, one at a time, until it has its number of COMPLETE trials."""

    def __init__(self, folder: Path, storage: str | None, threads: int, index: int,
                 say: Callable[[str], None]) -> None:
        self.folder, self.threads, self.say = Path(folder), threads, say
        self.label = ""
        # each worker, and each start of the study, draws its own points (a restart would repeat the first ones)
        started = len(load(self.folder, storage)[1].get_trials(deepcopy=False))
        self.spec, self.study, _ = load(self.folder, storage, stream=index * 100_003 + started)
        self.storage = self.study._storage
        self.token = uuid.uuid4().hex  # this worker's name in the trials it runs: a reused pid is not it
        self.child: subprocess.Popen | None = None
        self.failures = 0

    # -- who runs what ---------------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _asking(self) -> Iterator[None]:
        """One worker of this folder at a time counts the trials and asks for the next: no study ends with more
        than its number of COMPLETE trials."""
        with open(self.folder / ".ask.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def _fail_dead_trials(self) -> None:
        """RUNNING trials whose worker is gone: on this machine a worker whose process has ended (or a pid reused
        by another worker), elsewhere one silent past the grace period (Optuna's heartbeat). Each is failed and
        queued again with its parameters."""
        host = socket.gethostname()
        for trial in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            worker = trial.user_attrs.get("worker", {})
            if not isinstance(worker, dict) or worker.get("host") != host or worker.get("token") == self.token:
                continue
            if _alive(worker.get("pid")) and worker.get("pid") != os.getpid():
                continue
            try:
                self.storage.set_trial_user_attr(trial._trial_id, "reason", "its worker died mid-trial")
                failed = self.storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL)
            except optuna.exceptions.UpdateFinishedTrialError:  # another worker failed it first
                continue
            if failed:
                with _quiet():
                    RetryHeartbeatStaleTrialCallback()(self.study, self.storage.get_trial(trial._trial_id))
                self.say(f"trial {trial.number}: its worker died; queued again, to go on from its checkpoint")
        with _quiet():
            optuna.storages.fail_stale_trials(self.study)

    def _next(self) -> Any:
        """The next trial to run, None when the study has its trials, or "wait" while running ones may end it."""
        with self._asking():
            self._fail_dead_trials()
            trials = self.study.get_trials(deepcopy=False)
            complete = sum(t.state == TrialState.COMPLETE for t in trials)
            running = sum(t.state == TrialState.RUNNING for t in trials)
            if complete >= self.spec.trials:
                return None
            if complete + running >= self.spec.trials:
                return "wait"
            with _quiet():
                trial = self.study.ask({k: d.distribution() for k, d in self.spec.search.items()})
            trial.set_user_attr("worker", {"host": socket.gethostname(), "pid": os.getpid(), "token": self.token})
            self.storage.record_heartbeat(trial._trial_id)
            return trial

    def work(self) -> None:
        while True:
            trial = self._next()
            if trial is None:
                return
            if trial == "wait":  # another worker's trial may yet fail or be pruned
                time.sleep(WAIT_S)
                continue
            try:
                self.run_trial(trial)
            except optuna.exceptions.UpdateFinishedTrialError:  # failed as stale by another worker meanwhile
                self.say(f"trial {trial.number}: another worker failed it meanwhile (its heartbeat came late); its"
                         " retry carries on")

    # -- one trial -------------------------------------------------------------------------------------------------
    def run_trial(self, trial: Any) -> None:
        name, spec = trial_name(self.storage.get_trial(trial._trial_id)), self.spec
        self.reported: set[int] = set()
        chosen = dict(trial.params)
        shown = ", ".join(f"{k}={_short(v)}" for k, v in chosen.items())
        self.say(f"trial {trial.number}{self.label}: {shown}" + (f" (retrying trial {name.lstrip('0') or 0})"
                                                                 if name != f"{trial.number:04d}" else ""))
        if trial.user_attrs.get("reason"):  # a retry inherits the reason its first try failed
            trial.set_user_attr("reason", "")
        values: list[float] = []
        run_dirs = []
        try:
            for seed_index in range(spec.seeds):
                run_dir = self.folder / "trials" / (name + (f"-seed{seed_index}" if seed_index else ""))
                run_dirs.append(str(run_dir.relative_to(self.folder)))
                trial.set_user_attr("runs", run_dirs)
                trial.set_user_attr("command", "gan " + " ".join(spec.command(chosen, 0)))
                values.append(self._train(trial, chosen, seed_index, run_dir, report=seed_index == 0))
        except optuna.TrialPruned as pruned:
            self.study.tell(trial, state=TrialState.PRUNED)
            self.say(f"trial {trial.number}: pruned {pruned}")
            return
        except TargetMissing as missing:
            trial.set_user_attr("reason", str(missing))
            self.study.tell(trial, state=TrialState.FAIL)
            raise
        except _TrainingFailed as failed:
            trial.set_user_attr("reason", str(failed))
            self.study.tell(trial, state=TrialState.FAIL)
            self.say(f"trial {trial.number}: failed: {failed}")
            self.failures += 1
            if self.failures >= FAILURES_IN_A_ROW:
                raise UserError(f"{self.failures} trials failed one after another, the last: {failed}") from None
            return
        except BaseException:
            # stopped (Ctrl-C, SIGTERM): the trial stays RUNNING for the next start to fail and queue again
            raise
        self.failures = 0
        mean = sum(values) / len(values)
        trial.set_user_attr("values", values)
        trial.set_user_attr("std", _std(values))
        self.study.tell(trial, mean)
        self.say(f"trial {trial.number}: {spec.target} {_mean_text(values)}")

    def _train(self, trial: Any, chosen: dict[str, Any], seed_index: int, run_dir: Path, report: bool) -> float:
        """Train one seed of a trial to its end (or go on from its checkpoint) and return its last target value;
        intermediate values go to the pruner as they are logged."""
        log = self.folder / "logs" / f"{run_dir.name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        if not (run_dir / TRAINED_MARK).is_file():
            from ._matrix import train_to_the_end

            code, args = train_to_the_end(run_dir, self.spec.command(chosen, seed_index, run_dir),
                                          lambda args: self._run_child(args, log, trial, run_dir, report), log)
            if code != 0:
                raise _TrainingFailed(f"gan {args[0]} exited {code}: {last_error_line(log)} (log: {log})")
            (run_dir / TRAINED_MARK).write_text("trained\n")
        found, names = read_evaluations(run_dir, self.spec.target)
        if report:
            self._report(trial, found)
        if not found:
            raise TargetMissing(f"the evaluations logged no eval/{self.spec.target} (they logged: "
                                f"{', '.join(sorted(names)) or 'nothing'}); set [study] target to one of them")
        return found[max(found)]

    def _report(self, trial: Any, found: dict[int, float]) -> None:
        """Tell Optuna each evaluation not yet told, in order, asking the pruner after each (several may come in
        one read: the verdict is the one at the step it falls)."""
        for step in sorted(set(found) - self.reported):
            trial.report(found[step], step)
            self.reported.add(step)
            if trial.should_prune():
                raise optuna.TrialPruned(f"at step {step} ({self.spec.target} {found[step]:.4g})")

    def _run_child(self, args: list[str], log: Path, trial: Any, run_dir: Path, report: bool) -> int:
        """Run a `gan` child to its end, beating for `trial` all along (every seed of it: a trial silent past the
        grace period is failed as stale by the other workers) and reporting its evaluations if `report`."""
        env = {**os.environ, threads_mod.ENV: str(self.threads), "PYTHONUNBUFFERED": "1"}
        with open(log, "a", encoding="utf-8") as out:
            out.write(f"$ gan {' '.join(args)}\n")
            out.flush()
            self.child = subprocess.Popen([sys.executable, "-m", "gan_registry", *args], stdout=out,
                                          stderr=subprocess.STDOUT, env=env)
        beat = time.monotonic()
        try:
            while self.child.poll() is None:
                time.sleep(POLL_S)
                if time.monotonic() - beat >= HEARTBEAT_S:
                    self.storage.record_heartbeat(trial._trial_id)
                    beat = time.monotonic()
                if report:
                    self._report(trial, read_evaluations(run_dir, self.spec.target)[0])
            return self.child.returncode
        finally:
            self.stop_child()

    def stop_child(self) -> None:
        """Stop the training child (pruned, or this worker stopped): it saves at its next step and exits."""
        child, self.child = self.child, None
        if child is None or child.poll() is not None:
            return
        child.terminate()
        try:
            child.wait(timeout=60)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


class _TrainingFailed(Exception):
    """A trial's `gan run` exited with an error: the trial is FAIL, the study goes on."""


def _alive(pid: Any) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def _std(values: list[float]) -> float:
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1)) if len(values) > 1 else 0.0


def _mean_text(values: list[float]) -> str:
    mean = sum(values) / len(values)
    return f"{mean:.4g}" + (f" ± {_std(values):.2g} over {len(values)} seeds" if len(values) > 1 else "")


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


# -- the whole study ------------------------------------------------------------------------------------------------
def run(spec_path: str | Path, out: str | Path, *, trials: int | None = None, workers: int = 1,
        storage: str | None = None, pruner: str | None = None, registry: Any = None,
        say: Callable[[str], None] | None = None) -> Path:
    """Check a study file, then train its trials (what `gan study run` does); returns the study folder."""
    from .plugins import load_registry

    say = say or (lambda text: print(text, file=sys.stderr, flush=True))
    spec_path, out = Path(spec_path), Path(out)
    for name, value in (("trials", trials), ("workers", workers)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise UserError(f"--{name} must be a positive integer, got {value!r}")
    spec = StudySpec.read(spec_path)
    spec.trials = trials or spec.trials
    spec.pruner = pruner or spec.pruner
    spec.check_choices()
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out}: not a folder")
    record = read_record(out / RECORD_FILE) if (out / RECORD_FILE).is_file() else None
    if isinstance(record, dict) and (out / STUDY_FILE).is_file():
        stored = StudySpec.read(out / STUDY_FILE)
        stored.name = str(record.get("name", stored.name))
        if not stored.same_study(spec):
            raise UserError(f"--out {out} holds a study of other settings, target or space than {spec_path}; give "
                            "another --out")
        storage = storage or record.get("storage")
    registry = registry if registry is not None else load_registry()
    check_plans(registry, spec)
    if storage is not None:  # checked before the folder is made: a mistake leaves nothing behind
        open_storage(storage).remove_session()
    with writing(out):
        url = storage or default_storage(out)
        (out / STUDY_FILE).write_text(spec.text, encoding="utf-8")
        write_record(out / RECORD_FILE, {"storage": url, "name": spec.name, "trials": spec.trials,
                                        "pruner": spec.pruner, "target": spec.target, "direction": spec.direction})
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study = optuna.create_study(study_name=spec.name, storage=open_storage(url), direction=spec.direction,
                                    sampler=_sampler(spec), pruner=_pruner(spec), load_if_exists=True)
        if not study.get_trials(deepcopy=False):  # a new study: its first points go first, once
            for point in spec.first:
                study.enqueue_trial(point)
        threads = _threads_per_trial(workers)
        say(f"study {spec.name}: {spec.trials} trials of {spec.target} ({spec.direction}), {spec.sampler} sampler, "
            f"{spec.pruner} pruner; {workers} worker{'s' if workers > 1 else ''} x {threads} thread"
            f"{'s' if threads > 1 else ''}; storage {url}")
        if workers == 1:
            worker = Worker(out, url, threads, 0, say)
            try:
                worker.work()
            finally:
                worker.stop_child()
        else:
            _run_workers(out, url, workers, threads, say)
        say(f"study {spec.name}: done; `gan study show {out}` for the best trials and pictures")
    return out


def _threads_per_trial(workers: int) -> int:
    if os.environ.get(threads_mod.ENV):
        return threads_mod.choose()[0]
    return max(1, threads_mod.usable_cores() // workers)


def _run_workers(out: Path, url: str, workers: int, threads: int, say: Callable[[str], None]) -> None:
    """K worker processes (`gan study worker`), each running trials until the study has its number; their lines
    pass through, and the first one's error stops the others and is this command's."""
    children = [subprocess.Popen([sys.executable, "-m", "gan_registry", "study", "worker", str(out), "--storage",
                                  url, "--threads", str(threads), "--index", str(i)],
                                 stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
                for i in range(workers)]
    errors: list[str] = []

    def relay(child: subprocess.Popen) -> None:
        for line in child.stderr:  # type: ignore[union-attr]
            if line.startswith("Error: "):
                errors.append(line.strip().removeprefix("Error: "))
            else:
                say(line.rstrip("\n"))

    relays = [threading.Thread(target=relay, args=(child,), daemon=True) for child in children]
    for thread in relays:
        thread.start()
    try:
        while any(child.poll() is None for child in children):
            if errors:
                break
            time.sleep(0.5)
    finally:
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in children:
            child.wait()
        for thread in relays:
            thread.join(timeout=5)
    if errors:
        raise UserError(errors[0])
    failed = [c.returncode for c in children if c.returncode]
    if failed:
        raise UserError(f"a study worker exited {failed[0]}; its lines are above")


def work(folder: str | Path, storage: str | None, threads: int, index: int, say: Callable[[str], None]) -> None:
    """One worker process of `gan study run --workers K` (the hidden `gan study worker`)."""
    worker = Worker(Path(folder), storage, threads, index, say)
    worker.label = f" (worker {index + 1})"

    def stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)  # the study stopped: end the trial's child too, and leave the trial RUNNING
    try:
        worker.work()
    except KeyboardInterrupt:  # the next `gan study run` fails the trial left RUNNING and goes on with it
        raise SystemExit(128 + signal.SIGTERM) from None
    finally:
        worker.stop_child()

