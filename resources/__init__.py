"""Run-time resources (icons), installed as ``app.resources``; see README.md here."""
