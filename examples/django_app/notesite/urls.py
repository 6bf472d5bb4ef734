from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import path

from notes import views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("health/", views.health),
    path("notes/", views.notes, name="notes"),
    path("notes/crash/", views.crash),
    path("notes/<int:pk>/", views.note_detail),
    path("notes/<int:pk>/delete/", views.note_delete),
    path("staff/users/<int:pk>/groups/", views.add_to_group),
    path("staff/users/<int:pk>/promote/", views.promote),
]
