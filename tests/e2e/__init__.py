"""The product end to end through the running local stack (`python -m local stack`), as a user drives it."""
