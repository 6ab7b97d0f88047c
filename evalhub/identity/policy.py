"""The access policy: what every route of EvalHub needs of its caller, in one table.

Pages are keyed by URL name (``namespace:name``) with one need for reading (GET, HEAD,
OPTIONS) and one for writing (POST, PUT, PATCH, DELETE); REST operations by their ninja URL
name (``api:<url_name>``), one need each. ``evalhub.identity.auth.AccessMiddleware`` looks every
resolved request up here before its view runs, so a view cannot forget a check. A route missing
from the table is refused to everyone but admins, reported by the system check
``evalhub.E001`` and failed by ``tests/security/test_permissions_matrix.py``: adding a route
means deciding who may use it, here.

The rules of thumb (``evalhub.identity.access`` defines the needs):

- reading anything: READ; labeling queues: QUEUE (annotators too);
- creating, changing and deleting what the team makes — annotations, rubrics, queues, datasets,
  evaluators, tasks, runs — and logging spans: WRITE;
- deleting trace data (projects, spans), deleting evaluators, renaming projects, AI providers,
  users and other people's API keys, Django's admin: ADMIN (custom code in an evaluator is
  checked by the service, as it depends on the body);
- one's own API keys: KEYS; sending OTLP spans: INGEST.

Over 500 lines by design: most of it is the one table (a line per route), kept in one file so
that every route's need is decided and reviewed in one place; the lookups below it (about 130
lines) only read it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any, Final

from django.urls import URLPattern, URLResolver, get_resolver
from django.urls.resolvers import ResolverMatch

from evalhub.identity.access import Need

SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True, slots=True)
class PageRule:
    read: Need
    write: Need

    def need(self, method: str) -> Need:
        return self.read if method.upper() in SAFE_METHODS else self.write


def page(read: Need, write: Need | None = None) -> PageRule:
    """A page: ``read`` for GET; ``write`` (default: ``read``) for POST and the other unsafe
    methods — for a GET-only view the view itself answers 405."""
    return PageRule(read, read if write is None else write)


P, S, Q, R, W, K, A = (
    Need.PUBLIC,
    Need.SIGNED_IN,
    Need.QUEUE,
    Need.READ,
    Need.WRITE,
    Need.KEYS,
    Need.ADMIN,
)

# --- pages (browser sessions) -------------------------------------------------------------------
PAGES: Final[dict[str, PageRule]] = {
    "login": page(P),
    "logout": page(P),
    "home": page(S),
    "favicon": page(P),
    "set-password": page(P),  # reached with a one-time token
    # projects and the trace browser
    "tracing:projects": page(R),
    "tracing:project": page(R),
    "tracing:traces": page(R),
    "tracing:spans": page(R),
    "tracing:sessions": page(R),
    "tracing:export": page(R, R),  # POST exports the selected rows
    "tracing:delete": page(A, A),
    "detail:trace": page(R),
    "detail:span_pane": page(R),
    "detail:session": page(R),
    "tasks:trends": page(R),
    # evaluators
    "evaluators:list": page(R),
    "evaluators:templates": page(R, W),  # POST creates an evaluator from a template
    "evaluators:new": page(W, W),
    "evaluators:edit": page(W, W),
    "evaluators:detail": page(R),
    "evaluators:spans": page(R),
    "evaluators:playground": page(R, W),  # POST runs the evaluator
    "evaluators:test-on-span": page(R, W),
    "evaluators:form-variables": page(W, W),
    # settings
    "evaluators:providers": page(A, A),
    "evaluators:provider": page(A, A),
    "evaluators:provider-test": page(A, A),
    "annotations:configs": page(R),
    "annotations:config-new": page(W, W),
    "annotations:config-edit": page(W, W),
    "annotations:config-delete": page(W, W),
    "settings:api-keys": page(K, K),
    "settings:api-key-revoke": page(K, K),
    "settings:users": page(A, A),
    "settings:user": page(A, A),
    "settings:preferences": page(S, S),  # one's own time zone
    # annotations
    "annotations:annotate": page(R, W),
    "annotations:project-annotations": page(R),
    "annotations:agreement": page(R),
    # labeling queues
    "annotations:queues": page(Q),
    "annotations:queue": page(Q),
    "annotations:queue-label": page(Q),
    "annotations:queue-item": page(Q, Q),  # POST labels (the view checks the assignment)
    "annotations:queue-new": page(W, W),
    "annotations:queue-edit": page(W, W),
    "annotations:queue-add": page(W, W),
    "annotations:queue-add-selected": page(W, W),
    # datasets
    "annotations:datasets": page(R),
    "annotations:dataset-options": page(R),
    "annotations:dataset": page(R),
    "annotations:dataset-download": page(R),
    "annotations:dataset-add": page(W, W),
    "annotations:dataset-edit": page(W, W),
    "annotations:dataset-delete": page(W, W),
    # experiments
    "experiments:dataset": page(R),
    "experiments:new": page(W, W),
    "experiments:task-new": page(W, W),
    "experiments:task-edit": page(W, W),
    "experiments:version-diff": page(R),
    "experiments:version-download": page(R),
    "experiments:compare": page(R),
    "experiments:phoenix-experiments": page(R),
    "experiments:phoenix-compare": page(R),
    "experiments:detail": page(R),
    "experiments:evaluate": page(W, W),
    # online tasks
    "tasks:list": page(R),
    "tasks:runs": page(R),
    "tasks:detail": page(R),
    "tasks:run": page(R),
    "tasks:new": page(W, W),
    "tasks:edit": page(W, W),
    "tasks:form-count": page(W, W),
    "tasks:form-variables": page(W, W),
    "tasks:form-test": page(W, W),
    "tasks:pause": page(W, W),
    "tasks:resume": page(W, W),
    "tasks:duplicate": page(W, W),
    "tasks:delete": page(W, W),
    "tasks:backfill": page(W, W),
    "tasks:run-cancel": page(W, W),
    "tasks:evaluate": page(W, W),
    "tasks:evaluate-options": page(W, W),
    # monitors, notification channels (admins), automations
    "monitors:list": page(R),
    "monitors:detail": page(R),
    "monitors:preview": page(W),  # part of the create/edit form
    "monitors:new": page(W, W),
    "monitors:edit": page(W, W),
    "monitors:mute": page(W, W),
    "monitors:delete": page(W, W),
    "monitors:channels": page(A, A),
    "monitors:channel": page(A, A),
    "monitors:automations": page(R, W),
    "monitors:automation": page(R, W),
    # judge calibration (evalhub.calibration)
    "calibration:evaluator": page(R),
    "calibration:task": page(R, W),  # a task's sampling and disagreement routing
    "calibration:task-estimate": page(W, W),  # the task form's helpers are WRITE
    # the alignment workspace (evalhub.alignment): running a draft calls the judge
    "alignment:workspace": page(R, W),
    "alignment:run": page(R),
    "alignment:estimate": page(R, R),  # POST reads the draft form: nothing runs
    "alignment:save": page(W, W),
    "alignment:golden": page(W, W),
    "alignment:resume": page(W, W),
    # shadow versions of a task's evaluators (evalhub.shadow): promote saves a version
    "shadow:list": page(R, W),
    "shadow:compare": page(R),
    "shadow:promote": page(W, W),
    "shadow:discard": page(W, W),
    # spend budgets (evalhub.budgets): they stop the team's tasks, so admins set them
    "budgets:list": page(R, A),
    "budgets:delete": page(A, A),
    # the interactive API docs (a page: anonymous visitors go to the login page)
    "api:openapi-view": page(S),
}
# Django's admin: admins only, but for its own login and logout.
NAMESPACES: Final[dict[str, PageRule]] = {"admin": page(A, A)}
PAGES_IN_NAMESPACES: Final[dict[str, PageRule]] = {
    "admin:login": page(P, P),
    "admin:logout": page(P, P),
}

# --- the REST API (keys or sessions) ------------------------------------------------------------
API: Final[dict[str, Need]] = {
    "otlp-traces": Need.INGEST,
    "api:healthz": P,
    "api:arize_phoenix_version": P,
    "api:openapi-json": S,
    # projects, spans, traces
    "api:projects_list": R,
    "api:projects_create": W,
    "api:projects_get": R,
    "api:projects_update": A,
    "api:projects_delete": A,
    "api:spans_list": R,
    "api:spans_create": W,
    "api:spans_export": R,
    "api:spans_query_dataframe": R,  # a query sent as POST
    "api:traces_list": R,
    "api:spans_metadata_update": W,
    "api:span_delete": A,
    "api:spans_delete_many": A,
    "api:sessions_list": R,
    "api:session_detail": R,
    "api:session_delete": A,
    "api:sessions_delete_many": A,
    # annotations
    "api:span_annotations_create": W,
    "api:trace_annotations_create": W,
    "api:document_annotations_create": W,
    "api:evaluations_log": W,
    "api:evaluations_get": R,
    "api:session_annotations_create": W,
    "api:span_note_create": W,
    "api:span_annotations_list": R,
    "api:trace_annotations_list": R,
    "api:session_annotations_list": R,
    "api:span_annotations_batch": W,
    "api:evaluation_records": W,
    "api:agreement_get": R,
    "api:annotation_configs_list": R,
    "api:annotation_configs_create": W,
    "api:annotation_config_detail": R,
    "api:annotation_config_replace": W,
    "api:annotation_config_remove": W,
    "api:project_annotation_configs_list": R,
    "api:project_annotation_config_add": W,
    "api:project_annotation_config_remove": W,
    # labeling queues
    "api:annotation_queues": Q,
    "api:annotation_queues_create": W,
    "api:annotation_queue": Q,
    "api:annotation_queue_items": Q,
    "api:annotation_queue_items_add": W,
    "api:annotation_queue_progress": Q,
    # datasets
    "api:datasets_list": R,
    "api:datasets_create": W,
    "api:dataset_detail": R,
    "api:dataset_remove": W,
    "api:dataset_examples_list": R,
    "api:dataset_examples_append": W,
    "api:datasets_upload": W,
    "api:dataset_versions_list": R,
    "api:dataset_version_remove": W,
    "api:dataset_version_diff": R,
    "api:dataset_examples_edit": W,
    "api:dataset_examples_delete": W,
    "api:dataset_download_csv": R,
    "api:dataset_download_jsonl": R,
    # experiments
    "api:experiments_create": W,
    "api:experiments_list": R,
    "api:experiments_get": R,
    "api:experiments_delete": W,
    "api:experiments_runs_create": W,
    "api:experiments_runs_list": R,
    "api:experiments_incomplete_runs": R,
    "api:experiments_incomplete_evaluations": R,
    "api:experiment_evaluations_upsert": W,
    "api:experiments_download_json": R,
    "api:experiments_download_csv": R,
    # prompts
    "api:prompts_create": W,
    "api:prompts_list": R,
    "api:prompts_delete": W,
    "api:prompts_latest": R,
    "api:prompts_versions": R,
    "api:prompts_by_tag": R,
    "api:prompt_versions_get": R,
    "api:prompt_versions_tags": R,
    "api:prompt_versions_tag": W,
    # evaluator hub
    "api:providers_list": R,
    "api:providers_create": A,
    "api:providers_get": R,
    "api:providers_update": A,
    "api:providers_delete": A,
    "api:providers_test": A,
    "api:templates_list": R,
    "api:evaluators_list": R,
    "api:evaluators_create": W,
    "api:evaluators_get": R,
    "api:evaluators_update": W,
    "api:evaluators_delete": A,
    "api:evaluators_versions": R,
    "api:evaluators_run": W,
    # online tasks
    "api:tasks_list": R,
    "api:tasks_create": W,
    "api:tasks_get": R,
    "api:tasks_update": W,
    "api:tasks_delete": W,
    "api:tasks_pause": W,
    "api:tasks_resume": W,
    "api:tasks_run_backfill": W,
    "api:tasks_runs": R,
    "api:runs_get": R,
    "api:runs_items": R,
    "api:tasks_run_items": R,
    "api:runs_cancel": W,
    # monitors (channels: admins; automations: like tasks)
    "api:monitors_list": R,
    "api:monitors_create": W,
    "api:monitors_preview": R,  # a computation sent as POST; nothing is saved
    "api:monitors_get": R,
    "api:monitors_update": W,
    "api:monitors_delete": W,
    "api:monitors_mute": W,
    "api:monitors_checks": R,
    "api:monitors_events": R,
    "api:channels_list": A,
    "api:channels_create": A,
    "api:channels_get": A,
    "api:channels_update": A,
    "api:channels_delete": A,
    "api:channels_deliveries": A,
    "api:channels_test": A,  # sends a test message to the channel
    "api:automations_list": R,
    "api:automations_create": W,
    "api:automations_get": R,
    "api:automations_update": W,
    "api:automations_delete": W,
    # API keys
    "api:api_keys_list": K,
    "api:api_keys_create": K,
    "api:api_key_get": K,
    "api:api_key_revoke": K,
    # judge calibration (evalhub.calibration)
    "api:calibration_get": R,
    "api:backfill_estimate_get": R,  # reads: nothing is written, no judge is called
    "api:alignment_estimate": R,
    "api:calibration_sampling_put": W,
    "api:disagreements_route_post": W,
    "api:calibration_sampling_get": R,
    "api:calibration_sampling_delete": W,
    "api:disagreement_routing_put": W,
    "api:disagreement_routing_get": R,
    "api:disagreement_routing_delete": W,
    "api:alignment_run_resume": W,
    "api:budgets_list": R,
    "api:budgets_create": A,
    "api:budgets_delete": A,
    # the alignment workspace (evalhub.alignment)
    "api:alignment_runs_create": W,
    "api:alignment_runs_list": R,
    "api:alignment_run_get": R,
    "api:alignment_run_items": R,
    "api:alignment_run_save": W,
    "api:alignment_run_golden": W,
    # shadow versions (evalhub.shadow)
    "api:shadows_create": W,
    "api:shadows_list": R,
    "api:shadow_get": R,
    "api:shadow_comparison": R,
    "api:shadow_promote": W,
    "api:shadow_discard": W,
    # never reached: ninja's root pattern ("") is shadowed by the home page
    "api:api-root": S,
}


def page_rule(view_name: str) -> PageRule | None:
    """The rule of a page by URL name, or None when the table does not classify it."""
    rule = PAGES.get(view_name) or PAGES_IN_NAMESPACES.get(view_name)
    if rule is not None:
        return rule
    namespace = view_name.split(":", 1)[0] if ":" in view_name else ""
    return NAMESPACES.get(namespace)


def api_need(operation_name: str) -> Need | None:
    """The need of a REST operation by URL name, or None when the table does not classify it."""
    return API.get(operation_name)


# --- the routes that exist ---------------------------------------------------------------------


_APIS: list[Any] = []


def api_register(api: Any) -> None:
    """The API root (``evalhub.api``) registers itself when the URL configuration mounts it:
    this table sits below the project and never imports it."""
    if api not in _APIS:
        _APIS.append(api)
        _api_operations.cache_clear()


@cache
def _api_operations() -> dict[tuple[str, str], tuple[str, Any]]:
    """(route, method) → (``api:<url name>``, ninja operation), for every REST operation."""
    get_resolver().url_patterns  # noqa: B018 - loads the URL configuration, which mounts the API
    found: dict[tuple[str, str], tuple[str, Any]] = {}
    for api in _APIS:
        found.update(_operations_of(api))
    return found


def _operations_of(api: Any) -> dict[tuple[str, str], tuple[str, Any]]:
    namespace = api.urls_namespace
    found: dict[tuple[str, str], tuple[str, Any]] = {}
    for bound in api._get_bound_routers():
        patterns = list(bound.urls_paths(bound.prefix))
        operations = [op for view in bound.path_operations.values() for op in view.operations]
        for pattern, operation in zip(patterns, operations, strict=True):
            for method in operation.methods:
                found[(str(pattern.pattern), method.upper())] = (
                    f"{namespace}:{pattern.name}",
                    operation,
                )
    return found


def api_operation(match: ResolverMatch, method: str) -> tuple[str, Any] | None:
    """The REST operation a resolved request reaches: its name and ninja operation."""
    return _api_operations().get((match.route, method.upper()))


def is_api_route(match: ResolverMatch) -> bool:
    """Whether the request reached a ninja path (with any method)."""
    return match.route in {route for route, _method in _api_operations()}


@dataclass(frozen=True, slots=True)
class Route:
    """A route of the URL configuration: a page (any method; GET and POST matter) or a REST
    operation (its methods)."""

    name: str
    route: str
    methods: tuple[str, ...]
    is_api: bool


def _walk(
    resolver: URLResolver, prefix: str = "", namespaces: tuple[str, ...] = ()
) -> Iterator[tuple[str, str, Any]]:
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            inner = (*namespaces, entry.namespace) if entry.namespace else namespaces
            yield from _walk(entry, prefix + str(entry.pattern), inner)
        elif isinstance(entry, URLPattern):
            name = entry.name or entry.lookup_str
            yield ":".join((*namespaces, name)), prefix + str(entry.pattern), entry.callback


def routes() -> list[Route]:
    """Every route of the URL configuration, REST operations one by one (ninja gives each of
    them a URL pattern of its own name, but one path answers all methods)."""
    operations = _api_operations()
    api_routes = {route for route, _method in operations}
    by_name: dict[str, tuple[str, list[str]]] = {}
    for (route, method), (name, _operation) in operations.items():
        by_name.setdefault(name, (route, []))[1].append(method)
    found = [
        Route(name, route, tuple(sorted(methods)), True)
        for name, (route, methods) in sorted(by_name.items())
    ]
    for name, route, _callback in _walk(get_resolver()):
        if route in api_routes:
            continue
        if name in API:
            found.append(Route(name, route, ("GET", "POST"), True))
        else:
            found.append(Route(name, route, ("GET", "POST"), False))
    return found


def unclassified() -> list[Route]:
    """Routes the table does not name: each needs a decision above."""
    return [
        route
        for route in routes()
        if (api_need(route.name) is None if route.is_api else page_rule(route.name) is None)
    ]


__all__ = [
    "API",
    "NAMESPACES",
    "PAGES",
    "PageRule",
    "Route",
    "api_need",
    "api_operation",
    "is_api_route",
    "page",
    "page_rule",
    "routes",
    "unclassified",
]
