"""The base of errors the command line reports as one clear line and a non-zero exit."""


class RealmError(Exception):
    """A failure whose message already says what went wrong and what to do."""


class SetupError(RealmError):
    """The setup (config, model, device) cannot work as written: the command exits with code 2."""
