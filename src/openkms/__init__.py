"""openkms: a self-hosted key management service that speaks the AWS KMS API."""

from openkms._compiled import check_fresh as _check_fresh

__version__ = "0.1.0"

_check_fresh()
