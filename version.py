"""The service's version, in this one place: `python run.py --version`, the start-up log line, the OpenAPI
document's info.version and the accounts_build_info metric all read it."""

__version__ = "1.1.0"
