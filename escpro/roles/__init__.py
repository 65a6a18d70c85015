"""The four LLM roles (Seeker, Supporter, Strategy scorer, Reward judge) and their backends."""
