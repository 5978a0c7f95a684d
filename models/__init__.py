"""Models: collection names, index declarations, JSON schemas and the public views of documents.

Nothing here imports from services/ or handlers/.
"""
