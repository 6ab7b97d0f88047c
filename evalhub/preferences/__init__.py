"""Per-person preferences: the time zone pages show times in.

``models.UserPreferences`` (one row per person, made on first save), ``services`` to change it,
``selectors`` to read it, ``middleware.TimeZoneMiddleware`` to apply it to each page, and the
Settings → Preferences page (``views``)."""
