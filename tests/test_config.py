"""Named configurations and the checkpoint form of a configuration."""

import pytest

from samic_fast.config import ARCHS, DEFAULT_ARCH, SAMICConfig, SASSConfig, arch_name, get_config
from samic_fast.errors import ConfigError


@pytest.mark.parametrize("name", sorted(ARCHS))
def test_canonical_round_trips(name):
    cfg = get_config(name)
    again = SAMICConfig.from_dict(cfg.canonical())
    assert again == cfg and again.digest() == cfg.digest()


def test_default_arch_is_the_default_config():
    assert get_config() == get_config(DEFAULT_ARCH) == SAMICConfig()
    assert arch_name(get_config("tiny")) == "tiny"
    assert arch_name(SAMICConfig(mean_grid=16)) is None


def test_bad_names_and_dicts_are_config_errors():
    with pytest.raises(ConfigError, match="unknown arch 'nope'"):
        get_config("nope")
    with pytest.raises(ConfigError, match="unknown field"):
        SAMICConfig.from_dict({"channelz": [1]})
    with pytest.raises(ConfigError, match="num_clusters"):
        SAMICConfig.from_dict({"sass": {"num_clusters": 99}})
    with pytest.raises(ConfigError, match="expected a mapping"):
        SAMICConfig.from_dict({"sass": 3})
    assert isinstance(ConfigError("x"), ValueError)
    assert SAMICConfig.from_dict({"sass": SASSConfig(num_clusters=8).__dict__}).sass.num_clusters == 8
