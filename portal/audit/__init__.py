"""The audit log: who did what security-relevant thing, when, and from where. Staff read it at /audit."""
