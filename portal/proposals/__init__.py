"""Proposals: a PI's application to a call, its team, its request and its history."""
