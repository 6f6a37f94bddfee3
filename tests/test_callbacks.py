"""Callbacks: the trainer's side duties are callbacks of the core's own plugin, and a plugin can add its own."""
from __future__ import annotations

import types
from dataclasses import dataclass, field

import pytest
import torch

from gan_registry import Callback, Run, UserError, hookimpl
from gan_registry.testing import isolated_registry, toy_plugin

TOY = dict(arch="toy", objective="toy", dataset="toy", batch_size=8, device="cpu")


@dataclass
class CounterParams:
    every: int = field(default=1, metadata={"help": "count every N-th step"})


class Counter:
    def __init__(self, params: CounterParams) -> None:
        self.params, self.events = params, []

    def on_train_start(self, run):
        self.events.append(("start", run.step))

    def on_step_end(self, run):
        if run.step % self.params.every == 0:
            self.events.append(("step", run.step))

    def on_epoch_end(self, run):
        self.events.append(("epoch", run.epoch))

    def on_log(self, run, record):
        self.events.append(("log", record["step"], sorted(k for k in record if k.startswith("loss/"))))

    def on_train_end(self, run):
        self.events.append(("end", run.step, run.saved_step))


made: list[Counter] = []


def _counter(params):
    made.append(Counter(params))
    return made[-1]


counter_plugin = types.ModuleType("counter_plugin")
counter_plugin.register_callbacks = hookimpl(
    lambda register: register(Callback(name="counter", summary="records the events it sees", params=CounterParams,
                                       factory=_counter)))


def test_builtin_duties_are_listed_callbacks():
    registry = isolated_registry(toy_plugin)
    names = [c.name for c in registry.components("callback")]
    assert names == ["checkpoints", "csv", "evaluation", "generator-ema", "jsonl-log", "non-finite-guard", "progress",
                     "sample-grids", "stop-signals"]
    assert all(c.origin.distribution == "gan-registry" for c in registry.components("callback"))
    # --log csv, --eval-every, --ema
    assert [c.name for c in registry.components("callback") if not c.always] == ["csv", "evaluation", "generator-ema"]
    assert [c.name for c in registry.components("callback") if c.logger] == ["csv", "jsonl-log"]


def test_a_plugin_callback_sees_the_events_in_order(tmp_path):
    made.clear()
    registry = isolated_registry(toy_plugin, counter_plugin)
    # 256 toy points / batch 8 = 32 steps an epoch
    Run.new(**TOY, registry=registry, out=tmp_path / "run", steps=40, log_every=20, callbacks=["counter"],
            params={"callback": {"every": 10}}).train()
    events = made[0].events
    assert events[0] == ("start", 0)
    assert [e for e in events if e[0] == "step"] == [("step", 10), ("step", 20), ("step", 30), ("step", 40)]
    assert ("log", 20, ["loss/discriminator", "loss/generator"]) in events and ("epoch", 1) in events
    assert events.index(("epoch", 1)) < events.index(("step", 40))
    assert events[-1] == ("end", 40, 40)  # after the final checkpoint: checkpoints run at order 50, this at 100
    assert (tmp_path / "run" / "checkpoints" / "last.pt").exists()


def test_unknown_callback_and_unknown_callback_param_are_refused(tmp_path):
    registry = isolated_registry(toy_plugin, counter_plugin)
    with pytest.raises(UserError, match="unknown callback 'countr'; did you mean 'counter'"):
        Run.new(**TOY, registry=registry, out=tmp_path / "a", steps=2, callbacks=["countr"])
    with pytest.raises(UserError, match="no callback of this run has a parameter 'evry'"):
        Run.new(**TOY, registry=registry, out=tmp_path / "b", steps=2, callbacks=["counter"],
                params={"callback": {"evry": 3}})


def test_python_api_train_continue_equals_one_go(tmp_path):
    """Run.train(steps=N) on a run trained in this process continues as a resume would: bit for bit."""
    registry = isolated_registry(toy_plugin)
    straight = Run.new(**TOY, registry=registry, out=tmp_path / "straight", steps=50).train()
    split = Run.new(**TOY, registry=registry, out=tmp_path / "split", steps=20).train()
    assert split.step == 20
    split.train(steps=50)
    reopened = Run.open(tmp_path / "split", registry=registry)
    assert reopened.step == 50 and reopened.settings["steps"] == 50
    a, b = straight.checkpoint()["models"], reopened.checkpoint()["models"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    with pytest.raises(UserError, match="already at step 50"):
        reopened.train()
    assert torch.equal(straight.sample(8, seed=1), reopened.sample(8, seed=1))


class Boom:
    def __init__(self, params):
        pass

    def on_step_end(self, run):
        if run.step == 3:
            raise ValueError("boom at 3")


class BadTeardown:
    def __init__(self, params):
        pass

    def teardown(self, run):
        raise RuntimeError("cannot tidy up")


faulty_plugin = types.ModuleType("faulty_plugin")
faulty_plugin.register_callbacks = hookimpl(lambda register: (
    register(Callback(name="boom", summary="raises at step 3", factory=Boom)),
    register(Callback(name="bad-teardown", summary="raises in teardown", factory=BadTeardown, order=5))))


def test_a_failing_callback_is_named_and_teardown_still_restores_signals(tmp_path):
    import signal

    from gan_registry import PluginFailure

    before = signal.getsignal(signal.SIGINT)
    registry = isolated_registry(toy_plugin, faulty_plugin)
    run = Run.new(**TOY, registry=registry, out=tmp_path / "run", steps=10, callbacks=["boom"])
    with pytest.raises(PluginFailure, match=r"callback 'boom' from plugin 'faulty_plugin' failed while handling "
                                            r"on_step_end: ValueError: boom at 3"):
        run.train()
    assert signal.getsignal(signal.SIGINT) is before
    assert not (tmp_path / "run").exists()  # made by the run, removed: no checkpoint was written


def test_a_failing_teardown_is_a_warning_not_the_runs_error(tmp_path):
    registry = isolated_registry(toy_plugin, faulty_plugin)
    with pytest.warns(UserWarning, match="callback 'bad-teardown' .* failed in teardown: RuntimeError"):
        run = Run.new(**TOY, registry=registry, out=tmp_path / "run", steps=4, callbacks=["bad-teardown"]).train()
    assert run.step == 4 and run.checkpoint()["step"] == 4


def test_an_empty_folder_the_user_gave_is_kept_when_the_run_fails_early(tmp_path):
    from gan_registry import PluginFailure

    mine = tmp_path / "mine"
    mine.mkdir()
    registry = isolated_registry(toy_plugin, faulty_plugin)
    with pytest.raises(PluginFailure):
        Run.new(**TOY, registry=registry, out=mine, steps=10, callbacks=["boom"]).train()
    assert mine.is_dir() and list(mine.iterdir()) == []


def test_sampling_needs_none_of_the_runs_callbacks(tmp_path):
    registry = isolated_registry(toy_plugin, counter_plugin)
    Run.new(**TOY, registry=registry, out=tmp_path / "run", steps=3, callbacks=["counter"]).train()
    without = isolated_registry(toy_plugin)
    assert Run.open(tmp_path / "run", registry=without).sample(4).shape == (4, 2)
    with pytest.raises(UserError, match="unknown callback 'counter'"):
        Run.open(tmp_path / "run", registry=without).train(steps=5)


def test_callbacks_setting_must_be_a_list_of_names(tmp_path):
    with pytest.raises(UserError, match="callbacks must be a list of callback names"):
        Run.new(**TOY, registry=isolated_registry(toy_plugin), out=tmp_path / "r", steps=2, callbacks="counter")
