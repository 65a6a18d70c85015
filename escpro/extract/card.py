"""The dataset card (README.md) of an `escpro extract` directory, its strict-template variant and
the push to the Hugging Face Hub.

The card's YAML front matter lists the pairs/kto/sft files as `configs:`, so
`datasets.load_dataset(DIR)` (or a Hub repo made from DIR) loads them without arguments; the body
says where the data came from (seeds, taxonomy, role models and backends, search settings, the
extraction rule, counts) and under which licence it may be used.

The strict variant exists for chat templates that accept only user/assistant turns strictly
alternating from a user turn (Gemma's raise on a system message): the system prompt is folded
into the first user turn and a conversation never starts with the assistant.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import yaml

from escpro.errors import ConfigError, EscproError

CARD = "README.md"
STRICT_DIR = "strict"
KINDS = (("pairs", "pairs.jsonl", "preference pairs (TRL conversational: prompt, chosen, rejected)"),
         ("kto", "kto.jsonl", "unpaired KTO records (prompt, completion, label)"),
         ("sft", "sft.jsonl", "SFT dialogues (messages) of every valid path"))
# Licences of the seed corpora escpro reads (README "Licences and intended use").
SEED_LICENCES = (("esconv", "cc-by-nc-4.0", "ESConv: CC BY-NC 4.0, research use only"),
                 ("extes", "other", "ExTES: released under its authors' terms (see the ExTES repository)"),
                 ("demo_seeds", "apache-2.0", "escpro's bundled demo seeds: written by the escpro project, Apache-2.0"))


class PushError(EscproError):
    """The dataset could not be pushed to the Hub (offline, no token, refused)."""


# ---- strict-template variant ---------------------------------------------------------------
def strict_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """System text folded into the first user turn, no leading assistant turn, and turns of one
    role in a row merged, so the roles alternate user/assistant from a user turn."""
    system = "\n\n".join(m["content"] for m in messages if m["role"] == "system")
    rest = [dict(m) for m in messages if m["role"] != "system"]
    if rest and rest[0]["role"] == "assistant":
        # an opening supporter greeting: kept as context inside the first user turn
        rest.insert(0, {"role": "user", "content": ""})
    merged: list[dict[str, Any]] = []
    for m in rest:
        if merged and merged[-1]["role"] == m["role"]:
            merged[-1]["content"] = "\n\n".join(x for x in (merged[-1]["content"], m["content"]) if x)
        else:
            merged.append(m)
    if system:
        if merged and merged[0]["role"] == "user":
            merged[0]["content"] = "\n\n".join(x for x in (system, merged[0]["content"]) if x)
        else:
            merged.insert(0, {"role": "user", "content": system})
    return merged


def strict_record(kind: str, rec: dict[str, Any]) -> dict[str, Any]:
    out = dict(rec)
    if kind == "sft":
        out["messages"] = strict_messages(rec["messages"])
    else:
        out["prompt"] = strict_messages(rec["prompt"])
    return out


def write_strict(out: Path) -> dict[str, dict]:
    """strict/<file> for every data file present; returns {path: {records, sha256}}."""
    from escpro.extract.export import write_jsonl

    (out / STRICT_DIR).mkdir(exist_ok=True)
    files = {}
    for kind, name, _ in KINDS:
        src = out / name
        if not src.is_file():
            continue
        recs = [strict_record(kind, json.loads(line)) for line in src.read_text(encoding="utf-8").splitlines()
                if line.strip()]
        files[f"{STRICT_DIR}/{name}"] = {"records": len(recs), "sha256": write_jsonl(out / STRICT_DIR / name, recs)}
    return files


# ---- provenance ------------------------------------------------------------------------------
def run_provenance(db_path: Path) -> list[dict[str, Any]]:
    """What each build run of the file was: seeds, seed, code, search settings, role models."""
    from escpro.store.reader import open_db

    with open_db(db_path) as con:
        cols = {r[0] for r in con.execute("SELECT column_name FROM information_schema.columns "
                                          "WHERE table_name = 'runs'").fetchall()}
        want = [c for c in ("run_id", "seeds_path", "seeds_sha256", "random_seed", "code_version",
                            "started_at", "shard", "config") if c in cols]
        rows = con.execute(f"SELECT {', '.join(want)} FROM runs ORDER BY run_id").fetchall()
    out = []
    for row in rows:
        r = dict(zip(want, row, strict=True))
        cfg = r.pop("config", None)
        cfg = json.loads(cfg) if isinstance(cfg, str) else (cfg or {})
        r["roles"] = cfg.get("resolved_roles") or {}
        r["search"] = cfg.get("build") or {}
        r["started_at"] = str(r.get("started_at") or "")
        out.append(r)
    return out


def seed_licence(runs: list[dict[str, Any]], override: str | None) -> tuple[str, str]:
    """(licence id for the card's metadata, the sentence that explains it)."""
    if override:
        return override, f"set by the user (--license {override})"
    found = []
    for r in runs:
        name = Path(str(r.get("seeds_path") or "")).name.lower()
        hit = next(((lic, why) for key, lic, why in SEED_LICENCES if key in name), None)
        found.append(hit or ("other", f"unknown: the seeds file {name or '?'} is not one escpro recognises"))
    ids = {lic for lic, _ in found}
    if len(ids) == 1:
        return found[0][0], "; ".join(sorted({why for _, why in found}))
    return "other", "mixed seed licences: " + "; ".join(sorted({why for _, why in found}))


# ---- the card --------------------------------------------------------------------------------
def front_matter(files: dict[str, Any], licence: str, n: int) -> dict[str, Any]:
    configs = []
    for kind, name, _ in KINDS:
        for prefix, suffix in (("", ""), (f"{STRICT_DIR}/", "_strict")):
            if f"{prefix}{name}" in files:
                cfg = {"config_name": f"{kind}{suffix}", "data_files": [{"split": "train", "path": f"{prefix}{name}"}]}
                if kind == "pairs" and not suffix:
                    cfg["default"] = True
                configs.append(cfg)
    size = "n<1K" if n < 1000 else "1K<n<10K" if n < 10_000 else "10K<n<100K" if n < 100_000 else "n>100K"
    meta: dict[str, Any] = {"license": licence, "language": ["en"], "pretty_name": "ESC-Pro (built with escpro)",
                            "task_categories": ["text-generation"], "size_categories": [size],
                            "tags": ["emotional-support", "preference", "dpo", "kto", "mcts", "escpro"],
                            "configs": configs}
    if licence == "other":
        meta["license_name"] = "seed-dialogue-terms"  # explained in the card's licence section
    return meta


def _roles_table(runs: list[dict[str, Any]]) -> list[str]:
    lines = ["| run | role | backend | model |", "|---|---|---|---|"]
    for r in runs:
        for role, b in sorted((r.get("roles") or {}).items()):
            lines.append(f"| {r['run_id']} | {role} | {b.get('backend', '?')} | {b.get('model', '?')} |")
    return lines


def card_text(manifest: dict[str, Any], runs: list[dict[str, Any]], files: dict[str, Any],
              licence: tuple[str, str]) -> str:
    counts = manifest.get("counts", {})
    meta = front_matter(files, licence[0], int(counts.get("pairs") or 0))
    search_keys = ("c", "min_iterations", "max_iterations", "min_end_nodes", "max_end_nodes", "sim_max_rounds",
                   "gold_q", "gold_n")
    lines = ["---", yaml.safe_dump(meta, sort_keys=False).rstrip(), "---", "",
             "# ESC-Pro (built with escpro)", "",
             "Turn-level preference data for emotional-support dialogue, built by Monte Carlo Tree Search "
             "over support strategies (\"Chain of Strategy Optimization Makes Large Language Models Better "
             "Emotional Supporter\"), with escpro "
             f"{manifest.get('escpro_version', '')}.", "",
             "## Files", "", "| config | file | records | what |", "|---|---|---:|---|"]
    for kind, name, what in KINDS:
        for prefix, suffix, note in (("", "", ""), (f"{STRICT_DIR}/", "_strict", " (strict-template variant)")):
            if f"{prefix}{name}" in files:
                lines.append(f"| {kind}{suffix} | {prefix}{name} | {files[prefix + name]['records']} | {what}{note} |")
    lines += ["", "`llamafactory/` holds the same data for LLaMA-Factory (sharegpt + dataset_info.json). The "
              "`*_strict` configs fold the system prompt into the first user turn and never start with the "
              "assistant, for chat templates that reject a system role (Gemma).", "",
              "```python", "from datasets import load_dataset", "pairs = load_dataset(\"DIR_OR_REPO\", \"pairs\", split=\"train\")",
              "```", "", "## Provenance", "",
              f"- taxonomy: {manifest.get('taxonomy')} ({', '.join(manifest.get('strategies', []))})",
              f"- extraction rule: {manifest.get('rule')}: {manifest.get('rule_text')} (theta {manifest.get('theta')})",
              f"- database: sha256 {manifest.get('db_sha256')}", ""]
    for r in runs:
        s = r.get("search") or {}
        shown = ", ".join(f"{k} {s[k]}" for k in search_keys if k in s)
        lines += [f"- run {r['run_id']} ({r.get('started_at')}): seeds {Path(str(r.get('seeds_path'))).name} "
                  f"(sha256 {str(r.get('seeds_sha256'))[:12]}), random seed {r.get('random_seed')}, "
                  f"code {r.get('code_version')}", f"  - search: {shown}"]
    lines += ["", *_roles_table(runs), ""]
    if any(b.get("backend") == "sim" for r in runs for b in (r.get("roles") or {}).values()):
        lines += ["**Built with escpro's simulator backend**: the texts are placeholders for testing the "
                  "pipeline, not dialogue data.", ""]
    lines += ["Counts:", ""]
    lines += [f"- {k}: {v}" for k, v in counts.items()]
    lines += ["", "manifest.json has every file's sha256 and the trees without a result.", "",
              "## Licence and intended use", "",
              f"Licence: **{licence[0]}** ({licence[1]}). The data keeps the licence of the seed dialogues it "
              "was expanded from.", "",
              "Research use. Models trained on this data are not a substitute for professional mental-health "
              "care or crisis support and must not be deployed to people in distress without clinical "
              "oversight. Texts written by language models may be wrong, biased or unsafe.", ""]
    return "\n".join(lines)


def write_card(out: Path, manifest: dict[str, Any], db_path: Path, *, licence: str | None = None) -> dict[str, Any]:
    """README.md for an extract directory (its files as listed in the manifest)."""
    from escpro.extract.export import _atomic_write

    files = dict(manifest.get("files", {}))
    runs = run_provenance(db_path)
    lic = seed_licence(runs, licence)
    _atomic_write(out / CARD, card_text(manifest, runs, files, lic))
    return {"card": str(out / CARD), "license": lic[0], "license_note": lic[1]}


def push_to_hub(out: Path, repo: str) -> str:
    """Upload DIR as a Hub dataset repo (created private: the owner decides to publish it);
    refuses at once when offline or without a token."""
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        raise PushError(f"--push-to-hub {repo}: HF_HUB_OFFLINE is set, so nothing was pushed; the dataset is in {out}")
    if "/" not in repo or repo.count("/") != 1:
        raise ConfigError(f"--push-to-hub {repo}: give the repo as OWNER/NAME")
    from huggingface_hub import HfApi
    from huggingface_hub.utils import get_token

    if not get_token():
        raise PushError(f"--push-to-hub {repo}: no Hugging Face token (run `hf auth login` or set HF_TOKEN); "
                        f"the dataset is in {out}")
    api = HfApi()
    try:
        api.create_repo(repo, repo_type="dataset", private=True, exist_ok=True)
        info = api.upload_folder(folder_path=str(out), repo_id=repo, repo_type="dataset",
                                 commit_message="escpro extract")
    except Exception as exc:  # network and Hub errors: one line, the files stay on disk
        raise PushError(f"--push-to-hub {repo}: {str(exc).splitlines()[0][:200]}; the dataset is in {out}") from None
    return str(getattr(info, "commit_url", "") or f"https://huggingface.co/datasets/{repo}")
