"""The security suite: the hub tried as an attacker would, from outside (edge limits, abuse, egress, secrets,
existence oracles, tenancy, all-or-nothing calls). Every test here starts or uses real hubs, like the rest."""
