"""Calls for proposals: access modes, tracks, partitions on offer, cut-offs."""
