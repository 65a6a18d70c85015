"""`build:` config section: the search's numbers (defaults from escpro.paper_defaults) and the
build's operational knobs (concurrency, commits, failure limits)."""

from __future__ import annotations

from pydantic import Field, model_validator

from escpro import paper_defaults as P
from escpro.config_base import Section

# Settings that decide what a tree looks like: a resumed build must use the same values, or the
# finished tree would be neither the old build nor the new one.
SEARCH_KEYS = (
    "c",
    "sim_max_rounds",
    "gold_q",
    "gold_n",
    "gold_unscored_scale",
    "gold_unscored_prior",
    "taxonomy",
    "reuse_answers",
    "max_consecutive_failures",
    "tree_parallel",
    "virtual_loss",
)


class BuildConfig(Section):
    # --- the paper's search (docs/paper.md section 3) ---
    c: float = Field(P.PUCB_C.value, ge=0, description="PUCB exploration constant")
    sim_max_rounds: int = Field(P.SIM_MAX_ROUNDS.value, ge=0, description="greedy rollout rounds")
    gold_q: float = Field(P.GOLD_Q.value, description="initial Q of gold nodes (and the root)")
    gold_n: int = Field(P.GOLD_N.value, ge=0, description="initial N of gold nodes (and the root)")
    gold_unscored_scale: float = Field(P.GOLD_UNSCORED_SCALE.value, gt=0, le=1)
    gold_unscored_prior: float = Field(P.GOLD_UNSCORED_PRIOR.value, ge=0, le=1)
    min_iterations: int = Field(P.MIN_ITERATIONS.value, ge=0)
    max_iterations: int = Field(P.MAX_ITERATIONS.value, ge=0)
    min_end_nodes: int = Field(P.MIN_END_NODES.value, ge=0)
    max_end_nodes: int = Field(P.MAX_END_NODES.value, ge=1)
    # --- operation ---
    concurrent_trees: int = Field(64, ge=1, description="tree searches in flight at once")
    reuse_answers: bool = Field(True, description="answer identical requests within a tree once")
    taxonomy: str = "cso8"
    tree_parallel: int = Field(
        1, ge=1, le=64,
        description="iterations of one tree in flight (virtual loss); 1 = the paper's sequential "
        "search, the only mode whose resume is replay-exact",
    )
    virtual_loss: float = Field(
        1.0, ge=0, description="reward each in-flight selection counts as, negated (tree_parallel > 1)"
    )
    max_consecutive_failures: int = Field(
        5, ge=1, description="iterations in a row without progress before a tree is marked failed"
    )
    failure_budget_max: float = Field(
        3.0, ge=1, le=100,
        description="how far a tree's failure budget grows with its share of failed iterations: "
        "max_consecutive_failures / (1 - share), at most this many times max_consecutive_failures "
        "(1 = a fixed budget)",
    )
    # Each commit opens the file, writes and closes it (so readers get in between): ~50 ms of
    # writer CPU on a build's file, ~20% of a build's CPU at 2 s against the simulator; at 5 s
    # a crash loses at most 5 s of iterations (re-run on --resume) (docs/performance.md).
    commit_interval_s: float = Field(
        5.0, gt=0, description="seconds between commits of finished iterations to DuckDB"
    )
    commit_max_rows: int = Field(20000, ge=1, description="commit early when this many rows wait")
    lock_timeout_s: float = Field(
        120.0, gt=0, description="how long a commit waits for a reader to release the file"
    )

    @model_validator(mode="after")
    def _ordered(self) -> BuildConfig:
        if self.min_iterations > self.max_iterations:
            raise ValueError("min_iterations must be <= max_iterations")
        if self.min_end_nodes > self.max_end_nodes:
            raise ValueError("min_end_nodes must be <= max_end_nodes")
        return self
