"""Quest files: reading every format (``formats``), the two validation layers (``validate``), the
held-out split (``split``) and the offline check that reports on all three (``check``). The
trainer, ``realm quest check`` and the TUI's Add dialog share them."""
