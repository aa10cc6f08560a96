"""Source URIs as they may be shown: credentials masked in logs, errors and printed configs.

Cameras carry secrets in two places: ``rtsp://user:password@host/...`` and query strings such as
``?user=admin&password=...`` or ``?token=...``. Both are replaced by ``***``; everything else is kept so the
operator still sees which camera is meant.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

MASK = "***"
_SECRET_PARAMS = re.compile(r"^(user(name)?|pass(word|wd)?|pwd|token|access_token|api_?key|key|auth|secret|sig(nature)?)$",
                            re.IGNORECASE)


def mask_uri(uri: str) -> str:
    """``uri`` with user info and credential-like query values replaced by ``***``."""
    try:
        parts = urlsplit(uri)
    except ValueError:
        return uri
    if not parts.scheme or not parts.netloc:
        return uri
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{MASK}@{netloc.rsplit('@', 1)[1]}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(_SECRET_PARAMS.match(k) for k, _ in pairs):
            query = urlencode([(k, MASK if _SECRET_PARAMS.match(k) else v) for k, v in pairs], safe="*")
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def redact(text: str, uri: str) -> str:
    """``text`` (an error message a library produced) with ``uri`` and its secrets masked wherever they appear."""
    masked = mask_uri(uri)
    if masked == uri:
        return text
    text = text.replace(uri, masked)
    parts = urlsplit(uri)
    for secret in (parts.password, parts.username):
        if secret and len(secret) >= 3:
            text = text.replace(secret, MASK)
    for k, v in parse_qsl(parts.query, keep_blank_values=True):
        if _SECRET_PARAMS.match(k) and len(v) >= 3:
            text = text.replace(v, MASK)
    return text


_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")
_USERINFO_IN_TEXT = re.compile(r"\b([A-Za-z][A-Za-z0-9+.-]*:/+)[^\s/@'\"]+@")  # also rtsp:/user:pw@ (a typo)


def mask_secrets(text: str) -> str:
    """``text`` (an error line about anything: a config value, a source argument) with every URL in it masked
    as :func:`mask_uri` does, and user info masked even in a URL with a typo in its ``//``."""
    text = _URL_IN_TEXT.sub(lambda m: mask_uri(m.group(0)), text)
    return _USERINFO_IN_TEXT.sub(lambda m: f"{m.group(1)}{MASK}@", text)
