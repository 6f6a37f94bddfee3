import pytest


@pytest.fixture(autouse=True)
def _plain_plugin_env(monkeypatch):
    """Tests decide plugin blocking/strictness themselves."""
    monkeypatch.delenv("GAN_REGISTRY_BLOCK_PLUGINS", raising=False)
    monkeypatch.delenv("GAN_REGISTRY_STRICT_PLUGINS", raising=False)
