"""escpro: ESC-Pro preference data by MCTS over support strategies, and CSO training/evaluation."""

__version__ = "0.1.0"
