"""Every test session shares one fresh gan-registry cache: a classifier extractor trained once serves all tests,
and no test reads or writes the user's own cache. xdist workers inherit the controller's folder."""
import os
import tempfile


def pytest_configure(config):
    if os.environ.get("GAN_REGISTRY_TEST_KEEP_CACHE") or os.environ.get("PYTEST_XDIST_WORKER"):
        return
    os.environ["GAN_REGISTRY_CACHE"] = tempfile.mkdtemp(prefix="gan-registry-test-cache-")
