"""`escpro ui`: a local web app over a build's tree file (read-only), an extraction's pairs and
a blind pairwise human evaluation of two or more `escpro eval run` outputs (paper 5.2.2).

Modules: `options` (typed options), `trees` (tree queries through escpro's store reader),
`pairs` (an `escpro extract` output), `study` (eval runs -> pairwise tasks), `judgements`
(the annotators' SQLite file), `agreement` (win/tie/lose table and Fleiss' kappa), `app`
(the FastAPI factory), `server` (binding rules and uvicorn).
"""
