"""URLs of the Django benchmark app (benchmarks/frameworks.py): hello-world and one-row CRUD."""

from django.http import HttpResponse, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt


def hello(request):
    return HttpResponse("hello")


def _crud(request, database: str) -> JsonResponse:
    """Create, update and delete one note of the logged-in user (loading them from the session)."""
    from notes.models import Note

    note = Note.objects.using(database).create(owner_id=request.user.pk, title="draft")
    note.title = "final"
    note.save()
    note_id = note.pk
    note.delete()
    return JsonResponse({"id": note_id})


@csrf_exempt
def crud(request):
    return _crud(request, "default")


@csrf_exempt
def crud_pg(request):
    """The same on PostgreSQL (the "pg" database; the instance remembers it for save and delete)."""
    return _crud(request, "pg")


urlpatterns = [path("hello", hello), path("crud", crud), path("crud-pg", crud_pg)]
