"""Live calibration of evaluators against people: the statistics (``stats``), the pairs and
their metrics per version and over time (``selectors``), cost and time estimates before a run
(``estimate``), and their API (``api``)."""
