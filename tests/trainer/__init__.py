# pytest's default (prepend) import mode imports this folder as the package `trainer`, which
# would hide the real `trainer` package (an editable install then silently supplies *its*
# copy, e.g. another worktree's). Extending the path makes `trainer.daemon` etc. resolve to
# the source tree these tests sit in.
from pathlib import Path as _Path

__path__.append(str(_Path(__file__).resolve().parents[2] / "trainer"))  # noqa: F821
