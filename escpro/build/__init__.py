"""The build stage as a library: `run_build(BuildOptions) -> BuildResult`.

The orchestration around the search (seeds, shards, the store, the build lock, resume checks,
which backend plays each role) lives here, at the pipeline level beside escpro.train and
escpro.evaluate; escpro.mcts keeps the search algorithm itself.
"""

from escpro.build.run import BuildError, BuildInterrupted, BuildOptions, BuildResult, run_build

__all__ = ["BuildError", "BuildInterrupted", "BuildOptions", "BuildResult", "run_build"]
