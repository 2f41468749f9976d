"""Makes the repository root importable in tests (``projects``, ``train_net``, ``tools``)."""
