"""The compliance app's member API, one module per part (``requests``: data-subject
requests; ``consumer``: terms and complaints). ``loyalty.api.urls`` mounts them."""
