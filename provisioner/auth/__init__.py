"""Authentication schemes, one httpx.Auth class per scheme."""
