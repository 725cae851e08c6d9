from django.urls import path

from deployments import consumers

websocket_urlpatterns = [
    path("ws/teams/<int:team_id>/", consumers.TeamConsumer.as_asgi()),
    path("ws/projects/<int:project_id>/", consumers.ProjectConsumer.as_asgi()),
    path("ws/deployments/<int:deployment_id>/", consumers.DeploymentConsumer.as_asgi()),
]
