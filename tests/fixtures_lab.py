"""The shared incident lab fixture: one lab per test session."""
