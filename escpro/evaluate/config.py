"""`eval:` config section."""

from __future__ import annotations

from escpro.config_base import Section


class EvalConfig(Section):
    taxonomy: str = "cso8"
    max_new_tokens: int = 256
