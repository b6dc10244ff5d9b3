"""The named experiments that answers call, one module per topic; ``engine.catalog`` imports
(and so registers) them all, and experiments share helpers through ``common`` and ``twins``."""
