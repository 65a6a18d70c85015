"""Toxicity of seeds and ESC-Pro with a local classifier (the offline equivalent of paper
section 4.4 / Appendix C.4, Table 7, which used the online Perspective API).

Any Hugging Face sequence-classification model works (a local directory, or a hub id already in
the local cache): each utterance gets one score per label, and a group's score per label is the
mean over its utterances, as Table 7 reports it. The groups are Table 7's rows, built from the
same utterances Table 5 counts (escpro.extract.stats.utterance_groups), except empty ones (a
classifier has nothing to score there). Each distinct text is scored once; texts are sorted by
length before batching, so padding stays small.

Scores are probabilities: a multi-label model (Detoxify-style, e.g. unitary/unbiased-toxic-roberta
or unitary/toxic-bert) is read through a sigmoid per label, a single-label one through a softmax
over its labels. `activation="auto"` takes the model's own declaration (`problem_type`, or the
`function_to_apply` its config carries) and otherwise treats a one- or many-label head as
multi-label and a two-label head (e.g. neutral/toxic) as single-label.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

from escpro.errors import EscproError

Activation = Literal["auto", "sigmoid", "softmax"]

# Table 7's rows: (row label, the utterance groups it pools).
GROUP_ROWS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Seeds(seeker)", ("seed_seeker",)),
    ("Seeds(supporter)", ("seed_supporter",)),
    ("Seeds", ("seed_seeker", "seed_supporter")),
    ("ESC-Pro(seeker)", ("esc_pro_seeker",)),
    ("ESC-Pro(+)", ("esc_pro_preferred",)),
    ("ESC-Pro(-)", ("esc_pro_non_preferred",)),
    ("ESC-Pro", ("esc_pro_seeker", "esc_pro_preferred", "esc_pro_non_preferred")),
)


@dataclass(frozen=True)
class ToxicityOptions:
    model: str
    batch_size: int = 32
    max_length: int = 256
    activation: Activation = "auto"
    labels: tuple[str, ...] | None = None  # None: every label of the model
    device: str = "cpu"


@dataclass(frozen=True)
class GroupScores:
    row: str
    utterances: int
    means: dict[str, float | None]


@dataclass(frozen=True)
class ToxicityResult:
    model: str
    labels: tuple[str, ...]
    activation: str
    distinct_texts: int
    rows: tuple[GroupScores, ...]

    def to_dict(self) -> dict:
        return asdict(self)

    def csv_rows(self) -> list[dict]:
        return [{"row": g.row, "utterances": g.utterances, **g.means} for g in self.rows]


def _load(opts: ToxicityOptions):
    try:
        import torch  # noqa: F401
        from transformers import AutoModelForSequenceClassification, AutoTokenizer
    except ImportError:
        raise EscproError("--toxicity needs torch and transformers (pip install 'escpro[cpu]')") from None
    try:
        tok = AutoTokenizer.from_pretrained(opts.model)
        model = AutoModelForSequenceClassification.from_pretrained(opts.model)
    except (OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise EscproError(f"--toxicity {opts.model}: not a loadable sequence-classification model ({first})") from None
    return tok, model.to(opts.device).eval()


def resolve_activation(config, requested: Activation) -> str:
    """sigmoid or softmax for this model (see the module docstring for `auto`)."""
    if requested != "auto":
        return requested
    declared = getattr(config, "function_to_apply", None)
    if declared in ("sigmoid", "softmax"):
        return declared
    problem = getattr(config, "problem_type", None)
    if problem == "multi_label_classification":
        return "sigmoid"
    if problem == "single_label_classification":
        return "softmax"
    return "softmax" if int(config.num_labels) == 2 else "sigmoid"


def model_labels(config) -> tuple[str, ...]:
    return tuple(str(config.id2label[i]) for i in range(int(config.num_labels)))


def score_texts(tok, model, texts: list[str], *, batch_size: int, max_length: int, activation: str) -> list[list[float]]:
    """One probability per label for each text, batched (inference mode, no gradients)."""
    import torch

    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out: list[list[float] | None] = [None] * len(texts)
    device = next(model.parameters()).device
    accepted = _accepted(model)  # e.g. RoBERTa heads take no token_type_ids from every tokenizer
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            enc = tok([texts[i] for i in idx], padding=True, truncation=True,
                      max_length=max_length, return_tensors="pt")
            logits = model(**{k: v.to(device) for k, v in enc.items() if k in accepted}).logits.float()
            probs = torch.sigmoid(logits) if activation == "sigmoid" else torch.softmax(logits, dim=-1)
            for i, row in zip(idx, probs.tolist(), strict=True):
                out[i] = row
    return [r for r in out if r is not None]


def _accepted(model) -> set[str]:
    import inspect

    return set(inspect.signature(model.forward).parameters)


def score_groups(groups: dict[str, list[str]], opts: ToxicityOptions) -> ToxicityResult:
    """Mean score per label for each of Table 7's rows (None where a row has no utterance)."""
    if opts.batch_size < 1 or opts.max_length < 1:
        raise EscproError("--toxicity: batch size and max length must be at least 1")
    tok, model = _load(opts)
    labels = model_labels(model.config)
    keep = list(range(len(labels)))
    if opts.labels:
        missing = [lab for lab in opts.labels if lab not in labels]
        if missing:
            raise EscproError(f"--toxicity-labels: {missing[0]!r} is not a label of {opts.model} (labels: {', '.join(labels)})")
        keep = [labels.index(lab) for lab in opts.labels]
    activation = resolve_activation(model.config, opts.activation)
    groups = {k: [t for t in texts if t.strip()] for k, texts in groups.items()}  # nothing to score
    distinct = sorted({t for texts in groups.values() for t in texts})
    scores = dict(zip(distinct, score_texts(tok, model, distinct, batch_size=opts.batch_size,
                                            max_length=opts.max_length, activation=activation), strict=True))
    rows = []
    for row, parts in GROUP_ROWS:
        texts = [t for p in parts for t in groups.get(p, [])]
        means = {labels[k]: (sum(scores[t][k] for t in texts) / len(texts) if texts else None) for k in keep}
        rows.append(GroupScores(row, len(texts), means))
    return ToxicityResult(opts.model, tuple(labels[k] for k in keep), activation, len(distinct), tuple(rows))


def toxicity_text(res: ToxicityResult) -> str:
    """Table 7 as text: one row per group, one column per label."""
    w = max(10, *(len(lab) for lab in res.labels))
    head = f"{'':<18}{'n':>7}  " + "  ".join(lab.rjust(w) for lab in res.labels)
    lines = [f"Toxicity ({res.model}, {res.activation}; mean score per utterance)", head]
    for g in res.rows:
        cells = "  ".join(("" if v is None else f"{v:.4f}").rjust(w) for v in g.means.values())
        lines.append(f"{g.row:<18}{g.utterances:>7}  {cells}")
    return "\n".join(lines)
