"""Every test session shares one fresh gan-registry cache: a classifier extractor trained once serves all tests,
and no test reads or writes the user's own cache."""
import os
import tempfile


def pytest_configure(config):
    if not os.environ.get("GAN_REGISTRY_TEST_KEEP_CACHE"):
        os.environ["GAN_REGISTRY_CACHE"] = tempfile.mkdtemp(prefix="gan-registry-test-cache-")
