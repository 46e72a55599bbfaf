"""Many tenants on one PostgreSQL, their cycles run by procrastinate workers (docs/fleet.md).

tenants.py (the registry, and a tenant's state DB) imports no procrastinate: the global
`--tenant` option uses it. jobs.py, worker.py and status.py are the fleet's own.
"""
