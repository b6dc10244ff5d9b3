"""Drawing functions for the experiments' declared figures, one module per topic (matplotlib
only here); ``engine.catalog.drawer`` imports them all, and they share styles through ``style``."""
