"""Domain services: keyword-only arguments, handed `now`, never commit (the job does)."""
