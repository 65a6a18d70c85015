"""Issue 17 item 1: the demo's console at the default log level holds escpro's lines and escpro's
own progress bars only; the libraries' bars, warnings and `{'loss': ...}` dicts are gone."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# What the libraries print when left alone (tqdm bars, log dicts, DeepSpeed and Python warnings).
THIRD_PARTY = re.compile(
    r"^\{'|^\[\d{4}-\d\d-\d\d|\[(WARNING|INFO)\]|Warning:|warnings\.warn|it/s\]|s/it\]|examples/s\]"
    r"|Loading weights|Writing model shards|Tokenizing|Map:|Filter:|^(INFO|WARNING|DEBUG) (?!escpro)"
)
# escpro's own progress bars (stderr) start with these.
OWN_BARS = ("build:", "train ", "eval", "reading trees", "supporter replies", "note:")


def third_party_lines(stdout: str, stderr: str) -> list[str]:
    """Lines (bars split at carriage returns) that escpro did not write."""
    bad = [ln for ln in stdout.splitlines() if THIRD_PARTY.search(ln.strip())]
    for seg in re.split(r"[\r\n]+", stderr):
        seg = seg.strip()
        if seg and not seg.startswith(OWN_BARS):
            bad.append(seg)
        elif seg and THIRD_PARTY.search(seg):
            bad.append(seg)
    return bad


def test_classifier_catches_what_the_libraries_print():
    stdout = ("[4/6] sft: 2 LoRA SFT steps\n{'loss': '6.269', 'epoch': '0.2'}\n"
              "[2026-12-02 13:36:54,921] [WARNING] [real_accelerator.py:213:get_accelerator] Setting\n")
    stderr = ("Loading weights: 100%|██| 26/26 [00:00<00:00, 3699.56it/s]\r 50%|█  | 1/2 [00:00<00:00,  "
              "1.26it/s]\nbuild:  50%|███ | 55/110 it [00:00<00:00, trees=1/6]\n")
    assert len(third_party_lines(stdout, stderr)) == 4


@pytest.mark.slow
def test_sim_demo_console_has_no_third_party_lines(tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
               PYTHONPATH=str(REPO))
    for key in ("TQDM_DISABLE", "TRANSFORMERS_VERBOSITY", "HF_DATASETS_DISABLE_PROGRESS_BARS",
                "HF_HUB_DISABLE_PROGRESS_BARS"):
        env.pop(key, None)  # the console must be clean without the user's help
    proc = subprocess.run([sys.executable, "-m", "escpro", "demo", "--backend", "sim", "--out",
                           str(tmp_path / "demo")], capture_output=True, text=True, env=env,
                          timeout=900, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    bad = third_party_lines(proc.stdout, proc.stderr)
    assert len(bad) == 0, "\n".join(bad[:20])
    # escpro's own bars are there: the build's moves with iterations, training shows loss
    assert re.search(r"build: .*\d+/\d+ it .*trees=\d+/6", proc.stderr)
    assert re.search(r"train dpo: .*loss=", proc.stderr)
    assert "[6/6] eval" in proc.stdout
