"""People: accounts, identity links to providers, profiles, roles, sign-in and access rules."""
