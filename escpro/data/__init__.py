"""Data shipped with escpro: the demo's seed dialogues (written by this project, ExTES format)."""

from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent
DEMO_SEEDS = DATA_DIR / "demo_seeds.json"
