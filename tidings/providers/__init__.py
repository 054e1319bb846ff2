"""Outbound services, one module each, registered by name in ``registry``."""
