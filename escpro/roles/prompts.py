"""Prompts of the four roles, rendered from editable templates in escpro/data/prompts/.

Each role has one YAML template with three `string.Template` texts: `system` and `user` (the chat
messages for models with a chat template) and `transcript` (a plain text a base model continues).
A user can tune the wording without touching code (`roles.prompts_dir`); `template_record()` gives
the name, sha256 and text of every template in use so a run can record exactly what it asked.

Who sees what (paper section 3.1 and Appendix A; the authors' run.py): only the Seeker role-plays
from the seed's scene and situation. The Supporter, Strategy and Reward roles see the dialogue
alone, as the trained model does; otherwise preferred replies could use facts the seeker never
said. `share_situation=True` (config `roles.share_situation`, a documented deviation) gives them
a `${background}` block too; with it off a non-seeker template that asks for `${scene}` or
`${situation}` is refused rather than silently shown the seeker's private situation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from string import Template
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator

from escpro import paper_defaults as P
from escpro.atomic import sha256_text
from escpro.errors import ConfigError
from escpro.fileformat import validate_file
from escpro.paths import data_path
from escpro.roles.api import DialogueContext
from escpro.roles.schemas import json_keys_hint, reward_schema, strategy_schema
from escpro.taxonomy import Taxonomy
from escpro.yamlfile import parse_bounded, read_bounded_text

PROMPT_ROLES: tuple[str, ...] = ("seeker", "supporter", "strategy", "reward")
SEEKER_LABEL = "Seeker"
SUPPORTER_LABEL = "Supporter"
EMPTY_HISTORY = "(nothing has been said yet)"
# Strategies the authors' Strategy prompt tells the scorer not to pick every time ("Don't always
# use Collaborative Planning", run.py STRATEGY_QUERY); named only when the taxonomy has them.
OVERUSED_STRATEGIES: tuple[str, ...] = ("Collaborative Planning",)
# The seed's private situation, for the Seeker (and for the others only with share_situation).
PRIVATE_PLACEHOLDERS = frozenset({"scene", "situation"})

# Placeholders each role's templates may use (anything else is a config error, caught at load).
_COMMON = {"scene", "situation", "background", "history", "seeker", "supporter"}
PLACEHOLDERS: dict[str, set[str]] = {
    "seeker": _COMMON | {"end_marker"},
    "supporter": _COMMON | {"strategy", "definition"},
    "strategy": _COMMON | {"strategies", "keys", "score_min", "score_max", "overused_note"},
    "reward": _COMMON | {"last_strategy", "score_min", "score_max"},
}


@dataclass(frozen=True)
class RoleTemplate:
    role: str
    path: str
    text: str
    sha256: str
    system: Template
    user: Template
    transcript: Template

    def identifiers(self) -> set[str]:
        return {i for t in (self.system, self.user, self.transcript) for i in t.get_identifiers()}


@dataclass(frozen=True)
class Prompt:
    """A rendered prompt: chat messages, the base-model transcript, the schema (or None)."""

    messages: tuple[Mapping[str, str], ...]
    transcript: str | None
    schema: Mapping[str, Any] | None = None


def default_prompts_dir() -> Path:
    return data_path("prompts")


def _template_path(role: str, prompts_dir: str | Path | None) -> Path:
    if prompts_dir is not None:
        p = Path(prompts_dir) / f"{role}.yaml"
        if p.exists():
            return p
    return default_prompts_dir() / f"{role}.yaml"


@lru_cache(maxsize=256)
def format_string(template: str) -> str:
    """A valid `string.Template` text as the equivalent `str.format` text. Prompts are rendered
    with `format_map`, which runs in C, where `Template.substitute` calls back into Python for
    every placeholder (about half of a prompt's render time, on every call of a build). Values
    render alike (`format(v, "")` is `str(v)` for the strings and integers prompts take)."""
    def literal(text: str) -> str:
        return text.replace("{", "{{").replace("}", "}}")

    out, pos = [], 0
    for m in Template.pattern.finditer(template):
        out.append(literal(template[pos:m.start()]))
        if m.group("escaped") is not None:
            out.append("$")
        elif m.group("invalid") is not None:
            raise ValueError("invalid $-placeholder (write $$ for a literal $)")
        else:
            out.append("{" + (m.group("named") or m.group("braced")) + "}")
        pos = m.end()
    out.append(literal(template[pos:]))
    return "".join(out)


def _template(v: Any, info: ValidationInfo) -> Template:
    """One template text: non-empty, valid $-placeholders, only the role's placeholders."""
    if not isinstance(v, str) or not v.strip():
        raise ValueError("a non-empty string is required")
    tpl = Template(v)
    if not tpl.is_valid():
        raise ValueError("invalid $-placeholder (write $$ for a literal $)")
    allowed = PLACEHOLDERS[(info.context or {})["role"]]
    ok = allowed | ({"system", "user"} if info.field_name == "transcript" else set())
    unknown = sorted(set(tpl.get_identifiers()) - ok)
    if unknown:
        raise ValueError(f"unknown placeholder ${{{unknown[0]}}} (allowed: {', '.join(sorted(ok))})")
    return tpl


class TemplateFile(BaseModel):
    """The YAML shape of a role template (escpro/data/prompts/<role>.yaml); validated with the
    role in the context, which decides the placeholders allowed."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)
    system: Template
    user: Template
    transcript: Template

    _check = field_validator("system", "user", "transcript", mode="plain")(_template)


def _load_one(role: str, path: Path) -> RoleTemplate:
    text = read_bounded_text(path, "prompt template")  # read once: parsed, and hashed below
    data = parse_bounded(path, text, "prompt template")
    parts = validate_file(TemplateFile, data, path, context={"role": role})
    return RoleTemplate(
        role=role,
        path=str(path),
        text=text,
        sha256=sha256_text(text),
        system=parts.system,
        user=parts.user,
        transcript=parts.transcript,
    )


def load_templates(prompts_dir: str | Path | None = None) -> dict[str, RoleTemplate]:
    """The four role templates: from `prompts_dir` where a file exists there, else the shipped
    ones. Raises ConfigError naming the file and key on any problem."""
    return {role: _load_one(role, _template_path(role, prompts_dir)) for role in PROMPT_ROLES}


def template_record(
    prompts_dir: str | Path | None = None, templates: Mapping[str, RoleTemplate] | None = None
) -> dict[str, dict[str, str]]:
    """{template name: {"path", "sha256", "text"}} of the templates in use, for the run record."""
    tpls = templates if templates is not None else load_templates(prompts_dir)
    return {
        f"{t.role}.yaml": {"path": t.path, "sha256": t.sha256, "text": t.text} for t in tpls.values()
    }


def render_history(ctx: DialogueContext, *, with_strategies: bool) -> str:
    lines = []
    for u in ctx.history:
        if u.speaker == "seeker":
            lines.append(f"{SEEKER_LABEL}: {u.text}")
        elif with_strategies and u.strategy:
            lines.append(f"{SUPPORTER_LABEL} ({u.strategy}): {u.text}")
        else:
            lines.append(f"{SUPPORTER_LABEL}: {u.text}")
    return "\n".join(lines) if lines else EMPTY_HISTORY


def render_transcript(messages: Sequence[Mapping[str, str]]) -> str:
    """A generic base-model rendering of chat messages (used when a request carries no
    role-specific transcript)."""
    parts = []
    for m in messages:
        role = m.get("role", "user")
        content = m.get("content", "")
        if role == "system":
            parts.append(content)
        else:
            parts.append(f"{role.capitalize()}: {content}")
    parts.append("Assistant:")
    return "\n\n".join(parts)


class PromptBuilder:
    """Renders the four roles' prompts for one taxonomy and one set of templates."""

    def __init__(
        self,
        taxonomy: Taxonomy,
        templates: Mapping[str, RoleTemplate] | None = None,
        *,
        end_marker: str = "[END]",
        share_situation: bool = False,
    ) -> None:
        self.taxonomy = taxonomy
        self.templates = dict(templates) if templates is not None else load_templates()
        self.end_marker = end_marker
        self.share_situation = share_situation
        if not share_situation:
            for role, tpl in self.templates.items():
                private = sorted(tpl.identifiers() & PRIVATE_PLACEHOLDERS) if role != "seeker" else []
                if private:
                    raise ConfigError(
                        f"{tpl.path}: uses ${{{private[0]}}}, but only the Seeker sees the seed's "
                        "scene and situation (set roles.share_situation: true to show them to "
                        f"the {role} role; docs/fidelity.md)"
                    )
        overused = [n for n in OVERUSED_STRATEGIES if n in taxonomy.names]
        self._overused_note = (
            f"Do not always choose {' or '.join(overused)}." if overused else ""
        )
        self.strategy_schema = strategy_schema(taxonomy.names)
        self.reward_schema = reward_schema()
        self._keys_hint = json_keys_hint(taxonomy.names)
        self._strategy_list = "\n".join(f"- {s.name}: {s.definition}" for s in taxonomy.strategies)

    def _render(
        self, role: str, values: dict[str, Any], schema: Mapping[str, Any] | None, transcript: bool
    ) -> Prompt:
        """`transcript=False` skips the base-model rendering (chat backends never read it)."""
        tpl = self.templates[role]
        system = format_string(tpl.system.template).format_map(values)
        user = format_string(tpl.user.template).format_map(values)
        text = (format_string(tpl.transcript.template).format_map({**values, "system": system, "user": user})
                if transcript else None)
        messages = ({"role": "system", "content": system}, {"role": "user", "content": user})
        return Prompt(messages=messages, transcript=text, schema=schema)

    def _base(
        self, ctx: DialogueContext, *, with_strategies: bool, private: bool = False
    ) -> dict[str, Any]:
        """Values every template may use; the scene and situation only when `private` (the
        Seeker) or share_situation, else `${background}` is empty."""
        values: dict[str, Any] = {
            "history": render_history(ctx, with_strategies=with_strategies),
            "seeker": SEEKER_LABEL,
            "supporter": SUPPORTER_LABEL,
            "background": "",
        }
        if private or self.share_situation:
            scene, situation = ctx.scene or "(not given)", ctx.situation or "(not given)"
            values.update(scene=scene, situation=situation)
            values["background"] = (
                f"Background of the conversation:\n- Scene: {scene}\n- Situation: {situation}\n\n"
            )
        return values

    def seeker(self, ctx: DialogueContext, *, transcript: bool = True) -> Prompt:
        values = self._base(ctx, with_strategies=False, private=True)
        values["end_marker"] = self.end_marker
        return self._render("seeker", values, None, transcript)

    def supporter(self, ctx: DialogueContext, strategy: str, *, transcript: bool = True) -> Prompt:
        name = self.taxonomy.canonical(strategy)
        if name is None:
            raise KeyError(f"'{strategy}' is not a strategy of taxonomy {self.taxonomy.name}")
        values = self._base(ctx, with_strategies=False)
        values.update(strategy=name, definition=self.taxonomy.definition(name))
        return self._render("supporter", values, None, transcript)

    def strategy(self, ctx: DialogueContext, *, transcript: bool = True) -> Prompt:
        values = self._base(ctx, with_strategies=True)
        values.update(
            strategies=self._strategy_list,
            keys=self._keys_hint,
            overused_note=self._overused_note,
            score_min=P.STRATEGY_SCORE_MIN.value,
            score_max=P.STRATEGY_SCORE_MAX.value,
        )
        return self._render("strategy", values, self.strategy_schema, transcript)

    def reward(self, ctx: DialogueContext, *, transcript: bool = True) -> Prompt:
        values = self._base(ctx, with_strategies=True)
        last = next((u for u in reversed(ctx.history) if u.speaker == "supporter"), None)
        values.update(
            last_strategy=(last.strategy if last and last.strategy else "not given"),
            score_min=P.REWARD_SCORE_MIN.value,
            score_max=P.REWARD_SCORE_MAX.value,
        )
        return self._render("reward", values, self.reward_schema, transcript)
