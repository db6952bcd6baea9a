"""The AWS Secrets Manager API, served beside the KMS API."""
