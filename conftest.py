"""Every test session shares one fresh gan-registry cache: a classifier extractor trained once serves all tests,
and no test reads or writes the user's own cache. xdist workers inherit the controller's folder."""
import os
import tempfile


def pytest_configure(config):
    # Two xdist workers and the `gan` processes they start share the machine's cores: one torch thread each keeps
    # them from spinning against each other, and a run and its resume from computing with different thread counts.
    os.environ.setdefault("GAN_REGISTRY_THREADS", "1")
    if os.environ.get("GAN_REGISTRY_TEST_KEEP_CACHE") or os.environ.get("PYTEST_XDIST_WORKER"):
        return
    os.environ["GAN_REGISTRY_CACHE"] = tempfile.mkdtemp(prefix="gan-registry-test-cache-")
