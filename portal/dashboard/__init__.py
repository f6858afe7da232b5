"""The first page after sign-in: what each role should do next, with links to it."""
