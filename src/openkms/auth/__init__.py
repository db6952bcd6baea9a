"""Request authentication: the server side of AWS Signature Version 4."""
