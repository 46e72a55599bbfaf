"""Generic authentication flows (httpx.Auth); a vendor's own scheme lives in its connector package."""
