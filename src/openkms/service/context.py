"""The request context under the service layer's name: ``Principal`` and ``RequestContext`` are
defined in ``openkms.context``, below audit and policy, which use them too."""

from __future__ import annotations

from openkms.context import Principal, RequestContext

__all__ = ["Principal", "RequestContext"]
