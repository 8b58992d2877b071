"""``vau-r1 env``: the bug-report summary."""

from __future__ import annotations

import json

from vau_r1.cli import main
from vau_r1.resources import CONFIG_ROOT


def test_env_prints_versions_devices_and_config_root(capsys) -> None:
    assert main(["env", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["config_root"] == str(CONFIG_ROOT)
    assert info["packages"]["torch"].startswith("2.") and info["packages"]["transformers"] != "not installed"
    assert isinstance(info["cuda_available"], bool) and info["cpu_count"] >= 1
    assert main(["env"]) == 0
    text = capsys.readouterr().out
    assert "- config_root: " in text and "  - torch: " in text
