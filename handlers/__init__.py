"""HTTP handlers: parse, authorise, call a service, serialise. The route table is in handlers/routes.py."""
