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
    assert names == ["checkpoints", "jsonl-log", "non-finite-guard", "progress", "sample-grids", "stop-signals"]
    assert all(c.always and c.origin.distribution == "gan-registry" for c in registry.components("callback"))


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
