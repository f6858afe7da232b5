"""A local SMTP sink for the demo: it catches the portal's mail so staff can read what was sent."""
