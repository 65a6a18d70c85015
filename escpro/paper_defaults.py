"""Every number taken from the CSO paper or the authors' released code, with its source, in one
place. Config models use these as defaults; no other module repeats them as literals.

Sources: "paper" = Chain of Strategy Optimization (CSO) paper text; "reference" = the authors'
released code as described in docs/paper.md; "notes" = the project's reading of an ambiguity,
explained in docs/paper.md.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Value:
    value: float | int | str
    source: str


# Role models (docs/paper.md section 2)
STRATEGY_SCORE_MIN = Value(1, "paper Appendix A: strategies scored 1..10")
STRATEGY_SCORE_MAX = Value(10, "paper Appendix A: strategies scored 1..10")
PRIOR_TEMPERATURE = Value(5.0, "reference code: softmax(score / 5)")
REWARD_SCORE_MIN = Value(0, "paper Table 12: each criterion 0..4")
REWARD_SCORE_MAX = Value(4, "paper Table 12: each criterion 0..4")
REWARD_ALPHA = Value(7.0, "paper section 3.1 / Appendix F.1: strategy weight alpha = 7")
REWARD_BIAS = Value(-3.0, "paper section 3.1 / Appendix F.1: bias b = -3")

# MCTS (docs/paper.md section 3)
PUCB_C = Value(1.0, "paper Appendix F.1: exploration constant c = 1")
SIM_MAX_ROUNDS = Value(4, "reference code: sim_max_round = 4")
GOLD_Q = Value(1.0, "reference code: gold nodes Q = 1 (= 4 + b)")
GOLD_N = Value(100, "reference code: gold nodes N = 100")
GOLD_UNSCORED_SCALE = Value(0.9, "reference code: others x 0.9 when gold strategy unscored")
GOLD_UNSCORED_PRIOR = Value(0.1, "reference code: gold prior 0.1 when gold strategy unscored")
MIN_ITERATIONS = Value(100, "reference code: min iterations 100")
MAX_ITERATIONS = Value(200, "reference code: max iterations 200")
MIN_END_NODES = Value(1, "reference code: stop after min iterations once 1 end node exists")
MAX_END_NODES = Value(25, "reference code: stop at 25 end nodes")

# Extraction (docs/paper.md section 4)
THETA = Value(0.5, "paper section 3.2: Q threshold theta = 0.5 (raw score 3.5)")
REFERENCE_MIN_N = Value(2, "reference code: valid end node needs N >= 2")
STAGES = Value(5, "notes: stage = floor(5 * i / n) / 5, six stages")

# Training (docs/paper.md section 5)
LORA_ALPHA = Value(8, "paper Appendix F.2: LoRA alpha 8")
LORA_DROPOUT = Value(0.0, "paper Appendix F.2: LoRA dropout 0")
LORA_RANK = Value(8, "notes: rank not given; LLaMA-Factory default r = 8")
MAX_TARGET_LENGTH = Value(512, "paper Appendix F.2: max target length 512")

# Training schedules and loss parameters (docs/paper.md section 5; paper Appendix F.2 / G).
# Table 13: (epochs, GLOBAL batch size, learning rate); the "CSO" column ("pref") applies to every
# preference method (dpo, ipo, simpo, kto, orpo), the "SFT" column to sft.
TRAIN_TABLE13_SOURCE = "paper Appendix F.2 Table 13 (epochs / global batch / lr; CSO column for all preference methods)"
TRAIN_TABLE13: dict[tuple[str, str, str], tuple[int, int, float]] = {
    ("llama31-8b", "full", "sft"): (1, 32, 5e-7),
    ("llama31-8b", "full", "pref"): (3, 32, 5e-7),
    ("llama31-8b", "lora", "sft"): (3, 32, 1e-6),
    ("llama31-8b", "lora", "pref"): (3, 32, 1e-6),
    ("qwen25-7b", "full", "sft"): (1, 32, 5e-7),
    ("qwen25-7b", "full", "pref"): (3, 32, 6e-7),
    ("qwen25-7b", "lora", "sft"): (3, 32, 1e-6),
    ("qwen25-7b", "lora", "pref"): (1, 128, 5e-7),
    ("gemma2-9b", "full", "sft"): (1, 32, 5e-7),
    ("gemma2-9b", "full", "pref"): (1, 32, 5e-7),
    ("gemma2-9b", "lora", "sft"): (3, 32, 5e-7),
    ("gemma2-9b", "lora", "pref"): (3, 8, 6e-7),
}
# Table 14: loss parameters per (backbone, mode): beta (DPO/IPO/ORPO/KTO/SimPO), SimPO gamma,
# KTO desirable/undesirable weights.
TRAIN_TABLE14_SOURCE = "paper Appendix G Table 14 (beta; SimPO gamma; KTO desirable/undesirable weight)"
TRAIN_TABLE14: dict[tuple[str, str], dict[str, dict[str, float]]] = {
    ("llama31-8b", "full"): {"dpo": {"beta": 0.7}, "simpo": {"beta": 3.3, "simpo_gamma": 2.0}, "ipo": {"beta": 1.0}, "kto": {"beta": 0.9, "desirable_weight": 1.0, "undesirable_weight": 0.5}, "orpo": {"beta": 1.3}},
    ("llama31-8b", "lora"): {"dpo": {"beta": 0.01}, "simpo": {"beta": 2.0, "simpo_gamma": 0.5}, "ipo": {"beta": 0.1}, "kto": {"beta": 0.01, "desirable_weight": 1.0, "undesirable_weight": 1.0}, "orpo": {"beta": 1.0}},
    ("qwen25-7b", "full"): {"dpo": {"beta": 0.1}, "simpo": {"beta": 1.5, "simpo_gamma": 3.5}, "ipo": {"beta": 0.5}, "kto": {"beta": 0.07, "desirable_weight": 1.0, "undesirable_weight": 0.5}, "orpo": {"beta": 0.7}},
    ("qwen25-7b", "lora"): {"dpo": {"beta": 0.1}, "simpo": {"beta": 3.5, "simpo_gamma": 3.0}, "ipo": {"beta": 0.01}, "kto": {"beta": 0.05, "desirable_weight": 1.0, "undesirable_weight": 0.5}, "orpo": {"beta": 2.0}},
    ("gemma2-9b", "full"): {"dpo": {"beta": 0.5}, "simpo": {"beta": 3.5, "simpo_gamma": 2.0}, "ipo": {"beta": 1.0}, "kto": {"beta": 0.5, "desirable_weight": 1.0, "undesirable_weight": 0.6}, "orpo": {"beta": 0.06}},
    ("gemma2-9b", "lora"): {"dpo": {"beta": 0.1}, "simpo": {"beta": 1.5, "simpo_gamma": 2.0}, "ipo": {"beta": 0.2}, "kto": {"beta": 0.5, "desirable_weight": 1.0, "undesirable_weight": 0.3}, "orpo": {"beta": 0.02}},
}
TRAIN_BACKBONES: dict[str, str] = {  # paper section 4: the three backbones (official instruct releases)
    "llama31-8b": "meta-llama/Llama-3.1-8B-Instruct",
    "qwen25-7b": "Qwen/Qwen2.5-7B-Instruct",
    "gemma2-9b": "google/gemma-2-9b-it",
}
PAPER_NUM_GPUS = Value(8, "notes: Table 13 batch sizes are global over 8 GPUs")
