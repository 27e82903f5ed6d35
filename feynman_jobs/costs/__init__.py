"""Money and rate: the ledger, rollups, budgets and their reservations, estimates, provider rate limits."""
