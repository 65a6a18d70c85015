"""MCTS over support strategies: pure node math, one tree's search, the many-tree scheduler."""
