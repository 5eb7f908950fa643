"""Searching server logs (or any text: pg_stat_activity, pg_stat_statements, messages) for what
must never be there: secrets, tokens, crashes.

A secret is searched for by its first SEARCH_PREFIX characters, so that a truncated copy (as
log_parameter_max_length makes) is found too; each test secret is distinctive that far.
"""

SEARCH_PREFIX = 20
CRASH_MARKERS = ("terminated by signal", "PANIC", "terminating any other active server",
                 "all server processes terminated")


def fragments(token, length=SEARCH_PREFIX):
    """A distinctive piece of each part of a token (the first `length` characters; None: the
    whole part), to look for instead of the whole token."""
    return [part[:length] for part in token.split(".") if part]


def line_with(text, needle):
    """The first line of `text` that contains `needle` (cut to 200 characters), or None."""
    return next((line[:200] for line in text.splitlines() if needle in line), None)


def assert_no_secret(text, secrets, where):
    """No secret's first SEARCH_PREFIX characters in `text`."""
    for secret in secrets:
        found = line_with(text, secret[:SEARCH_PREFIX])
        if found is not None:
            raise AssertionError(f"{where}: a secret is there: {found}")


def assert_no_token(text, tokens, where):
    """No fragment of any token in `text`."""
    for token in tokens:
        for piece in fragments(token):
            found = line_with(text, piece)
            if found is not None:
                raise AssertionError(f"{where}: a token is there: {found}")


def assert_no_crash(log, where):
    for marker in CRASH_MARKERS:
        if marker in log:
            raise AssertionError(f"{where}: the server log shows a crash ({marker})")


def assert_logs_debug(log, where):
    """The server logged at a DEBUG level, so a search of its log is not vacuous."""
    if "DEBUG" not in log:
        raise AssertionError(f"{where}: the server log is not at debug5; a search of it "
                             "would be vacuous")
