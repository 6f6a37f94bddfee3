"""The Python API page runs as written: each titled block is a script, run in order in one folder."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from gan_registry.testing import HANG_S

BLOCK = re.compile(r'^```python title="(?P<title>[^"]+)"\n(?P<body>.*?)^```$', re.M | re.S)
PAGE = Path(__file__).resolve().parents[1] / "docs" / "tutorials" / "python-api.md"


def test_python_api_tutorial_runs(tmp_path):
    scripts = [(m["title"], m["body"]) for m in BLOCK.finditer(PAGE.read_text())]
    assert [name for name, _ in scripts] == ["ring.py", "reopen.py", "mistakes.py"]
    outputs = {}
    for name, body in scripts:
        (tmp_path / name).write_text(body)
        result = subprocess.run([sys.executable, name], cwd=tmp_path, capture_output=True, text=True, timeout=HANG_S)
        assert result.returncode == 0, result.stderr
        outputs[name] = result.stdout
    assert "trained 300 steps" in outputs["ring.py"] and "samples (1000, 2)" in outputs["ring.py"]
    assert "now at step 600" in outputs["ring.py"]
    assert (tmp_path / "ring.png").stat().st_size > 0 and (tmp_path / "ring.safetensors").exists()
    assert "at step 600" in outputs["reopen.py"] and "batch size 256" in outputs["reopen.py"]
    assert outputs["mistakes.py"].startswith("refused: unknown objective 'gna'; did you mean 'gan'")
