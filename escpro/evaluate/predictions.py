"""Reading prediction files: escpro's predictions JSONL and Kang et al.'s published JSON arrays.

Both become a list of PredItem with labels already mapped to the taxonomy's canonical names, so
the metrics compare labels case-insensitively (as Kang et al. lowercase theirs) and never see a
spelling variant as a different strategy.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from escpro.errors import DataError
from escpro.formatting import parse_supporter_turn
from escpro.jsonl import iter_objects
from escpro.taxonomy import Strategy, Taxonomy, load_taxonomy

# Taxonomy used when none is given: Kang et al.'s files use ESConv's 8 strategies.
DEFAULT_TAXONOMY = {"kang": "esconv8", "escpro": "cso8"}


@dataclass(frozen=True)
class PredItem:
    id: str
    gold: str | None  # canonical gold strategy; None = item counts toward ROUGE-L only
    pred: str | None  # canonical predicted strategy; None when invalid (or gold is None)
    invalid: bool  # a strategy was expected but none known was produced
    pred_label: str | None  # the raw predicted label, for reporting invalid ones
    response_gold: str | None
    response_pred: str | None


def labels_taxonomy(labels: str) -> Taxonomy:
    """A taxonomy from a comma-separated label list (`escpro score --labels`)."""
    names = [x.strip() for x in labels.split(",") if x.strip()]
    if not names:
        raise DataError("--labels: give at least one label, comma-separated")
    if len({n.lower() for n in names}) != len(names):
        raise DataError("--labels: duplicate labels")
    return Taxonomy(name="labels", strategies=tuple(Strategy(n, "") for n in names))


def detect_format(path: Path) -> str:
    """'kang' for a JSON array, 'escpro' for JSONL (one object per line)."""
    with path.open("r", encoding="utf-8") as fh:
        head = fh.read(4096).lstrip("\ufeff \t\r\n")
    return "kang" if head.startswith("[") else "escpro"


def _run_taxonomy(path: Path) -> str | None:
    """The taxonomy recorded by `escpro eval run` beside its predictions, if any."""
    meta = path.parent / "run.json"
    if meta.is_file():
        try:
            return json.loads(meta.read_text(encoding="utf-8")).get("taxonomy")
        except (json.JSONDecodeError, AttributeError):
            return None
    return None


def resolve_taxonomy(path: Path, fmt: str, taxonomy: str | None, labels: str | None) -> Taxonomy:
    if taxonomy and labels:
        raise DataError("give --taxonomy or --labels, not both")
    if labels:
        return labels_taxonomy(labels)
    name = taxonomy or (_run_taxonomy(path) if fmt == "escpro" else None) or DEFAULT_TAXONOMY[fmt]
    return load_taxonomy(name)


def _gold(label: object, tax: Taxonomy, where: str) -> str | None:
    if label is None or (isinstance(label, str) and not label.strip()):
        return None
    if not isinstance(label, str):
        raise DataError(f"{where}: gold strategy must be a string, got {type(label).__name__}")
    canon = tax.canonical(label)
    if canon is None:
        raise DataError(
            f"{where}: gold strategy '{label}' is not in taxonomy {tax.name} "
            f"({', '.join(tax.names)}); pass --taxonomy or --labels"
        )
    return canon


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def read_kang(path: Path, tax: Taxonomy) -> list[PredItem]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(data, list):
        raise DataError(f"{path}: expected a JSON array of prediction records")
    items = []
    for n, rec in enumerate(data):
        where = f"{path}: record {n}"
        if not isinstance(rec, dict):
            raise DataError(f"{where}: not an object")
        if "strg_gold" not in rec or "strg_pred" not in rec:
            raise DataError(f"{where}: needs 'strg_gold' and 'strg_pred' (Kang et al.'s format)")
        gold = _gold(rec.get("strg_gold"), tax, where)
        raw = rec.get("strg_pred")
        raw = raw if isinstance(raw, str) else None
        pred = tax.canonical(raw) if raw else None
        res_pred = _text(rec.get("res_pred"))
        if res_pred is not None:
            canon, reply, _ = parse_supporter_turn(res_pred, tax)
            if canon is not None:  # strip a "(Strategy)" prefix only when it names a strategy
                res_pred = reply
        items.append(
            _item(str(rec.get("sample_id", n)), gold, pred, raw, _text(rec.get("res_gold")), res_pred)
        )
    return items


def _item(item_id: str, gold: str | None, pred: str | None, label: str | None,
          response_gold: str | None, response_pred: str | None) -> PredItem:
    """One prediction; the invalid-prediction policy lives here for both input formats: with a
    gold label, a missing/unknown predicted strategy is invalid; without one (ROUGE-L-only
    items) the strategy is not scored."""
    return PredItem(
        id=item_id,
        gold=gold,
        pred=pred if gold is not None else None,
        invalid=gold is not None and pred is None,
        pred_label=label,
        response_gold=response_gold,
        response_pred=response_pred,
    )


def read_escpro(path: Path, tax: Taxonomy) -> list[PredItem]:
    items = []
    for lineno, where, rec in iter_objects(path):
        if "strategy_pred" not in rec and "response_pred" not in rec:
            raise DataError(f"{where}: needs 'strategy_pred' and/or 'response_pred'")
        gold = _gold(rec.get("strategy_gold"), tax, where)
        raw = rec.get("strategy_pred")
        raw = raw if isinstance(raw, str) else None
        pred = tax.canonical(raw) if raw else None
        if rec.get("invalid") is True:
            pred = None
        items.append(
            _item(str(rec.get("id", lineno)), gold, pred,
                  raw if raw is not None else _text(rec.get("strategy_label")),
                  _text(rec.get("response_gold")), _text(rec.get("response_pred")))
        )
    return items


def read_predictions(
    path: str | Path, *, taxonomy: str | None = None, labels: str | None = None
) -> tuple[list[PredItem], Taxonomy, str]:
    """(items, taxonomy, format) from either prediction format."""
    p = Path(path)
    if p.is_dir():
        p = p / "predictions.jsonl"
    if not p.is_file():
        raise DataError(f"{p}: predictions file not found")
    fmt = detect_format(p)
    tax = resolve_taxonomy(p, fmt, taxonomy, labels)
    items = read_kang(p, tax) if fmt == "kang" else read_escpro(p, tax)
    if not items:
        raise DataError(f"{p}: no prediction records")
    return items, tax, fmt
