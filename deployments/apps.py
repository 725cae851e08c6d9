from django.apps import AppConfig
from django.db.backends.signals import connection_created


class DeploymentsConfig(AppConfig):
    name = "deployments"

    def ready(self):
        from diploi_site.process import name_database_session

        connection_created.connect(name_database_session, dispatch_uid="diploi-name-database-session")
