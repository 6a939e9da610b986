"""Demo modules for DL Notes: one module per topic, ``snippets/<part>/<topic>.py``."""
