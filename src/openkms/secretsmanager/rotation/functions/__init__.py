"""Rotation functions shipped with openkms: Lambda-style handlers (``lambda_handler(event,
context)``) that ``openkms rotation-runner`` hosts, written to the contract of AWS's published
templates (the four steps, AWSPENDING handling, idempotent re-runs) without their code."""
