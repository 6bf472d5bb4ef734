from django.urls import include, path, re_path

from djshapes import views

invoice_patterns = ([
    path("<int:pk>/", views.InvoiceView.as_view(), name="detail"),
], "invoices")

billing_patterns = ([
    path("invoices/", include(invoice_patterns)),
    re_path(r"^reports/(?P<year>[0-9]{4})/$", views.page, name="report"),
], "billing")

urlpatterns = [
    path("", views.page, name="home"),
    path("api/v1/billing/", include(billing_patterns, namespace="billing-v1")),
]
