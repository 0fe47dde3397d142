"""`dunline simulate` runs a short simulated shift and prints its table (no PBX, no settings)."""
from dunline.cli import main


def test_simulate_prints_a_row_per_pacer(capsys):
    assert main(["simulate", "--collectors", "5", "--answer-rate", "0.3", "--hours", "0.1", "--pacer", "all",
                 "--seed", "3", "--talk-mean", "120"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "5 collectors, answer rate 30%, 0.1 h, talk mean 120 s, seed 3"
    assert out[1].split() == ["pacer", "placed", "answered", "abandoned", "abandon", "rate", "occupancy"]
    assert [line.split()[0] for line in out[2:]] == ["progressive", "vicidial", "predictive"]
    progressive = out[2].split()
    assert int(progressive[1]) >= int(progressive[2]) > 0 and progressive[3] == "0"


def test_simulate_refuses_a_floor_that_cannot_be(capsys):
    assert main(["simulate", "--collectors", "0"]) == 2
    assert "at least one collector" in capsys.readouterr().err
