from django.http import HttpResponse
from django.views import View


def page(request, **kwargs):
    return HttpResponse("")


class InvoiceView(View):
    def get(self, request, **kwargs):
        return HttpResponse("")

    def delete(self, request, **kwargs):
        return HttpResponse("")
