"""Shared base for config sections: unknown keys are errors, values are validated on assignment,
and no float is NaN or infinite (`.nan` in YAML would otherwise pass every range check and reach
the search and the store as NaN Q values and rewards)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, protected_namespaces=(),
                              allow_inf_nan=False)


# Random seeds reach numpy (< 2**32), llama.cpp (uint32) and DuckDB (BIGINT): one range for all.
SEED_MAX = 2**32 - 1
