"""Machinery every layer may use, in one visible place: retries (:mod:`.retry`), atomic files
(:mod:`.files`) and Ray start-up (:mod:`.ray`). It imports nothing of rltrade but errors."""
