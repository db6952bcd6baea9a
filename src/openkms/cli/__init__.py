"""The openkms command line."""
