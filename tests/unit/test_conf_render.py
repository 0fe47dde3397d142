"""asterisk_conf.render: placeholders filled, missing ones named, Asterisk's ${VAR} untouched."""
from __future__ import annotations

import configparser
import re

import pytest

from asterisk_conf import render
from asterisk_conf.render import PhoneAccount, RenderError

PHONES = (PhoneAccount("6001", "pw6001"), PhoneAccount("6002", "pw6002"), PhoneAccount("6900", "pw6900"))


def pbx_values(**over):
    values = dict(ami_port=5038, ami_secret="s3cret", pbx_sip_port=5060, carrier_sip_port=5080, agi_port=4573,
                  phones=PHONES, rtp_start=20000, rtp_end=24999)
    values.update(over)
    return render.pbx_values(**values)


def carrier_values():
    return render.carrier_values(carrier_sip_port=5080, pbx_sip_port=5060, rtp_start=25000, rtp_end=27999)


def phone_values():
    return render.phone_values(endpoint="6001", password="pw6001", sip_port=7001, ctrl_port=7101,
                               pbx_sip_port=5060, rtp_start=28000, rtp_end=28099,
                               speech_wav="/s/speech.wav", dump_dir="/s/dump")


def test_placeholders_are_filled():
    assert render.render("port=@@port@@ bind=@@host@@:@@port@@", {"port": 5060, "host": "127.0.0.1"}) == \
        "port=5060 bind=127.0.0.1:5060"


def test_booleans_render_as_asterisk_yes_no():
    assert render.render("a=@@a@@ b=@@b@@", {"a": True, "b": False}) == "a=yes b=no"


def test_missing_placeholder_is_an_error_naming_it():
    with pytest.raises(RenderError) as err:
        render.render("bind=@@host@@:@@port@@\nx=@@other@@", {"host": "127.0.0.1"}, name="pbx/pjsip.conf")
    message = str(err.value)
    assert "pbx/pjsip.conf" in message and "@@port@@" in message and "@@other@@" in message
    assert "@@host@@" not in message


def test_none_value_is_an_error():
    with pytest.raises(RenderError, match="@@x@@"):
        render.render("@@x@@", {"x": None})


def test_malformed_placeholder_is_an_error():
    with pytest.raises(RenderError, match="line 2"):
        render.render("ok=@@a@@\nbad=@@a b@@", {"a": 1})


def test_extra_values_are_ignored():
    assert render.render("x", {"unused": 1}) == "x"


def test_asterisk_variables_and_expressions_are_untouched():
    text = 'exten => s,1,GotoIf($["${DUNLINE_BOUND}" = "1"]?bridge)\n same => n,Set(X=${EXTEN:5:1})'
    assert render.render(text, {}) == text


def test_pbx_set_renders_every_file_without_leftovers():
    files = render.render_set("pbx", pbx_values())
    assert {"asterisk.conf", "modules.conf", "manager.conf", "pjsip.conf", "extensions.conf", "rtp.conf"} <= set(files)
    assert not any(name.startswith("_") for name in files)
    for name, text in files.items():
        assert "@@" not in text, name


def test_pbx_dialplan_contract():
    ext = render.render_set("pbx", pbx_values())["extensions.conf"]
    assert "DUNLINE_AGI=agi://127.0.0.1:4573" in ext
    assert "DUNLINE_RING_S=15" in ext
    for line in ('exten => s,1,GotoIf($[${REGEX("^[0-9a-f]{32}$" ${DUNLINE_ATTEMPT})}]?answered)',
                 " same => n(answered),Set(DUNLINE_UP_AT=${STRFTIME(,,%s.%3q)})",
                 " same => n,Set(CHANNEL(hangup_handler_push)=dunline-ended,s,1)",
                 ' same => n,ExecIf($["${DUNLINE_AMD}" = "1"]?AMD())',
                 ' same => n,GotoIf($["${DUNLINE_BOUND}${DUNLINE_MACHINE}" = "11"]?done)',
                 " same => n,AGI(${DUNLINE_AGI}/bind?attempt=${DUNLINE_ATTEMPT}&token=${DUNLINE_TOKEN}"
                 "&canary=${DUNLINE_CANARY}&collector=${DUNLINE_COLLECTOR}&amd=${AMDSTATUS})",
                 ' same => n,GotoIf($["${DUNLINE_BOUND}" = "1"]?bridge)',
                 " same => n,Hangup(21)",
                 ' same => n(bridge),GotoIf($["${DUNLINE_ABANDON}" = "1"]?abandon)',
                 ' same => n,GotoIf($["${DUNLINE_SEAT}" != ""]?seat)',
                 " same => n,Dial(PJSIP/${DUNLINE_COLLECTOR},${DUNLINE_RING_S})",
                 " same => n(seat),Bridge(${DUNLINE_SEAT},F(dunline-seat^s^wait))",
                 ' same => n,GotoIf($["${BRIDGERESULT}" = "SUCCESS"]?done)',
                 " same => n(abandon),Playback(${DUNLINE_ABANDON_PROMPT})",
                 " same => n(wait),Wait(3600)",
                 " same => n,AGI(${DUNLINE_AGI}/ended?attempt=${DUNLINE_ATTEMPT}&token=${DUNLINE_TOKEN})",
                 " same => n,Return()",
                 "exten => s,1,MixMonitor(${DUNLINE_REC}.wav,r(${DUNLINE_REC}-rx.wav)t(${DUNLINE_REC}-tx.wav))"):
        assert line in ext.splitlines(), line
    for context in ("dunline-outbound", "dunline-ended", "dunline-seat", "dunline-collectors", "dunline-inbound",
                    "dunline-selftest"):
        assert f"[{context}]" in ext


def test_the_pbx_records_an_answered_call_before_it_asks_the_service_under_the_names_the_service_reads():
    """The debtor's channel enters dunline-outbound when it answers: the recording starts there,
    before `bind` (whatever the service is doing), after the hang-up handler is pushed (so an
    answered call always reports its end), under the names storage/names.py gives the service."""
    from storage.names import mixmonitor_argument, recording_name_of

    ext = render.render_set("pbx", pbx_values())["extensions.conf"].splitlines()
    outbound = ext[ext.index("[dunline-outbound]") + 1:]
    outbound = outbound[:next(i for i, l in enumerate(outbound) if l.startswith("["))]
    argument = mixmonitor_argument("${DUNLINE_REC_DIR}", recording_name_of("${DUNLINE_ATTEMPT}"))
    steps = [l.split(",", 1)[1] for l in outbound if l.startswith(("exten =>", " same =>"))]
    record = steps.index(f"MixMonitor({argument})")
    assert steps.index("Set(CHANNEL(hangup_handler_push)=dunline-ended,s,1)") < record
    assert record < next(i for i, step in enumerate(steps) if "/bind?" in step)
    assert not any(";" in step for step in steps), "a ';' would start a comment and cut the line short"


def test_the_hang_up_record_the_dialplan_writes_is_the_one_the_spool_scan_reads():
    """The hang-up handler's Set(FILE(...)=...) line, with the channel's variables filled in as
    Asterisk would, parses into the end the spool scan reports (and ';' never appears: it would
    start a comment in extensions.conf and cut the record short)."""
    import re

    from recorder.spool_scan import parse_end_record

    ext = render.render_set("pbx", pbx_values())["extensions.conf"]
    [line] = [l for l in ext.splitlines() if "Set(FILE(" in l]
    target, value = re.fullmatch(r" same => n,Set\(FILE\((.*?)\)=(.*)\)", line).groups()
    attempt = "f" * 32
    channel = {"DUNLINE_REC_DIR": "/spool", "DUNLINE_ATTEMPT": attempt, "DUNLINE_TOKEN": "t" * 64,
               "HANGUPCAUSE": "16", "DIALSTATUS": "ANSWER", "ANSWEREDTIME": "61", "CDR(start,u)": "1796286676.307737",
               "CDR(answer,u)": "1796286678.310211", "EPOCH": "1796286740"}
    fill = lambda text: re.sub(r"\$\{([^}]*)\}", lambda m: channel[m.group(1)], text)
    assert fill(target) == f"/spool/{attempt}.end" and ";" not in line
    record = parse_end_record(fill(value).encode())
    assert (record.attempt_id, record.token, record.hangup_cause, record.dial_status, record.answered_seconds) == \
        (attempt, "t" * 64, 16, "ANSWER", 61.0)
    assert record.pbx_started_at.timestamp() == 1796286676.307737 and record.pbx_ended_at.timestamp() == 1796286740


def _ini(text: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, inline_comment_prefixes=(";",), comment_prefixes=(";",))
    parser.read_string(text)
    return parser


def test_manager_user_is_loopback_only_with_least_classes():
    manager = _ini(render.render_set("pbx", pbx_values())["manager.conf"])
    assert manager["general"]["bindaddr"] == "127.0.0.1" and manager["general"]["port"] == "5038"
    user = manager["dunline"]
    assert user["secret"] == "s3cret"
    assert user["read"] == "system,call,user"
    assert user["write"] == "originate,call,reporting"
    assert user["permit"] == "127.0.0.1/255.255.255.255" and user["deny"] == "0.0.0.0/0.0.0.0"
    assert user["writetimeout"] == "500"


def test_pjsip_every_endpoint_has_a_transport_and_no_identify_for_phones():
    text = render.render_set("pbx", pbx_values())["pjsip.conf"]
    sections = re.split(r"^\[", text, flags=re.M)[1:]
    endpoints = [s for s in sections if "type = endpoint" in s]
    assert {s.split("]")[0] for s in endpoints} == {"carrier", "6001", "6002", "6900"}
    assert all("transport = transport-udp" in s for s in endpoints)
    assert "type = identify" not in text
    assert "endpoint_identifier_order = username,ip" in text
    assert "bind = 127.0.0.1:5060" in text and "contact = sip:127.0.0.1:5080" in text


def test_modules_are_explicit():
    for kind, values, needed in (("pbx", pbx_values(), ("app_mixmonitor.so", "func_periodic_hook.so", "res_agi.so",
                                                          "res_speech.so", "chan_pjsip.so", "res_pjsip_pubsub.so")),
                                 ("carrier", carrier_values(), ("cdr_csv.so", "chan_pjsip.so"))):
        modules = render.render_set(kind, values)["modules.conf"]
        assert re.search(r"^autoload = no$", modules, re.M)
        for module in needed:
            assert f"load => {module}" in modules, (kind, module)
        assert "chan_iax2" not in modules


def test_carrier_set_transmits_silence_and_logs_unanswered_calls():
    files = render.render_set("carrier", carrier_values())
    assert "transmit_silence = yes" in files["asterisk.conf"]
    cdr = _ini(files["cdr.conf"])
    assert cdr["general"]["unanswered"] == "yes" and cdr["csv"]["accountlogs"] == "no"
    assert "bind = 127.0.0.1:5080" in files["pjsip.conf"]
    assert "${EXTEN:5:1}" in files["extensions.conf"]


def test_phone_set():
    files = render.render_set("baresip", phone_values())
    config = files["config"]
    for line in ("sip_listen\t\t127.0.0.1:7001", "net_interface\t\t127.0.0.1", "ctrl_tcp_listen\t\t127.0.0.1:7101",
                 "rtp_ports\t\t28000-28099", "audio_source\t\taufile,/s/speech.wav", "snd_path\t\t/s/dump"):
        assert line in config.splitlines(), line
    assert files["accounts"].strip().startswith("<sip:6001@127.0.0.1:5060;transport=udp>;auth_user=6001;")
    assert ";answermode=auto" in files["accounts"] and "auth_pass=pw6001" in files["accounts"]


def test_unsafe_secret_is_refused():
    with pytest.raises(RenderError, match="ami_secret"):
        pbx_values(ami_secret="abc;def")


def test_unknown_template_set():
    with pytest.raises(RenderError, match="unknown template set"):
        render.template_files("nope")


def test_the_carrier_trunk_is_not_marked_unreachable_for_answering_options_slowly():
    """A busy carrier answers OPTIONS late; a 1 s qualify timeout every 2 s failed originates
    under load (docs/operations.md, PBX tuning). A dead trunk is the canary's to find."""
    text = render.render_set("pbx", pbx_values())["pjsip.conf"]
    section = text.split("[carrier]\ntype = aor", 1)[1].split("\n[", 1)[0]
    settings = dict(re.findall(r"^(qualify_\w+) = ([\d.]+)", section, re.M))
    assert float(settings["qualify_timeout"]) >= 5.0
    assert float(settings["qualify_frequency"]) == 0 or float(settings["qualify_frequency"]) >= 30
