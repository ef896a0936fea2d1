"""The admin console: registrations, deployments, keys, granted services and recent errors."""
