"""DIO's model, shared by the trainer and the oracle: loading, the ChatML encoding, greedy generation."""
