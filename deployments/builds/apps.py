from django.apps import AppConfig


class BuildsConfig(AppConfig):
    name = "deployments.builds"
    label = "builds"
    verbose_name = "Builds"

    def ready(self) -> None:
        # The sweeper sends a build's task again when it was lost (see `deployments.sweeper`).
        from deployments.builds import pending

        pending.register()
