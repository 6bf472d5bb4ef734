"""JSON views of the notes example: CRUD for a user's own notes and two staff actions."""

from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required, permission_required
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404
from django.views.decorators.http import require_POST

from notes.models import Note


def health(request):
    return HttpResponse("ok")


def _as_dict(note: Note) -> dict:
    return {"id": note.pk, "title": note.title, "body": note.body, "owner": note.owner_id}


@login_required
def notes(request):
    if request.method == "POST":
        note = Note.objects.create(owner=request.user, title=request.POST["title"], body=request.POST.get("body", ""))
        return JsonResponse(_as_dict(note), status=201)
    return JsonResponse({"notes": [_as_dict(n) for n in request.user.notes.order_by("pk")]})


def _own_note(request, pk: int) -> Note:
    note = get_object_or_404(Note, pk=pk)
    if note.owner_id != request.user.pk:
        raise PermissionDenied("not your note")
    return note


@login_required
def note_detail(request, pk: int):
    note = _own_note(request, pk)
    if request.method == "POST":
        note.title = request.POST.get("title", note.title)
        note.body = request.POST.get("body", note.body)
        note.save()
    return JsonResponse(_as_dict(note))


@login_required
@require_POST
def note_delete(request, pk: int):
    _own_note(request, pk).delete()
    return JsonResponse({"deleted": pk})


@login_required
def crash(request):
    raise RuntimeError("report generator failed")


@require_POST
@permission_required("auth.change_user", raise_exception=True)
def add_to_group(request, pk: int):
    user = get_object_or_404(get_user_model(), pk=pk)
    user.groups.add(Group.objects.get(name=request.POST["group"]))
    return JsonResponse({"user": user.pk, "groups": sorted(user.groups.values_list("name", flat=True))})


@require_POST
@permission_required("auth.change_user", raise_exception=True)
def promote(request, pk: int):
    user = get_object_or_404(get_user_model(), pk=pk)
    user.is_staff = True
    user.save()
    return JsonResponse({"user": user.pk, "is_staff": user.is_staff})
