"""Settings: TOML + environment, validated with messages naming the setting."""
import pytest

from dunline.settings import SettingsError, load_settings


def test_defaults_are_valid():
    settings = load_settings(env={})
    assert settings.recording.retention_years == 3
    assert settings.console.host == "127.0.0.1"


def test_toml_then_environment(tmp_path):
    cfg = tmp_path / "dunline.toml"
    cfg.write_text('[ami]\nport = 6000\nsecret = "from-file"\n[pbx]\ncollectors = ["6001", "6002"]\n')
    settings = load_settings(cfg, env={"DUNLINE_AMI_SECRET": "from-env"})
    assert settings.ami.port == 6000
    assert settings.ami.secret == "from-env"
    assert settings.pbx.collectors == ("6001", "6002")


@pytest.mark.parametrize("env, name", [
    ({"DUNLINE_AMI_PORT": "70000"}, "ami.port"),
    ({"DUNLINE_AMI_PORT": "abc"}, "ami.port"),
    ({"DUNLINE_RECORDING_RETENTION_YEARS": "2"}, "recording.retention_years"),
    ({"DUNLINE_AMI_NOPE": "1"}, "ami.nope"),
    ({"DUNLINE_CONSOLE_HOST": "0.0.0.0"}, "console.host"),
])
def test_bad_values_name_the_setting(env, name):
    with pytest.raises(SettingsError, match=name.replace(".", r"\.")):
        load_settings(env=env)


def test_unreadable_config_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[ami\n")
    with pytest.raises(SettingsError, match="config file"):
        load_settings(bad, env={})
