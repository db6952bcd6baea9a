"""The pure cryptographic layer: functions over bytes, no I/O, no storage, no logging.

``keyspecs`` is the table the service layer reads (what each KeySpec allows and reports);
``asymmetric`` holds the private/public key handles, Sign/Verify and RSA Encrypt/Decrypt;
``mac`` HMAC; ``agreement`` ECDH; ``kem`` ML-KEM; ``aead`` symmetric AES-GCM and
``encryption_context`` its AAD.
"""
