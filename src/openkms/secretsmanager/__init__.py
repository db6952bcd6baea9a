"""An AWS Secrets Manager-compatible service on the same port as the KMS (issue #19).

Routed by the SigV4 credential scope's service (``secretsmanager``), JSON 1.1 with
``X-Amz-Target: secretsmanager.<Operation>``. A client of the KMS service layer inside the same
process: every secret version is encrypted with ``GenerateDataKey`` and read with ``Decrypt``
on behalf of the caller (``kms_client``), so the caller's own permissions on the KMS key
decide. It never touches key material or the root of trust.

Modules: ``model`` (the vendored botocore model), ``errors``, ``deps`` (what every operation is
given, and the handler type), ``dispatch`` (the one table and the one place an error becomes
HTTP), ``access`` (the authorization hook every operation calls), one module per API area.
"""
