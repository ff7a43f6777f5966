"""Skills: procedurally generated, verifiable task families with levels (SY, BIN, ...)."""
