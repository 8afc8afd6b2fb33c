"""giasok."""
