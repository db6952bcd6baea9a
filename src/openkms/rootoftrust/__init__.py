"""Roots of trust: the only places where key material is wrapped and unwrapped at rest."""
