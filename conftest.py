"""Every test session shares one fresh gan-registry cache: a classifier extractor trained once serves all tests,
and no test reads or writes the user's own cache. xdist workers inherit the controller's folder."""
import os
import subprocess
import sys
import tempfile

_warming = []


def pytest_configure(config):
    # Two xdist workers and the `gan` processes they start share the machine's cores: one torch thread each keeps
    # them from spinning against each other, and a run and its resume from computing with different thread counts.
    os.environ.setdefault("GAN_REGISTRY_THREADS", "1")
    if os.environ.get("GAN_REGISTRY_TEST_KEEP_CACHE") or os.environ.get("PYTEST_XDIST_WORKER"):
        return
    os.environ["GAN_REGISTRY_CACHE"] = tempfile.mkdtemp(prefix="gan-registry-test-cache-")
    # The digits classifier (FID features) trains once, for about a minute: start it now, beside the first tests,
    # rather than inside the first test that measures (which then holds every other one at the cache's lock).
    _warming.append(subprocess.Popen(
        [sys.executable, "-m", "gan_registry", "eval", "--real", "digits", "--fake", "digits:heldout", "--metric",
         "fid", "--samples", "16"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        cwd=tempfile.gettempdir()))


def pytest_unconfigure(config):
    for process in _warming:
        process.kill()
        process.wait()
