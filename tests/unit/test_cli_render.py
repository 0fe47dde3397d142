"""`dunline pbx-render` writes the sandbox's PBX templates for a deployment."""
import os

from dunline.cli import main


def test_render_needs_secrets(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("DUNLINE_AMI_SECRET", raising=False)
    monkeypatch.delenv("DUNLINE_PHONE_SECRET", raising=False)
    assert main(["pbx-render", "--out", str(tmp_path / "conf")]) == 2
    assert "DUNLINE_AMI_SECRET" in capsys.readouterr().err
    assert not (tmp_path / "conf").exists()


def test_render_writes_configs(tmp_path, monkeypatch):
    monkeypatch.setenv("DUNLINE_AMI_SECRET", "s3cret")
    monkeypatch.setenv("DUNLINE_PHONE_SECRET", "p4ss")
    out = tmp_path / "conf"
    assert main(["pbx-render", "--out", str(out), "--sip-bind", "0.0.0.0", "--group", str(os.getgid())]) == 0
    for conf in out.iterdir():  # secrets and the dialplan: the PBX's group may read, nobody else
        assert (conf.stat().st_mode & 0o777, conf.stat().st_gid) == (0o640, os.getgid()), conf.name
    manager = (out / "manager.conf").read_text()
    assert "bindaddr = 127.0.0.1" in manager and "secret = s3cret" in manager
    dialplan = (out / "extensions.conf").read_text()
    assert "AGI(${DUNLINE_AGI}/bind?attempt=${DUNLINE_ATTEMPT}&token=${DUNLINE_TOKEN}&canary=${DUNLINE_CANARY}&collector=${DUNLINE_COLLECTOR}&amd=${AMDSTATUS})" in dialplan
    assert "AGI(${DUNLINE_AGI}/ended?attempt=${DUNLINE_ATTEMPT}&token=${DUNLINE_TOKEN})" in dialplan
    assert "Set(FILE(${DUNLINE_REC_DIR}/${DUNLINE_ATTEMPT}.end)=v=1&attempt=" in dialplan, "the PBX's own end record"
    assert "timestampevents = yes" in manager
    assert "load => func_env.so" in (out / "modules.conf").read_text()
    assert "0.0.0.0" in (out / "pjsip.conf").read_text()
