"""The static build (``kb build``): the knowledge base as files any static host can serve."""
