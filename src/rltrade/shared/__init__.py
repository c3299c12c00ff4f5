"""Machinery every layer may use, in one visible place: retries (:mod:`.retry`), atomic files
(:mod:`.files`), Ray start-up (:mod:`.ray`) and named registries (:mod:`.registry`). It imports
nothing of rltrade but errors and the optional-dependency helper."""
