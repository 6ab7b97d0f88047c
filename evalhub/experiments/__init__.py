"""Experiments: a task run over a dataset version (from the SDK/Phoenix client, or a prompt
run on Celery), each run's output, error, latency and cost, evaluations scoring the runs, and
prompts as versioned objects. Models in ``models``; writes in ``services``; reads in
``selectors``; the Phoenix-shaped REST API in ``api`` and ``api_prompts``; pages in ``views``.
"""
