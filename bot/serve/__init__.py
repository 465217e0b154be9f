"""The bot as a service: its HTTP server (webhook, health, readiness, metrics) and the rules of each endpoint."""


class ServeError(Exception):
    """The HTTP server could not start; the message names the address and why."""
