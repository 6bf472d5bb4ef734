"""URLs of the Django benchmark app (benchmarks/frameworks.py): hello-world and one-row CRUD."""

from django.http import HttpResponse, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt


def hello(request):
    return HttpResponse("hello")


@csrf_exempt
def crud(request):
    from notes.models import Note

    note = Note.objects.create(owner_id=1, title="draft")
    note.title = "final"
    note.save()
    note_id = note.pk
    note.delete()
    return JsonResponse({"id": note_id})


urlpatterns = [path("hello", hello), path("crud", crud)]
