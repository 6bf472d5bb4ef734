"""A Django project routing through include() with namespaces, nested, and re_path."""

SECRET_KEY = "coverage-shapes-only"
INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth"]
ROOT_URLCONF = "djshapes.urls"
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
USE_TZ = True
ALLOWED_HOSTS = ["testserver"]
