"""DuckDB schema: the public SQL interface (names are stable; columns may be added).

Ids are deterministic TEXT so that resume, shards and merge never collide:
tree_id = "<seeds sha256[:12]>-<seed index>", node_id = "<tree_id>/<child index path>" with the
root as "<tree_id>/r" and its children "<tree_id>/r.0", "<tree_id>/r.0.3", ...
"""

from __future__ import annotations

SCHEMA_VERSION = 1

# What the stored rows mean, as opposed to how they are laid out (SCHEMA_VERSION). Bumped when a
# change to how trees are built makes old trees differ from new ones, so a resumed build never
# continues trees grown under other rules. 1: escpro before the version was recorded (NULL).
# 2: issue 14's rule -- the Reward judge sees the dialogue up to the judged Supporter turn, and
# only the Seeker sees the seed's situation.
DATA_RULES_VERSION = 2

NODE_KINDS = ("root", "unexpanded", "expanded", "end")
CALL_STATUSES = ("ok", "invalid", "error", "timeout")
TREE_STATUSES = ("pending", "running", "done", "failed")

DDL = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    schema_version INTEGER NOT NULL,
    config JSON,
    code_version TEXT,
    taxonomy TEXT,
    seeds_sha256 TEXT,
    started_at TIMESTAMP,
    seeds_path TEXT,
    prompts JSON,
    shard TEXT,
    random_seed BIGINT,
    command TEXT,
    data_rules_version INTEGER,
    roles JSON,
    role_change JSON,
    retried_trees JSON
);
CREATE TABLE IF NOT EXISTS trees (
    tree_id TEXT PRIMARY KEY,
    run_id TEXT,
    seed_id TEXT,
    seed_index INTEGER,
    scene TEXT,
    situation TEXT,
    status TEXT,
    iterations INTEGER,
    end_count INTEGER,
    error TEXT,
    seed JSON,
    updated_at TIMESTAMP,
    stop_reason TEXT,
    node_count INTEGER,
    consecutive_failures INTEGER,
    failed_iterations INTEGER
);
CREATE TABLE IF NOT EXISTS nodes (
    node_id TEXT PRIMARY KEY,
    tree_id TEXT NOT NULL,
    parent_id TEXT,
    depth INTEGER,
    kind TEXT,
    strategy TEXT,
    prior DOUBLE,
    q DOUBLE,
    n INTEGER,
    supporter_text TEXT,
    seeker_text TEXT,
    is_end BOOLEAN,
    is_gold BOOLEAN,
    created_iter INTEGER,
    child_index INTEGER,
    strategy_score INTEGER
);
CREATE TABLE IF NOT EXISTS judgements (
    node_id TEXT NOT NULL,
    iteration INTEGER,
    empathy INTEGER,
    information INTEGER,
    humanoid INTEGER,
    strategy_score INTEGER,
    reward DOUBLE,
    tree_id TEXT,
    turn_offset INTEGER
);
CREATE TABLE IF NOT EXISTS llm_calls (
    call_id TEXT PRIMARY KEY,
    run_id TEXT,
    tree_id TEXT,
    node_id TEXT,
    iteration INTEGER,
    role TEXT,
    backend TEXT,
    model TEXT,
    prompt_hash TEXT,
    prompt_tokens INTEGER,
    completion_tokens INTEGER,
    latency_ms DOUBLE,
    status TEXT,
    error TEXT,
    response TEXT,
    attempts INTEGER,
    cached BOOLEAN,
    truncated_turns INTEGER
);
"""
