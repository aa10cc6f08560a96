"""Errors a user can cause. The CLI prints them as one line, without a traceback."""


class FacestreamError(Exception):
    """A user-facing error: bad input, missing model, unavailable backend. Message is one line."""
