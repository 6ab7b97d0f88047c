"""Shadow versions: a candidate evaluator version evaluated beside a task's active one on the
same items, its results kept in a table of their own, compared, then promoted or discarded."""
