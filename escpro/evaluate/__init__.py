"""Evaluation: test sets, batched generation, Q / Qw / B / ROUGE-L, baselines and reports."""
