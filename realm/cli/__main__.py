"""``python -m realm.cli``: what the trainer's and the oracle's subprocesses and systemd units run."""

import sys

from realm.cli.main import main

sys.exit(main())
