"""The ``realm`` command line: ``main`` builds the parser, one module per command group, ``common``
what they share. Nothing outside this package imports it."""
