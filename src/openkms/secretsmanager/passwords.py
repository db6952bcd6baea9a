"""GetRandomPassword: a password from the operating system's CSPRNG (``secrets``), with AWS's
defaults (32 characters; letters, digits and punctuation; at least one of each included type)."""

from __future__ import annotations

import secrets
import string

from openkms.context import RequestContext
from openkms.secretsmanager.access import ANY, authorize
from openkms.secretsmanager.deps import Params, Result, SecretsDeps
from openkms.secretsmanager.errors import InvalidParameterException

DEFAULT_LENGTH = 32
PUNCTUATION = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"


def get_random_password(deps: SecretsDeps, ctx: RequestContext, req: Params) -> Result:
    authorize(deps, ctx, "secretsmanager:GetRandomPassword", ANY, None, req)
    length = int(req.get("PasswordLength") or DEFAULT_LENGTH)
    excluded = set(req.get("ExcludeCharacters") or "")
    groups: list[str] = []
    for flag, chars in (
        ("ExcludeLowercase", string.ascii_lowercase),
        ("ExcludeUppercase", string.ascii_uppercase),
        ("ExcludeNumbers", string.digits),
        ("ExcludePunctuation", PUNCTUATION),
    ):
        if not req.get(flag):
            groups.append(chars)
    if req.get("IncludeSpace"):
        groups.append(" ")
    groups = [g for g in ("".join(c for c in g if c not in excluded) for g in groups) if g]
    if not groups:
        raise InvalidParameterException(
            "The password must include at least one character type that isn't excluded."
        )
    require_each = req.get("RequireEachIncludedType", True)
    if require_each and length < len(groups):
        raise InvalidParameterException(
            "The password length is too short to include a character of each included type."
        )
    alphabet = "".join(groups)
    chosen = [secrets.choice(g) for g in groups] if require_each else []
    chosen += [secrets.choice(alphabet) for _ in range(length - len(chosen))]
    # Fisher-Yates with the CSPRNG, so the required characters are not at fixed places.
    for i in range(len(chosen) - 1, 0, -1):
        j = secrets.randbelow(i + 1)
        chosen[i], chosen[j] = chosen[j], chosen[i]
    return {"RandomPassword": "".join(chosen)}
