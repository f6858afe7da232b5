"""Peer review: reviewer assignments, conflicts of interest, scores and the committee ranking."""
