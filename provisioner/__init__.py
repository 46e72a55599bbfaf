"""provisioner: keep target accounts in step with a source of truth."""
