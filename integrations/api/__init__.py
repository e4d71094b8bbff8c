"""The versioned JSON API, /api/v1/: thin views over the services the dashboard uses.

django-ninja validates parameters and bodies and publishes the OpenAPI document
(/api/v1/openapi.json). Every request carries a workspace's API key (`Authorization: Bearer as_…`);
the key's workspace is the request's, and its rows are reached only through `tenancy.access.scoped`,
so another workspace's id is a 404 like a missing one.
"""

from django.core.exceptions import PermissionDenied
from ninja import NinjaAPI
from ninja.security import HttpBearer

from campaigns.models import InvalidTransition
from integrations import keys
from integrations.models import ApiKey


class KeyAuth(HttpBearer):
    """A workspace's active API key, with `scope` among its scopes (else 403)."""

    def __init__(self, scope: ApiKey.Scope):
        super().__init__()
        self.scope = scope

    def authenticate(self, request, token):
        key = keys.authenticate(token)
        if key is None:
            return None  # 401
        if self.scope not in key.scopes:
            raise PermissionDenied(f"This API key lacks the {self.scope} scope.")
        request.workspace, request.api_key = key.workspace, key
        return key


READ, WRITE = KeyAuth(ApiKey.Scope.READ), KeyAuth(ApiKey.Scope.WRITE)

api = NinjaAPI(
    title="AgentStream Campaigns API", version="1", urls_namespace="api", docs_url=None, auth=READ,
    description="Campaigns, their contacts and calls, for the systems around a workspace. "
                "Authenticate with `Authorization: Bearer <API key>` (made on the workspace's API keys page).",
)


@api.exception_handler(InvalidTransition)
def invalid_transition(request, exc):
    return api.create_response(request, {"detail": str(exc)}, status=409)


@api.exception_handler(PermissionDenied)
def permission_denied(request, exc):
    return api.create_response(request, {"detail": str(exc) or "Forbidden."}, status=403)


from integrations.api import calls, campaigns  # noqa: E402  (the routers register on `api`)

api.add_router("/campaigns", campaigns.router)
api.add_router("/calls", calls.router)
