"""The registry: in-process test plugins, the real installed entry points, duplicates, broken plugins."""
import textwrap
import types
import warnings
from dataclasses import dataclass, field

import pytest

from gan_registry import Architecture, Dataset, Discriminator, Generator, Objective, Scale, hookimpl
from gan_registry.errors import PluginLoadError, PluginWarning, UnknownComponentError
from gan_registry.plugins import load_registry
from gan_registry.testing import isolated_registry, run_gan


@dataclass
class WidthParams:
    width: int = field(default=8, metadata={"help": "width"})


def _plugin(name, hook_body):
    module = types.ModuleType(name)
    module.register_architectures = hookimpl(hook_body)
    return module


def _toy_arch(register):
    register(Generator(name="toy", summary="toy generator", params=WidthParams, factory=lambda p, s: None))
    register(Discriminator(name="toy", summary="toy discriminator", factory=lambda p, s: None))
    register(Architecture(name="toy", summary="toy pair", generator="toy", discriminator="toy"))


def test_in_process_plugin_registers_and_is_stamped():
    registry = isolated_registry(_plugin("toyplugin", _toy_arch))
    arch = registry.get("architecture", "toy")
    assert arch.pieces() == {"generator": "toy", "discriminator": "toy"}
    assert registry.get("generator", "toy").origin.plugin == "toyplugin"
    assert [p.status for p in registry.plugins] == ["ok"]


def test_installed_entry_point_plugins_are_found_with_versions():
    registry = load_registry()
    mlp = registry.get("architecture", "mlp")
    assert mlp.origin.distribution == "gan-registry-mlp" and mlp.origin.version
    assert registry.get("objective", "gan").origin.distribution == "gan-registry-objectives"
    assert {"digits", "gaussians"} <= set(registry.names("dataset"))


def test_a_clash_keeps_both_refuses_the_bare_name_and_answers_the_qualified_one():
    """Load order never decides: whichever plugin loads first, the bare name is refused naming both."""
    from gan_registry._registry import AmbiguousComponentError

    for order in (("first", "second"), ("second", "first")):
        registry = isolated_registry(*(_plugin(name, _toy_arch) for name in order))
        assert [p.status for p in registry.plugins] == ["ok", "ok"]
        with pytest.raises(AmbiguousComponentError, match=r"generator 'toy' is registered by 2 plugins: plugin "
                                                          r"'\w+', plugin '\w+'; choose one with toy@\w+ or toy@\w+"):
            registry.get("generator", "toy")
        assert registry.get("generator", "toy@second").origin.plugin == "second"
        assert registry.get("generator", "toy@first").origin.plugin == "first"
        notes = {p.name: p.notes for p in registry.plugins}
        assert any("also registered by plugin 'second'" in n for n in notes["first"])
    with pytest.raises(UnknownComponentError, match="no generator 'toy' from 'third'"):
        registry.get("generator", "toy@third")


def test_a_plugin_registering_one_name_twice_is_broken():
    def twice(register):
        _toy_arch(register)
        register(Generator(name="toy", summary="again", factory=lambda p, s: None))

    with pytest.warns(PluginWarning, match="generator 'toy' is registered twice by plugin 'twice'"):
        registry = isolated_registry(_plugin("twice", twice))
    assert registry.plugins[0].status == "broken" and registry.components("generator") == []


def test_misspelled_or_unmarked_hooks_are_reported():
    typo = types.ModuleType("typo")
    typo.register_dataset = hookimpl(lambda register: None)
    unmarked = types.ModuleType("unmarked")
    unmarked.register_objectives = lambda register: None
    unmarked.register_objectives.__module__ = "unmarked"
    with pytest.warns(PluginWarning) as caught:
        registry = isolated_registry(typo, unmarked)
    status = {p.name: p for p in registry.plugins}
    assert status["typo"].status == "broken"
    assert "'register_dataset' is not a gan-registry hook; did you mean register_datasets?" in status["typo"].error
    assert status["unmarked"].status == "empty"
    assert "register_objectives() is not marked @hookimpl, so it is never called" in status["unmarked"].notes[0]
    assert len(caught) == 2
    with pytest.raises(PluginLoadError, match="not marked @hookimpl"):
        load_registry([("unmarked", unmarked)], entry_points=False, env={"GAN_REGISTRY_STRICT_PLUGINS": "1"})


def test_hooks_receive_only_the_arguments_they_declare():
    seen = []
    module = types.ModuleType("noargs")
    module.register_datasets = hookimpl(lambda: seen.append("called without arguments"))
    with pytest.warns(PluginWarning, match="it registers no component"):
        registry = isolated_registry(module)
    assert seen == ["called without arguments"] and registry.plugins[0].status == "empty"


def test_installed_plugin_passed_again_is_loaded_once():
    import gan_registry_mlp

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        registry = isolated_registry(gan_registry_mlp, entry_points=True)
    assert registry.get("architecture", "mlp").origin.distribution == "gan-registry-mlp"


def test_plugin_raising_in_its_hook_is_broken_others_work():
    def explode(register):
        register(Generator(name="fine", summary="registered before the error", factory=lambda p, s: None))
        raise RuntimeError("boom")

    with pytest.warns(PluginWarning, match="plugin 'bad'.*RuntimeError: boom"):
        registry = isolated_registry(_plugin("bad", explode), _plugin("good", _toy_arch))
    assert registry.names("generator") == ["toy"]
    assert {p.name: p.status for p in registry.plugins} == {"bad": "broken", "good": "ok"}


def test_strict_mode_turns_a_broken_plugin_into_an_error():
    def explode(register):
        raise RuntimeError("boom")

    with pytest.raises(PluginLoadError, match="plugin 'bad'"):
        load_registry([("bad", _plugin("bad", explode))], entry_points=False, env={"GAN_REGISTRY_STRICT_PLUGINS": "1"})


def test_register_rejects_a_component_of_another_hooks_kind():
    def wrong(register):
        register(Objective(name="x", summary="in the wrong hook", factory=lambda p: None))

    with pytest.warns(PluginWarning, match="register_architectures can register"):
        isolated_registry(_plugin("wrong", wrong))


def test_unknown_component_suggests_close_matches():
    registry = load_registry()
    with pytest.raises(UnknownComponentError, match="did you mean 'gaussians'"):
        registry.get("dataset", "gausians")


@pytest.mark.parametrize("name", ["MLP", "-mlp", "my_arch", "", "a b"])
def test_invalid_names_are_refused(name):
    with pytest.raises(ValueError, match="invalid"):
        Dataset(name=name, summary="x", factory=lambda p, c: None)


def test_params_must_have_defaults():
    @dataclass
    class NoDefault:
        size: int

    with pytest.raises(TypeError, match="needs a default"):
        Dataset(name="x", summary="x", params=NoDefault, factory=lambda p, c: None)


@pytest.fixture
def fake_distributions(tmp_path):
    """Two real installed distributions (dist-info + entry points on the path): one broken, one fine."""
    site = tmp_path / "site"
    for dist, module, source in [
        ("broken-plugin", "broken_plugin_mod", "import not_a_real_module_anywhere\n"),
        (
            "exploding-plugin",
            "exploding_plugin_mod",
            textwrap.dedent(
                """
                from gan_registry import Dataset, hookimpl

                def build(params, context):
                    raise RuntimeError("the plugin's own bug")

                @hookimpl
                def register_datasets(register):
                    register(Dataset(name="exploding", summary="raises when built", factory=build))
                """
            ),
        ),
        (
            "extra-plugin",
            "extra_plugin_mod",
            textwrap.dedent(
                """
                from gan_registry import Dataset, hookimpl

                @hookimpl
                def register_datasets(register):
                    register(Dataset(name="extra", summary="from an extra dist", factory=lambda p, c: None))
                """
            ),
        ),
    ]:
        info = site / f"{dist.replace('-', '_')}-1.2.3.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.2.3\n")
        (info / "entry_points.txt").write_text(f"[gan_registry]\n{dist} = {module}\n")
        (site / f"{module}.py").write_text(source)
    return {"PYTHONPATH": str(site)}


def test_gan_plugins_shows_broken_plugin_and_keeps_working(fake_distributions):
    result = run_gan("plugins", env=fake_distributions)
    assert result.returncode == 0, result.stderr
    assert "broken-plugin  [broken-plugin 1.2.3]  broken" in result.stdout
    assert "ModuleNotFoundError" in result.stdout
    assert "extra-plugin  [extra-plugin 1.2.3]  ok" in result.stdout
    assert "gan-registry-mlp" in result.stdout
    assert "warning: plugin 'broken-plugin' (broken-plugin 1.2.3) failed to load" in result.stderr
    assert "Traceback" not in result.stderr


def test_blocking_a_plugin_by_name(fake_distributions):
    env = {**fake_distributions, "GAN_REGISTRY_BLOCK_PLUGINS": "broken-plugin"}
    result = run_gan("plugins", "--json", env=env)
    assert result.returncode == 0 and result.stderr == ""
    import json

    status = {row["name"]: row["status"] for row in json.loads(result.stdout)}
    assert status["broken-plugin"] == "blocked" and status["extra-plugin"] == "ok"


def test_strict_env_makes_gan_fail_with_the_plugins_traceback_and_one_error_line(fake_distributions):
    result = run_gan("list", env={**fake_distributions, "GAN_REGISTRY_STRICT_PLUGINS": "1"})
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines[0] == "Traceback (most recent call last):"  # for the plugin's author, as the docs promise
    assert lines[-1].startswith("Error: plugin 'broken-plugin'")
    assert sum(line.startswith("Error:") for line in lines) == 1


def test_dataset_suggestions_are_checked_at_registration():
    with pytest.raises(ValueError, match="cannot suggest 'lr' \\(valid: latent_dim, batch_size, steps"):
        Dataset(name="d", summary="s", factory=lambda p, c: None, suggests={"lr": 1e-3})
    with pytest.raises(ValueError, match="cannot suggest 'generator.width' \\(parameters it may suggest: "
                                         "objective.NAME, augment.NAME\\)"):
        Dataset(name="d", summary="s", factory=lambda p, c: None, suggests={"generator.width": 8})
    with pytest.raises(ValueError, match="'objective.r1' cannot be a Scale"):
        Dataset(name="d", summary="s", factory=lambda p, c: None, suggests={"objective.r1": Scale(0.5)})
    Dataset(name="d", summary="s", factory=lambda p, c: None,
            suggests={"batch_size": 8, "lr_scale": 2.0, "objective.lr_generator": 1e-3})


def test_plugin_code_failing_at_run_time_is_one_line_naming_the_plugin(fake_distributions, tmp_path):
    args = ["run", "--arch", "mlp", "--objective", "gan", "--dataset", "exploding", "--out", tmp_path / "run"]
    result = run_gan(*args, env=fake_distributions)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        "Error: dataset 'exploding' from plugin 'exploding-plugin' (exploding-plugin 1.2.3) failed while describing"
        " its data: RuntimeError: the plugin's own bug. This is a bug in that plugin: report it to its authors"
        " (`gan --debug ...` shows the traceback)")
    assert not (tmp_path / "run").exists()
    listed = run_gan("plugins", env=fake_distributions)
    assert "exploding-plugin  [exploding-plugin 1.2.3]  ok" in listed.stdout  # its hook itself is fine


def test_plugin_failure_in_a_network_factory_and_strict_mode(monkeypatch):
    from gan_registry._plan import Settings, make_plan
    from gan_registry.errors import PluginFailure
    from gan_registry.testing import toy_plugin

    def bad_generator(register):
        def factory(params, spec):
            raise ZeroDivisionError("division by zero")

        register(Generator(name="bad", summary="raises when built", factory=factory))

    registry = isolated_registry(_plugin("badgen", bad_generator), toy_plugin)
    settings = Settings(arch="toy", objective="toy", dataset="toy", generator="bad")
    with pytest.raises(PluginFailure, match=r"generator 'bad' from plugin 'badgen' failed while building the "
                                            r"generator: ZeroDivisionError: division by zero"):
        make_plan(registry, settings)  # the plan builds every network once: misfits surface before training
    monkeypatch.setenv("GAN_REGISTRY_STRICT_PLUGINS", "1")
    with pytest.raises(ZeroDivisionError):
        make_plan(registry, settings)


@pytest.mark.parametrize("registered", ["a string", None, 42])
def test_registering_something_that_is_not_a_component_breaks_only_that_plugin(registered):
    with pytest.warns(PluginWarning, match="register_architectures can register architecture"):
        registry = isolated_registry(_plugin("wrong", lambda register: register(registered)),
                                     _plugin("fine", _toy_arch))
    assert {p.name: p.status for p in registry.plugins} == {"wrong": "broken", "fine": "ok"}


def test_debug_shows_the_plugins_traceback(fake_distributions, tmp_path):
    args = ["--debug", "run", "--arch", "mlp", "--objective", "gan", "--dataset", "exploding", "--out", tmp_path / "r"]
    result = run_gan(*args, env=fake_distributions)
    assert result.returncode == 1
    assert "Traceback" in result.stderr and 'RuntimeError: the plugin\'s own bug' in result.stderr


def test_a_run_made_before_a_clash_resumes_and_samples_as_it_was(tmp_path):
    """Installing a package that registers the same names later changes nothing for an existing run."""
    import torch

    from gan_registry import Run
    from gan_registry.testing import toy_plugin

    impostor = types.ModuleType("impostor")
    impostor.register_objectives = hookimpl(lambda register: register(
        Objective(name="toy", summary="not the toy objective", factory=lambda params: 1 / 0)))
    before = isolated_registry(toy_plugin)
    settings = dict(arch="toy", objective="toy", dataset="toy", batch_size=8, device="cpu", steps=4)
    run = Run.new(**settings, registry=before, out=tmp_path / "run").train()
    expected = run.sample(8, seed=2)

    after = isolated_registry(impostor, toy_plugin)  # the impostor loads first
    from gan_registry._registry import AmbiguousComponentError

    with pytest.raises(AmbiguousComponentError, match="objective 'toy' is registered by 2 plugins"):
        Run.new(**settings, registry=after, out=tmp_path / "new")
    reopened = Run.open(tmp_path / "run", registry=after)
    assert torch.equal(reopened.sample(8, seed=2), expected)
    reopened.train(steps=6)
    assert reopened.step == 6


def test_two_plugins_of_one_distribution_are_told_apart_by_plugin_name():
    from gan_registry import Origin
    from gan_registry._registry import AmbiguousComponentError, Registry

    registry = Registry()
    for plugin in ("b1", "b2"):
        component = Objective(name="twin", summary="twin", factory=lambda p: None)
        registry.add_all([__import__("dataclasses").replace(component, origin=Origin(plugin, "Two_Ep", "1.0"))])
    with pytest.raises(AmbiguousComponentError, match="choose one with twin@b1 or twin@b2"):
        registry.get("objective", "twin")
    assert registry.get("objective", "twin@b2").origin.plugin == "b2"
    with pytest.raises(AmbiguousComponentError, match="more than one objective 'twin' from 'two-ep'"):
        registry.get("objective", "twin@two-ep")  # the distribution, as pip spells it, does not pick one
