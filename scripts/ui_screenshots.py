"""Screenshots of `escpro ui` for docs/ui.md, from a real sim build and two real eval runs.

Drives Debian's chromium (apt-get install chromium) with Playwright; never downloads a browser.

    python scripts/ui_screenshots.py --out docs/img
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def escpro(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "escpro", *args], check=True, cwd=REPO, stdout=subprocess.DEVNULL)


def make_data(d: Path) -> dict:
    db = d / "trees.duckdb"
    escpro("build", "--seeds", "escpro/data/demo_seeds.json", "--db", str(db), "--backend", "sim",
           "--config", "configs/build/tiny.yaml", "--random-seed", "0", "--no-progress", "--limit", "3")
    escpro("extract", "--db", str(db), "--out", str(d / "esc-pro"))
    escpro("eval", "testset", "--seeds", "escpro/data/demo_test_seeds.json", "--out", str(d / "test.jsonl"))
    for name, extra in (("sft", []), ("cso", ["--baseline", "direct-refine"])):
        escpro("eval", "run", "--backend", "sim", "--model", "sim", "--testset", str(d / "test.jsonl"),
               "--out", str(d / name), "--name", name.upper(), "--limit", "4", *extra)
    return {"db": db, "pairs": d / "esc-pro", "evals": (d / "sft", d / "cso"), "judgements": d / "j.sqlite"}


def shoot(out: Path, chromium: str) -> list[Path]:
    from playwright.sync_api import sync_playwright

    from escpro.ui.app import create_app
    from escpro.ui.options import UiOptions
    from escpro.ui.server import running

    with tempfile.TemporaryDirectory() as tmp:
        data = make_data(Path(tmp))
        app = create_app(UiOptions(**data))
        tree_id = app.state.ui.trees.summaries()[1]["tree_id"]
        shots = []
        with running(app) as url, sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 860})
            page.goto(f"{url}/trees/{tree_id}")
            page.wait_for_selector("#tree li[data-open='1'] ul li")
            page.click("#expand-paths")
            page.wait_for_timeout(600)
            page.locator("#tree .node.on-path").last.click()
            page.wait_for_selector("#dialogue")
            shots.append(out / "ui-tree.png")
            page.screenshot(path=str(shots[-1]))
            page.goto(f"{url}/eval/task?annotator=alice")
            for crit, choice in (("acceptance", "A"), ("effectiveness", "tie")):
                page.check(f"input[name={crit}][value={choice}]")
                page.wait_for_selector(f"tr[data-criterion={crit}] .saved:text('saved')")
            shots.append(out / "ui-eval.png")
            page.screenshot(path=str(shots[-1]), full_page=True)
            browser.close()
    return shots


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "img")
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    for p in shoot(a.out, a.chromium):
        print(f"wrote {p}")


if __name__ == "__main__":
    main()
