"""velo-cli: the Velo SQL shell and one-shot admin client (speaks HTTP only)."""
