"""JSON Schemas (Draft 2020-12) of request bodies and query strings, kept apart from the code using them."""
