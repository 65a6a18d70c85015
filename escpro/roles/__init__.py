"""The four LLM roles (Seeker, Supporter, Strategy scorer, Reward judge) and their backends.

- api.py / base.py: the contracts (RoleSet for the search; RoleModel/RoleRequest/RoleResult for
  backends); scoring.py: prior and reward math.
- prompts.py (templates in escpro/data/prompts/), schemas.py (enum JSON schemas, validation),
  text.py (cleaning, end marker).
- roleset.py: the concrete RoleSet and `build_roleset(roles_cfg, taxonomy, ...)`.
- backends/: sim, openai (aiohttp), transformers, llamacpp, vllm-offline; `make_model(binding)`;
  sim_server.py (the simulator over HTTP).
- serving.py / endpoints.py: `escpro serve` definitions, vLLM launcher, endpoints file.

docs/roles.md is the user guide.
"""
