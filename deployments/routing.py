from django.urls import path, re_path

from deployments import consumers
from deployments.actions.consumers import ActionRunConsumer
from deployments.logs.consumers import LogConsumer

websocket_urlpatterns = [
    path("ws/teams/<int:team_id>/", consumers.TeamConsumer.as_asgi()),
    path("ws/projects/<int:project_id>/", consumers.ProjectConsumer.as_asgi()),
    path("ws/deployments/<int:deployment_id>/", consumers.DeploymentConsumer.as_asgi()),
    path("ws/deployments/<int:deployment_id>/logs/", LogConsumer.as_asgi()),
    path("ws/deployments/<int:deployment_id>/actions/<int:run_id>/", ActionRunConsumer.as_asgi()),
    # Last: every other path is refused cleanly (Channels' router would raise, a 500 before authentication).
    re_path(r"", consumers.NotFoundConsumer.as_asgi()),
]
