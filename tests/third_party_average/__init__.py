"""The core's generator average (`--ema`), written again as a third party would: a callback plugin that imports
only public names and uses only the trainer members `CallbackProtocol` documents. It keeps its own average beside
the built-in one and writes it at the end; tests/test_callback_surface.py checks the two agree bit for bit."""
import copy

import torch

from gan_registry import EMA_KEY, Callback, hookimpl

NOISE_OFFSET = 15_485_863  # the built-in's: the same noise for the BatchNorm statistics' pass


class SecondAverage:
    def __init__(self, params=None) -> None:
        self.average = None
        self.updated_step = None

    def on_train_start(self, run) -> None:
        # The built-in average starts as a copy of the initial generator, and so does this one.
        self.average = copy.deepcopy(run.models[EMA_KEY])

    def on_epoch_end(self, run) -> None:
        self.on_step_end(run)

    def on_step_end(self, run) -> None:
        if self.updated_step == run.step:
            return
        self.updated_step = run.step
        settings = run.plan.settings
        weight = 1.0 - settings.ema  # a fixed --ema decay
        generator = run.models["generator"]
        statistics = {id(b) for m in self.average.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
                      for b in m.buffers()}
        with torch.no_grad():
            for kept, trained in zip(self.average.parameters(), generator.parameters()):
                kept.lerp_(trained, weight)
            for kept, trained in zip(self.average.buffers(), generator.buffers()):
                if id(kept) not in statistics:
                    kept.copy_(trained)
            noise = torch.Generator(device=run.device).manual_seed(
                (settings.seed * 1_000_003 + run.step + NOISE_OFFSET) % 2**63)
            self.average.train()
            z = run.prior(settings.batch_size, run.plan.latent_dim, run.device, noise)
            self.average(run.world.local(z), *map(run.world.local, run.condition(settings.batch_size, noise)))

    def on_train_end(self, run) -> None:
        if run.world.main:
            torch.save(self.average.state_dict(), run.run_dir / "second-average.pt")


@hookimpl
def register_callbacks(register):
    register(Callback(name="second-average", summary="the generator average, kept again by a third party",
                      factory=SecondAverage, order=6))
