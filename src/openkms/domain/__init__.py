"""The domain: keys and their state machine, material versions, aliases, ARNs, ciphertext blobs."""
