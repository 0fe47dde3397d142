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
    ({"DUNLINE_WATCHDOG_INGEST_LOW_WATER": "100"}, "watchdog.ingest_low_water"),  # not below the high mark
    ({"DUNLINE_WATCHDOG_INGEST_STALL_S": "0"}, "watchdog.ingest_stall_s"),
    ({"DUNLINE_RECORDING_INGEST_PROCESSES": "-1"}, "recording.ingest_processes"),
])
def test_bad_values_name_the_setting(env, name):
    with pytest.raises(SettingsError, match=name.replace(".", r"\.")):
        load_settings(env=env)


def test_unreadable_config_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[ami\n")
    with pytest.raises(SettingsError, match="config file"):
        load_settings(bad, env={})


def test_policy_overrides_are_applied(tmp_path):
    from dialer.policy_config import build_policy

    cfg = tmp_path / "p.toml"
    cfg.write_text('[policy]\nprofile = "us-reg-f"\nwindow = "09:00-20:00"\nclosed_weekdays = ["sun"]\n'
                   'holidays = ["2027-01-01"]\ncaps = "attempts_per_number_per_day=2,min_gap_minutes=none"\n')
    policy = build_policy(load_settings(cfg, env={}).policy)
    assert policy.windows[0].start.hour == 9 and policy.windows[0].end.hour == 20
    assert policy.windows[6] is None
    assert policy.caps.attempts_per_number_per_day == 2 and policy.caps.min_gap_minutes is None
    assert policy.caps.max_per_case_7d == 7, "the profile's other caps are kept"


@pytest.mark.parametrize("env, name", [
    ({"DUNLINE_POLICY_PROFILE": "wild-west"}, "policy.profile"),
    ({"DUNLINE_POLICY_WINDOW": "21:00-08:00"}, "policy.window"),
    ({"DUNLINE_POLICY_WINDOW": "8am-9pm"}, "policy.window"),
    ({"DUNLINE_POLICY_CLOSED_WEEKDAYS": "sunday"}, "policy.closed_weekdays"),
    ({"DUNLINE_POLICY_HOLIDAYS": "2027-13-01"}, "policy.holidays"),
    ({"DUNLINE_POLICY_CAPS": "attempts_per_number_per_day=-1"}, "policy.caps"),
    ({"DUNLINE_POLICY_CAPS": "calls_per_hour=3"}, "policy.caps"),
    ({"DUNLINE_POLICY_LAST_DIAL_MARGIN_MIN": "-5"}, "policy.last_dial_margin_min"),
])
def test_bad_policy_settings_stop_start_up_naming_the_setting(env, name):
    with pytest.raises(SettingsError, match=name.replace(".", r"\.")):
        load_settings(env=env)


def test_per_client_policy_inherits_the_global_one_and_is_validated(tmp_path):
    from dialer.policy_config import build_policy

    cfg = tmp_path / "c.toml"
    cfg.write_text('[policy]\nwindow = "09:00-20:00"\n'
                   '[policy_clients.unicom]\nprofile = "cn-banking-2026"\nwindow = "08:00-22:00"\n'
                   '[policy_clients.bank-b]\ncaps = "attempts_per_number_per_day=1"\n')
    settings = load_settings(cfg, env={})
    assert build_policy(settings.policy_for("unicom")).windows[0].end.hour == 22
    assert build_policy(settings.policy_for("bank-b")).windows[0].start.hour == 9, "inherits [policy]"
    assert build_policy(settings.policy_for("bank-b")).caps.attempts_per_number_per_day == 1
    assert build_policy(settings.policy_for("other")).windows[0].start.hour == 9
    cfg.write_text('[policy_clients.unicom]\nwindow = "22:00-08:00"\n')
    with pytest.raises(SettingsError, match=r"policy_clients\.unicom\.window"):
        load_settings(cfg, env={})


def test_a_campaign_narrows_its_clients_rules_and_is_validated(tmp_path):
    from dialer.policy_config import build_policy_book

    cfg = tmp_path / "c.toml"
    cfg.write_text('[policy]\nwindow = "09:00-20:00"\n'
                   '[policy_clients.unicom]\nprofile = "cn-banking-2026"\n'
                   '[policy_campaigns.early]\nwindow = "10:00-19:00"\n')
    book = build_policy_book(load_settings(cfg, env={}))
    unicom_early = book.for_case("unicom", "early")
    assert unicom_early.name == "cn-banking-2026", "keeps the client's profile"
    assert unicom_early.windows[0].start.hour == 10
    assert book.for_case("other", "early").windows[0].end.hour == 19
    assert book.for_case("unicom", None) is book.clients["unicom"]
    assert book.for_case("other", "no-such-campaign") is book.default
    cfg.write_text('[policy_campaigns.early]\ncaps = "min_gap_minutes=-3"\n')
    with pytest.raises(SettingsError, match=r"policy_campaigns\.early\.caps"):
        load_settings(cfg, env={})
    cfg.write_text('[policy_campaigns.early]\nwindoww = "10:00-19:00"\n')
    with pytest.raises(SettingsError, match=r"policy_campaigns\.early\.windoww: unknown setting"):
        load_settings(cfg, env={})


def test_region_codes_map_to_candidate_zones_and_unknown_zones_are_named(tmp_path):
    from dialer.policy import candidate_zones
    from dialer.policy_config import build_policy

    cfg = tmp_path / "r.toml"
    cfg.write_text('[policy]\nregions = ["XJ=Asia/Urumqi|Asia/Shanghai"]\n')
    policy = build_policy(load_settings(cfg, env={}).policy)
    assert candidate_zones(None, "XJ", "", policy.extra_regions) == {"Asia/Urumqi", "Asia/Shanghai"}
    with pytest.raises(SettingsError, match=r"policy\.regions: unknown time zone 'Mars/Olympus'"):
        load_settings(env={"DUNLINE_POLICY_REGIONS": "MA=Mars/Olympus"})
