from django.urls import path

from templates_catalog import views

urlpatterns = [
    path("", views.catalog, name="catalog"),
    path("<slug:slug>/", views.template_detail, name="catalog_template"),
]
