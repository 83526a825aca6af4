"""``imagebot serve``: the long-running service (runtime, scheduler, HTTP endpoints, webhooks,
policy reload, leader election). Kept import-light: ``imagebot apply`` imports only
:mod:`imagebot.daemon.runtime`."""
